"""A multi-core `sluice` (--cores 2 and 3) seen through confluent-kafka (librdkafka).

Run: /usr/bin/python3 cores_test.py --sluice PATH [unittest args]

Checks that the cores really share the work, and that a client cannot tell:
- the broker runs one reactor thread per core ("sluice-core-N" in /proc), and at stop
  every core reports that it owned partitions and served connections;
- records produced by several producers (so several connections, spread over the
  cores) to every partition of a topic come back complete and in order per partition,
  with the offsets the delivery reports gave;
- a consumer long-polling two partitions owned by different cores is woken within a
  fraction of its fetch.wait.max.ms when data arrives on either, whichever core its
  connection lives on;
- topics created by one core (an AdminClient connection) are seen at once by producers
  and consumers on the others, and acknowledged records survive a restart with another
  core count.
"""

import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import running_sluice, take_sluice_arg  # noqa: E402

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

SLUICE = None
TIMEOUT_S = 30.0


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions,
                                            replication_factor=1)])
    futures[name].result(TIMEOUT_S)


def produce(bootstrap, topic, partitions, per_partition, tag, producers=3):
    """Produces per_partition records to every partition through `producers` clients.

    Returns {partition: [(offset, value)]} from the delivery reports."""
    acked = {p: [] for p in range(partitions)}
    failures = []

    def report(err, msg):
        if err is not None:
            failures.append(err)
        else:
            acked[msg.partition()].append((msg.offset(), msg.value()))

    clients = [Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "acks": "all"})
               for _ in range(producers)]
    for i in range(per_partition):
        for p in range(partitions):
            clients[(i + p) % producers].produce(
                topic, value=("%s-%d-%d" % (tag, p, i)).encode(), partition=p, on_delivery=report)
        for c in clients:
            c.poll(0)
    for c in clients:
        left = c.flush(TIMEOUT_S)
        assert left == 0, "%d records not delivered" % left
    assert not failures, failures[:3]
    return acked


def consume_all(bootstrap, topic, partitions, expected):
    """Reads every partition from the start until `expected` records per partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cores-test-reader",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = {p: [] for p in range(partitions)}
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while sum(len(v) for v in got.values()) < partitions * expected:
            assert time.monotonic() < deadline, "timed out with %s" % {
                p: len(v) for p, v in got.items()}
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got[msg.partition()].append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    return got


def core_threads(pid):
    names = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, task)) as f:
            names.append(f.read().strip())
    return names


def core_reports(log_text):
    """{core: (partitions, connections)} from the broker's stop lines."""
    found = {}
    for m in re.finditer(r"core (\d+): stopping; it owns (\d+) partitions and served (\d+) "
                         r"connections", log_text):
        found[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    return found


class Cores(unittest.TestCase):
    def test_cores_share_partitions_and_connections_and_lose_nothing(self):
        partitions = 8
        with running_sluice(SLUICE, extra_args=["--cores", "2"]) as broker:
            threads = core_threads(broker.process.pid)
            self.assertIn("sluice-core-1", threads)
            create_topic(broker.bootstrap, "spread", partitions)
            acked = produce(broker.bootstrap, "spread", partitions, 200, "a")
            got = consume_all(broker.bootstrap, "spread", partitions, 200)
            for p in range(partitions):
                # Every record once, in the order and at the offsets it was acknowledged.
                self.assertEqual(got[p], sorted(acked[p]), "partition %d" % p)
                self.assertEqual([o for o, _ in got[p]], list(range(200)))
            self.assertEqual(broker.stop(), 0)
            with open(broker.log_path) as f:
                reports = core_reports(f.read())
        self.assertEqual(sorted(reports), [0, 1], reports)
        owned = sum(r[0] for r in reports.values())
        self.assertEqual(owned, partitions)  # no __consumer_offsets: no group committed
        for core, (parts, connections) in reports.items():
            self.assertGreater(parts, 0, "core %d owns no partition" % core)
            self.assertGreater(connections, 0, "core %d served no connection" % core)

    def test_long_poll_is_woken_by_data_on_either_core(self):
        with running_sluice(SLUICE, extra_args=["--cores", "2"]) as broker:
            # Partitions 0 and 1 of a topic always have different owners on two cores.
            create_topic(broker.bootstrap, "wake", 2)
            producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
            for attempt in range(2):  # a fresh consumer each time: its connection's core varies
                consumer = Consumer({"bootstrap.servers": broker.bootstrap,
                                     "group.id": "wake-%d" % attempt,
                                     "enable.partition.eof": True,
                                     "fetch.wait.max.ms": 5000, "fetch.min.bytes": 1})
                try:
                    consumer.assign([TopicPartition("wake", 0, 0), TopicPartition("wake", 1, 0)])
                    # Parked at the end of both partitions first (the first fetch of an
                    # empty partition answers at its deadline, as with Kafka).
                    self.wait_for_eof(consumer, {0, 1})
                    for p in (0, 1):
                        time.sleep(0.3)  # the fetch is parked now
                        producer.produce("wake", value=b"v", partition=p)
                        self.assertEqual(producer.flush(TIMEOUT_S), 0)
                        acked_at = time.monotonic()
                        msg = None
                        while time.monotonic() - acked_at < 10:
                            msg = consumer.poll(0.05)
                            if msg is not None and msg.error() is None:
                                break
                        self.assertIsNotNone(msg)
                        self.assertIsNone(msg.error())
                        self.assertEqual(msg.partition(), p)
                        waited = time.monotonic() - acked_at
                        # A fetch left to its 5 s deadline would take seconds.
                        self.assertLess(waited, 2.0, "partition %d took %.2f s" % (p, waited))
                finally:
                    consumer.close()

    def wait_for_eof(self, consumer, partitions):
        eof = set()
        deadline = time.monotonic() + TIMEOUT_S
        while eof != partitions and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is not None and \
                    msg.error().code() == KafkaError._PARTITION_EOF:
                eof.add(msg.partition())
        self.assertEqual(eof, partitions)

    def test_records_survive_restarts_with_other_core_counts(self):
        with running_sluice(SLUICE, extra_args=["--cores", "3"]) as broker:
            create_topic(broker.bootstrap, "moves", 6)
            first = produce(broker.bootstrap, "moves", 6, 50, "x")
            # The same data directory, served by 2 cores, then 1: partitions change owner.
            for cores in ("2", "1"):
                self.assertEqual(broker.stop(), 0)
                broker.extra_args = ["--cores", cores]
                broker.start()
                got = consume_all(broker.bootstrap, "moves", 6, 50)
                for p in range(6):
                    self.assertEqual(got[p], sorted(first[p]), "partition %d, %s cores" % (p, cores))
            # And a SIGKILL under 2 cores keeps what was acknowledged.
            self.assertEqual(broker.stop(), 0)
            broker.extra_args = ["--cores", "2"]
            broker.start()
            second = produce(broker.bootstrap, "moves", 6, 50, "y")
            broker.kill()
            broker.start()
            got = consume_all(broker.bootstrap, "moves", 6, 100)
            for p in range(6):
                self.assertEqual(got[p], sorted(first[p] + second[p]), "partition %d" % p)


if __name__ == "__main__":
    SLUICE = take_sluice_arg(sys.argv)
    unittest.main()
