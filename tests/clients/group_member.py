"""One consumer-group member, as a separate process, for groups_test.py.

Run: /usr/bin/python3 group_member.py --client confluent|kafka-python --bootstrap HOST:PORT
         --group G --topic T [--session-ms N] [--assignor range|roundrobin]
         [--instance-id ID] [--commit sync|none]

It subscribes to the topic in the group and writes one JSON object per line to stdout
for everything the test needs to see, flushing each line:

    {"ev": "assigned", "partitions": [0, 3]}     the whole assignment after a rebalance
    {"ev": "revoked", "partitions": [0, 3]}
    {"ev": "msg", "p": 0, "o": 17, "v": "..."}   a message handed to the application
    {"ev": "commit", "p": 0, "o": 18}            the commit after it was acknowledged
    {"ev": "error", "code": 23, "name": "..."}   an error the client reported
    {"ev": "closed"}                             after a clean close (left the group)

With --commit sync (the default) each message is committed, synchronously, right after
it was "processed" (printed): the at-least-once pattern whose duplicates the test
bounds. SIGTERM makes it close the consumer cleanly (leaving the group) and exit 0;
SIGKILL is the crash the test simulates.
"""

import argparse
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True

stopping = False


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def on_sigterm(_signum, _frame):
    global stopping
    stopping = True


def run_confluent(args):
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    def on_error(err):
        emit(ev="error", code=err.code(), name=err.name())

    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": args.session_ms,
        "heartbeat.interval.ms": max(100, args.session_ms // 10),
        "partition.assignment.strategy": args.assignor,
        "error_cb": on_error,
    }
    if args.instance_id:
        config["group.instance.id"] = args.instance_id
    consumer = Consumer(config)

    def assigned(_consumer, partitions):
        emit(ev="assigned", partitions=sorted(tp.partition for tp in partitions))

    def revoked(_consumer, partitions):
        emit(ev="revoked", partitions=sorted(tp.partition for tp in partitions))

    consumer.subscribe([args.topic], on_assign=assigned, on_revoke=revoked)
    while not stopping:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                emit(ev="error", code=msg.error().code(), name=msg.error().name())
            continue
        value = msg.value().decode() if msg.value() is not None else None
        emit(ev="msg", p=msg.partition(), o=msg.offset(), v=value)
        if args.commit == "sync":
            tp = TopicPartition(args.topic, msg.partition(), msg.offset() + 1)
            try:
                result = consumer.commit(offsets=[tp], asynchronous=False)
            except Exception as e:  # KafkaException: a rebalance took the partition away
                emit(ev="error", code=-1, name="commit: %s" % e)
                continue
            for r in result or []:
                if r.error is None:
                    emit(ev="commit", p=r.partition, o=r.offset)
                else:
                    emit(ev="error", code=r.error.code(), name="commit: %s" % r.error.name())
    consumer.close()
    emit(ev="closed")


def run_kafka_python(args):
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    assignor = RangePartitionAssignor if args.assignor == "range" else RoundRobinPartitionAssignor
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap, group_id=args.group, enable_auto_commit=False,
        auto_offset_reset="earliest", session_timeout_ms=args.session_ms,
        heartbeat_interval_ms=max(100, args.session_ms // 10),
        partition_assignment_strategy=[assignor], api_version_auto_timeout_ms=10000)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_assigned(self, assigned):
            emit(ev="assigned", partitions=sorted(tp.partition for tp in assigned))

        def on_partitions_revoked(self, revoked):
            emit(ev="revoked", partitions=sorted(tp.partition for tp in revoked))

    consumer.subscribe([args.topic], listener=Listener())
    while not stopping:
        try:
            batches = consumer.poll(timeout_ms=200)
        except Exception as e:  # kafka.errors.*: fatal group errors surface here
            code = getattr(e, "errno", -1)
            emit(ev="error", code=code if isinstance(code, int) else -1, name=type(e).__name__)
            time.sleep(0.5)
            continue
        for tp, records in batches.items():
            for record in records:
                if stopping:
                    break
                value = record.value.decode() if record.value is not None else None
                emit(ev="msg", p=tp.partition, o=record.offset, v=value)
                if args.commit == "sync":
                    try:
                        consumer.commit({tp: OffsetAndMetadata(record.offset + 1, None)})
                        emit(ev="commit", p=tp.partition, o=record.offset + 1)
                    except Exception as e:  # CommitFailedError after a rebalance
                        emit(ev="error", code=-1, name="commit: %s" % type(e).__name__)
                        break
    consumer.close()
    emit(ev="closed")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=["confluent", "kafka-python"], required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--session-ms", type=int, default=6000)
    parser.add_argument("--assignor", choices=["range", "roundrobin"], default="range")
    parser.add_argument("--instance-id")
    parser.add_argument("--commit", choices=["sync", "none"], default="sync")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    emit(ev="started", pid=os.getpid())
    if args.client == "confluent":
        run_confluent(args)
    else:
        run_kafka_python(args)


if __name__ == "__main__":
    main()
