"""Compatibility of a real `sluice` broker with confluent-kafka-python (librdkafka).

Run: /usr/bin/python3 confluent_kafka_test.py --sluice PATH [unittest args]

Every test starts its own broker on a free port with an empty data directory, writes
through the real client, reads back through the real client, and compares what it read
with what it wrote: keys, values, headers, timestamps, partitions, offsets and the order
within each partition. Set SLUICE_CLIENT_DEBUG=1 to get librdkafka's protocol log.
"""

import gc
import os
import random
import shutil
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import running_sluice, take_sluice_arg  # noqa: E402

from confluent_kafka import (  # noqa: E402
    OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, KafkaError, KafkaException, Producer,
    TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic  # noqa: E402

SLUICE = None  # set from --sluice before unittest.main()
TIMEOUT_S = 30.0
# Timestamps an hour in the past: clearly explicit (not the broker's clock), and well
# inside any default retention.
BASE_TS_MS = (int(time.time()) - 3600) * 1000


def debug_config():
    return {"debug": "protocol,broker,topic,msg"} if os.environ.get("SLUICE_CLIENT_DEBUG") else {}


class ClientErrors:
    """Collects errors librdkafka reports through error_cb (fatal ones included)."""

    def __init__(self):
        self.errors = []

    def __call__(self, err):
        self.errors.append(err)

    def fatal(self):
        return [e for e in self.errors if e.fatal()]

    def describe(self):
        return "; ".join("%s(%s fatal=%s)" % (e.name(), e.str(), e.fatal()) for e in self.errors)


class Sent:
    """One produced message and what its delivery report said about it."""

    __slots__ = ("key", "value", "headers", "timestamp", "partition", "offset", "error")

    def __init__(self, key, value, headers, timestamp, partition=None):
        self.key, self.value, self.headers, self.timestamp = key, value, headers, timestamp
        self.partition = partition
        self.offset = None
        self.error = None

    def record(self):
        return (self.key, self.value, self.headers, self.timestamp)


def produce_all(producer, topic, sent, flush_timeout_s=60.0):
    """Produces every Sent in order, recording each delivery report into it. Returns the
    number of messages still undelivered after the flush (0 expected)."""

    def report_into(item):
        def on_delivery(err, msg):
            item.error = err
            if err is None:
                item.partition = msg.partition()
                item.offset = msg.offset()
        return on_delivery

    for item in sent:
        kwargs = dict(value=item.value, key=item.key, on_delivery=report_into(item))
        if item.headers is not None:
            kwargs["headers"] = item.headers
        if item.timestamp is not None:
            kwargs["timestamp"] = item.timestamp
        if item.partition is not None:
            kwargs["partition"] = item.partition
        for _ in range(1000):  # a full local queue drains as the broker acknowledges
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        else:
            raise AssertionError("producer queue stayed full")
        producer.poll(0)
    return producer.flush(flush_timeout_s)


def consume_partitions(bootstrap, topic, expected_counts, timeout_s=TIMEOUT_S, extra=None):
    """Reads every partition in `expected_counts` from the beginning with assign() (no
    consumer group), until each has reached its end holding at least the expected
    number of messages. Returns {partition: [Message]} in the order read."""
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": "sluice-client-test-unused",  # required by the client; never joined
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        **debug_config(),
        **(extra or {}),
    }
    errors = ClientErrors()
    config["error_cb"] = errors
    consumer = Consumer(config)
    got = {p: [] for p in expected_counts}
    at_end = set()
    short_since = None  # when every partition was at its end with some still short
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in expected_counts])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = all(p in at_end and len(got[p]) >= n for p, n in expected_counts.items())
            if done:
                break
            if len(at_end) == len(expected_counts):
                short_since = short_since or time.monotonic()
                if time.monotonic() - short_since > 3:
                    raise AssertionError(
                        "%s: the partitions end before holding what was written: read %s, "
                        "expected %s" % (topic, {p: len(v) for p, v in got.items()},
                                         expected_counts))
            else:
                short_since = None
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                        continue
                    raise AssertionError("consume error on %s[%s] at %s: %s"
                                         % (topic, msg.partition(), msg.offset(), err))
                got[msg.partition()].append(msg)
                at_end.discard(msg.partition())
        else:
            raise AssertionError(
                "timed out reading %s: read %s of %s; client errors: %s"
                % (topic, {p: len(v) for p, v in got.items()}, expected_counts,
                   errors.describe()))
    finally:
        consumer.close()
    return got


def received_record(msg):
    ts_type, ts = msg.timestamp()
    return (msg.key(), msg.value(), msg.headers(), ts if ts_type == TIMESTAMP_CREATE_TIME
            else ("timestamp type %d" % ts_type, ts))


def normalize_headers(headers):
    # The client hands headers back as a list of (str, bytes|None) tuples, or None when
    # a record has none; an empty list written is "none" read.
    return list(headers) if headers else None


def _source(entry):
    return getattr(entry.source, "value", entry.source)


class BrokerTestCase(unittest.TestCase):
    # Topics come only from CreateTopics unless a test asks otherwise: a Metadata request
    # for an unknown topic must not make it exist behind the test's back.
    extra_args = ("--auto-create-topics", "false")

    def setUp(self):
        # The directory is kept until run() knows the outcome: its log is the broker's
        # side of any failure.
        context = running_sluice(SLUICE, extra_args=self.extra_args, keep_dir=True)
        self.broker = context.__enter__()
        self.addCleanup(context.__exit__, None, None, None)
        # Cleanups run last-in first-out: the clients go before the broker stops, so
        # they do not log reconnection failures into the next test's output.
        self.addCleanup(self._drop_clients)
        self.producers = []
        self.admin = AdminClient({"bootstrap.servers": self.broker.bootstrap, **debug_config()})

    def _drop_clients(self):
        for producer in self.producers:
            try:
                producer.flush(5)
            except KafkaException:  # a producer in a fatal state: the test reported it
                pass
        self.producers = []
        self.admin = None
        gc.collect()

    def run(self, result=None):
        self.broker = None
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        if self.broker is not None:
            root = os.path.dirname(self.broker.log_path)
            if len(result.failures) + len(result.errors) > before:
                print("\n[%s] broker files kept in %s\n%s"
                      % (self.id(), root, self.broker.log_tail()), file=sys.stderr)
            elif not os.environ.get("SLUICE_KEEP_DATA"):
                shutil.rmtree(root, ignore_errors=True)
        return outcome

    # --- helpers ------------------------------------------------------------------------

    def create_topic(self, name, partitions, config=None):
        futures = self.admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1,
                      config=config or {})], operation_timeout=10, request_timeout=TIMEOUT_S)
        futures[name].result(timeout=TIMEOUT_S)  # raises KafkaException on failure
        # The topic must be visible in metadata with all its partitions led by the broker.
        deadline = time.monotonic() + 10
        while True:
            md = self.admin.list_topics(timeout=10)
            t = md.topics.get(name)
            if t is not None and t.error is None and len(t.partitions) == partitions and \
                    all(pm.leader >= 0 for pm in t.partitions.values()):
                return
            if time.monotonic() > deadline:
                self.fail("topic %s created but not in metadata with %d led partitions: %s"
                          % (name, partitions, t and (t.error, t.partitions)))
            time.sleep(0.1)

    def producer(self, **config):
        errors = ClientErrors()
        producer = Producer({"bootstrap.servers": self.broker.bootstrap, "error_cb": errors,
                             "message.timeout.ms": 30000, **debug_config(), **config})
        self.producers.append(producer)
        return producer, errors

    def assert_all_delivered(self, sent, undelivered, errors):
        failed = [(i, s.error) for i, s in enumerate(sent) if s.error is not None]
        self.assertEqual(undelivered, 0, "messages still queued after flush; client errors: %s"
                         % errors.describe())
        self.assertEqual(failed[:5], [], "%d of %d deliveries failed (first shown); client "
                         "errors: %s" % (len(failed), len(sent), errors.describe()))
        missing = [i for i, s in enumerate(sent) if s.offset is None]
        self.assertEqual(missing[:5], [], "no delivery report for %d messages" % len(missing))

    def assert_read_matches_written(self, sent, got):
        """Per partition: the messages read are the messages written, in produce order,
        at the offsets their delivery reports named, with contiguous offsets from 0."""
        by_partition = {}
        for s in sent:
            by_partition.setdefault(s.partition, []).append(s)
        self.assertEqual(sorted(p for p, msgs in got.items() if msgs), sorted(by_partition),
                         "partitions holding data differ from the partitions written")
        for p, written in by_partition.items():
            read = got[p]
            self.assertEqual(len(read), len(written), "partition %d: read %d messages, wrote %d"
                             % (p, len(read), len(written)))
            for i, (w, r) in enumerate(zip(written, read)):
                where = "partition %d, message %d of the partition" % (p, i)
                self.assertEqual(r.offset(), i, where + ": offsets are not contiguous from 0")
                self.assertEqual(r.offset(), w.offset, where + ": offset differs from the "
                                 "delivery report (wrong order or lost/duplicated message)")
                self.assertEqual(received_record(r), (w.key, w.value,
                                                      normalize_headers(w.headers), w.timestamp),
                                 where + ": record differs")


def keyed_messages(count, seed, value_bytes_max=300):
    rng = random.Random(seed)
    out = []
    for i in range(count):
        key = b"key-%d" % rng.randrange(997)
        value = b"value-%d-" % i + rng.randbytes(rng.randrange(value_bytes_max))
        # No header with a null value: confluent-kafka-python 1.7.0 drops one reference
        # to None per such header it hands back (checked with sys.getrefcount), and a
        # few thousand of them crash the interpreter ("none_dealloc"). A client bug.
        headers = [("seq", b"%d" % i), ("dup", b"first"), ("dup", b"second"),
                   ("binary", rng.randbytes(8)), ("empty", b"")]
        out.append(Sent(key, value, headers, BASE_TS_MS + i))
    return out


class ProduceConsume(BrokerTestCase):

    def test_keyed_messages_with_headers_and_timestamps_round_trip(self):
        topic = "roundtrip"
        self.create_topic(topic, 3)
        producer, errors = self.producer(**{"acks": "all", "linger.ms": 5})
        sent = keyed_messages(5000, seed=1)
        undelivered = produce_all(producer, topic, sent)
        self.assert_all_delivered(sent, undelivered, errors)
        counts = {p: sum(1 for s in sent if s.partition == p) for p in range(3)}
        self.assertTrue(all(counts.values()), "the partitioner left a partition empty: %s" % counts)
        got = consume_partitions(self.broker.bootstrap, topic, counts)
        self.assert_read_matches_written(sent, got)

    def test_acks_0_and_1(self):
        topic = "acks"
        self.create_topic(topic, 1)
        for acks in ("1", "0"):
            with self.subTest(acks=acks):
                producer, errors = self.producer(acks=acks)
                sent = [Sent(b"k%d" % i, b"acks=%s %d" % (acks.encode(), i), None,
                             BASE_TS_MS + i, partition=0) for i in range(300)]
                undelivered = produce_all(producer, topic, sent)
                self.assertEqual(undelivered, 0, errors.describe())
                self.assertEqual([s.error for s in sent if s.error], [], errors.describe())
        # acks=0 reports no offsets: compare the log content in order instead.
        got = consume_partitions(self.broker.bootstrap, topic, {0: 600})[0]
        expected = [(b"k%d" % i, b"acks=%s %d" % (a, i), None, BASE_TS_MS + i)
                    for a in (b"1", b"0") for i in range(300)]
        self.assertEqual([received_record(m) for m in got], expected)
        self.assertEqual([m.offset() for m in got], list(range(600)))

    def test_waiting_fetch_wakes_up_when_data_arrives(self):
        # Long poll: with fetch.wait.max.ms at 5 s, a consumer parked at the end must get
        # a new message as soon as it is appended, not when its fetch times out.
        topic = "longpoll"
        self.create_topic(topic, 1)
        consumer = Consumer({"bootstrap.servers": self.broker.bootstrap,
                             "group.id": "sluice-client-test-unused", "enable.auto.commit": False,
                             "enable.partition.eof": True, "fetch.wait.max.ms": 5000,
                             **debug_config()})
        try:
            consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            # Poll for a while: the consumer connects, resolves the offset and sends a
            # fetch, which now waits on the broker (an empty partition has no EOF to
            # wait for here: librdkafka reports EOF only when a fetch comes back empty).
            quiet_until = time.monotonic() + 1.5
            while time.monotonic() < quiet_until:
                msg = consumer.poll(0.1)
                self.assertTrue(msg is None or (msg.error() is not None and msg.error().code()
                                                == KafkaError._PARTITION_EOF),
                                "unexpected message or error in an empty topic: %s"
                                % (msg and msg.error()))
            producer, errors = self.producer(acks="all")
            sent = [Sent(b"k", b"wake up", [("h", b"v")], BASE_TS_MS, partition=0)]
            self.assert_all_delivered(sent, produce_all(producer, topic, sent), errors)
            acked_at = time.monotonic()
            got = None
            while got is None and time.monotonic() < acked_at + 10:
                msg = consumer.poll(0.05)
                if msg is not None and msg.error() is None:
                    got = msg
            latency_s = time.monotonic() - acked_at
            self.assertIsNotNone(got, "the message never arrived")
            self.assertEqual(received_record(got), (b"k", b"wake up", [("h", b"v")], BASE_TS_MS))
            self.assertEqual(got.offset(), 0)
            self.assertLess(latency_s, 2.0, "the parked fetch was not woken by the append "
                            "(delivered %.2f s after the ack; fetch.wait.max.ms is 5 s)"
                            % latency_s)
        finally:
            consumer.close()

    def test_idempotent_producer(self):
        # InitProducerId (api key 22) must be supported: the issue requires it. A broker
        # without it makes librdkafka fail fatally, and this test FAILS (it never skips).
        topic = "idempotent"
        self.create_topic(topic, 3)
        producer, errors = self.producer(**{"enable.idempotence": True, "linger.ms": 5})
        sent = keyed_messages(2000, seed=2)
        try:
            undelivered = produce_all(producer, topic, sent)
        except KafkaException as e:
            try:
                producer.poll(0.5)  # serves the fatal error's cause (raised from poll)
                cause = errors.describe()
            except KafkaException as fatal:
                cause = str(fatal)
            self.fail("IDEMPOTENT PRODUCER (required by the issue) failed: produce() raised %s; "
                      "cause: %s" % (e, cause))
        fatal = errors.fatal()
        self.assertEqual(fatal, [], "IDEMPOTENT PRODUCER (required by the issue) failed fatally;"
                         " InitProducerId or idempotent Produce is not working: %s"
                         % errors.describe())
        self.assert_all_delivered(sent, undelivered, errors)
        counts = {p: sum(1 for s in sent if s.partition == p) for p in range(3)}
        got = consume_partitions(self.broker.bootstrap, topic, counts)
        values = [m.value() for msgs in got.values() for m in msgs]
        self.assertEqual(len(values), len(set(values)), "duplicates in the log")
        self.assert_read_matches_written(sent, got)

    def test_one_mebibyte_messages_and_null_keys_and_values(self):
        topic = "big"
        self.create_topic(topic, 1, config={"max.message.bytes": "2097152"})
        producer, errors = self.producer(**{"message.max.bytes": 4 * 1024 * 1024,
                                            "acks": "all"})
        rng = random.Random(3)
        mib = 1024 * 1024
        sent = [
            Sent(b"big-0", rng.randbytes(mib), [("h", b"1")], BASE_TS_MS, partition=0),
            Sent(None, None, None, BASE_TS_MS + 1, partition=0),   # null key, null value
            Sent(None, b"", None, BASE_TS_MS + 2, partition=0),    # null key, empty value
            Sent(b"", None, None, BASE_TS_MS + 3, partition=0),    # empty key, tombstone
            Sent(b"big-1", rng.randbytes(mib), None, BASE_TS_MS + 4, partition=0),
            Sent(None, rng.randbytes(mib), None, BASE_TS_MS + 5, partition=0),
            Sent(b"k", None, [("n", b"")], BASE_TS_MS + 6, partition=0),
            Sent(b"big-2", rng.randbytes(mib - 1000), None, BASE_TS_MS + 7, partition=0),
        ]
        undelivered = produce_all(producer, topic, sent)
        self.assert_all_delivered(sent, undelivered, errors)
        # A default consumer (max.partition.fetch.bytes 1 MiB) must still get the records
        # bigger than that: the broker returns the first batch whole (KIP-74).
        got = consume_partitions(self.broker.bootstrap, topic, {0: len(sent)}, timeout_s=60)
        self.assert_read_matches_written(sent, got)

    def test_message_over_the_topic_limit_is_rejected(self):
        topic = "limited"
        self.create_topic(topic, 1)  # broker default max.message.bytes (about 1 MiB)
        producer, errors = self.producer(**{"message.max.bytes": 4 * 1024 * 1024,
                                            "acks": "all", "retries": 0})
        sent = [Sent(b"small", b"before", None, BASE_TS_MS, partition=0)]
        self.assert_all_delivered(sent, produce_all(producer, topic, sent), errors)
        too_big = [Sent(b"huge", random.Random(4).randbytes(1536 * 1024), None, BASE_TS_MS + 1,
                        partition=0)]
        self.assertEqual(produce_all(producer, topic, too_big), 0)
        self.assertIsNotNone(too_big[0].error, "a 1.5 MiB message was accepted by a topic "
                             "limited to about 1 MiB")
        self.assertEqual(too_big[0].error.code(), KafkaError.MSG_SIZE_TOO_LARGE,
                         str(too_big[0].error))
        after = [Sent(b"small", b"after", None, BASE_TS_MS + 2, partition=0)]
        self.assert_all_delivered(after, produce_all(producer, topic, after), errors)
        got = consume_partitions(self.broker.bootstrap, topic, {0: 2})
        self.assert_read_matches_written(sent + after, got)

    def test_compression_codecs(self):
        for codec in ("gzip", "snappy", "lz4", "zstd"):
            with self.subTest(codec=codec):
                topic = "compressed-" + codec
                self.create_topic(topic, 2)
                producer, errors = self.producer(**{"compression.type": codec, "acks": "all",
                                                    "linger.ms": 20})
                rng = random.Random(codec)
                sent = []
                for i in range(500):
                    words = b" ".join(rng.choice([b"alpha", b"beta", b"gamma", b"delta"])
                                      for _ in range(rng.randrange(1, 60)))
                    sent.append(Sent(b"key-%d" % (i % 13), b"%s %d %s" % (codec.encode(), i, words),
                                     [("i", b"%d" % i)], BASE_TS_MS + i * 3))
                undelivered = produce_all(producer, topic, sent)
                self.assert_all_delivered(sent, undelivered, errors)
                counts = {p: sum(1 for s in sent if s.partition == p) for p in range(2)}
                got = consume_partitions(self.broker.bootstrap, topic, counts)
                self.assert_read_matches_written(sent, got)


class AutoCreate(BrokerTestCase):
    extra_args = ("--auto-create-topics", "true", "--default-partitions", "2")

    def test_producing_to_an_unknown_topic_creates_it(self):
        producer, errors = self.producer(acks="all")
        sent = [Sent(b"k%d" % i, b"v%d" % i, None, BASE_TS_MS + i, partition=i % 2)
                for i in range(20)]
        self.assert_all_delivered(sent, produce_all(producer, "made-on-demand", sent), errors)
        md = self.admin.list_topics(timeout=10)
        self.assertIn("made-on-demand", md.topics)
        self.assertEqual(len(md.topics["made-on-demand"].partitions), 2)
        got = consume_partitions(self.broker.bootstrap, "made-on-demand", {0: 10, 1: 10})
        self.assert_read_matches_written(sent, got)


class Admin(BrokerTestCase):

    def create_error(self, topic, **kwargs):
        validate_only = kwargs.pop("validate_only", False)
        futures = self.admin.create_topics([NewTopic(topic, **kwargs)], validate_only=validate_only,
                                           operation_timeout=10, request_timeout=TIMEOUT_S)
        try:
            futures[topic].result(timeout=TIMEOUT_S)
            return None
        except KafkaException as e:
            return e.args[0]

    def topics(self):
        return self.admin.list_topics(timeout=10).topics

    def test_create_topics_validate_only_then_create_then_already_exists(self):
        err = self.create_error("checked", num_partitions=4, replication_factor=1,
                                validate_only=True)
        self.assertIsNone(err, "validate_only create of a valid topic failed: %s" % err)
        self.assertNotIn("checked", self.topics(), "validate_only created the topic")
        self.create_topic("checked", 4)
        md = self.admin.list_topics(timeout=10)
        topic = md.topics["checked"]
        self.assertEqual(sorted(topic.partitions), [0, 1, 2, 3])
        broker_ids = list(md.brokers)
        self.assertEqual(len(broker_ids), 1, "a single-node broker lists one broker")
        bid = broker_ids[0]
        self.assertEqual((md.brokers[bid].host, md.brokers[bid].port),
                         ("127.0.0.1", self.broker.port), "advertised address")
        self.assertEqual(md.controller_id, bid)
        for p, pm in topic.partitions.items():
            self.assertEqual((pm.leader, list(pm.replicas), list(pm.isrs), pm.error),
                             (bid, [bid], [bid], None), "partition %d metadata" % p)
        err = self.create_error("checked", num_partitions=4, replication_factor=1)
        self.assertIsNotNone(err, "creating an existing topic succeeded")
        self.assertEqual(err.code(), KafkaError.TOPIC_ALREADY_EXISTS, str(err))
        err = self.create_error("checked", num_partitions=1, replication_factor=1,
                                validate_only=True)
        self.assertIsNotNone(err, "validate_only of an existing topic succeeded")
        self.assertEqual(err.code(), KafkaError.TOPIC_ALREADY_EXISTS, str(err))
        self.assertEqual(len(self.topics()["checked"].partitions), 4)

    def test_replication_factor_above_the_broker_count_is_rejected(self):
        err = self.create_error("replicated", num_partitions=1, replication_factor=3)
        self.assertIsNotNone(err, "replication factor 3 accepted by a single broker")
        self.assertEqual(err.code(), KafkaError.INVALID_REPLICATION_FACTOR, str(err))
        self.assertNotIn("replicated", self.topics())

    def test_delete_topics(self):
        self.create_topic("doomed", 2)
        self.create_topic("kept", 1)
        producer, errors = self.producer(acks="all")
        sent = [Sent(b"k", b"v%d" % i, None, BASE_TS_MS + i, partition=i % 2) for i in range(10)]
        self.assert_all_delivered(sent, produce_all(producer, "doomed", sent), errors)
        futures = self.admin.delete_topics(["doomed"], operation_timeout=10,
                                           request_timeout=TIMEOUT_S)
        futures["doomed"].result(timeout=TIMEOUT_S)
        topics = self.topics()
        self.assertNotIn("doomed", topics)
        self.assertIn("kept", topics)
        # Deleting again: the topic is unknown.
        futures = self.admin.delete_topics(["doomed"], operation_timeout=10,
                                           request_timeout=TIMEOUT_S)
        with self.assertRaises(KafkaException) as caught:
            futures["doomed"].result(timeout=TIMEOUT_S)
        self.assertEqual(caught.exception.args[0].code(), KafkaError.UNKNOWN_TOPIC_OR_PART,
                         str(caught.exception))
        # The same name again is a new, empty topic: the old data is gone.
        self.create_topic("doomed", 2)
        consumer = Consumer({"bootstrap.servers": self.broker.bootstrap,
                             "group.id": "sluice-client-test-unused", **debug_config()})
        try:
            for p in (0, 1):
                self.assertEqual(consumer.get_watermark_offsets(
                    TopicPartition("doomed", p), timeout=10, cached=False), (0, 0))
        finally:
            consumer.close()

    def test_describe_configs(self):
        # DescribeConfigs (api key 32) is part of the admin surface.
        self.create_topic("configured", 1, config={"retention.ms": "123456",
                                                   "cleanup.policy": "delete",
                                                   "max.message.bytes": "2000000"})
        self.create_topic("plain", 1)
        resources = [ConfigResource("topic", "configured"), ConfigResource("topic", "plain")]
        futures = self.admin.describe_configs(resources, request_timeout=TIMEOUT_S)
        results = {}
        for resource, future in futures.items():
            try:
                results[resource.name] = future.result(timeout=TIMEOUT_S)
            except KafkaException as e:
                self.fail("DESCRIBE_CONFIGS (required) failed for %s: %s" % (resource, e))
        configured, plain = results["configured"], results["plain"]
        for name in ("retention.ms", "retention.bytes", "segment.bytes", "cleanup.policy",
                     "max.message.bytes", "message.timestamp.type"):
            self.assertIn(name, configured, "topic config %s not described" % name)
            self.assertIn(name, plain, "topic config %s not described" % name)
        self.assertEqual(configured["retention.ms"].value, "123456")
        self.assertFalse(configured["retention.ms"].is_default)
        self.assertEqual(configured["max.message.bytes"].value, "2000000")
        self.assertEqual(configured["cleanup.policy"].value, "delete")
        # Without an override the value comes from the broker (its default or its
        # static config), never from the topic.
        broker_sources = (ConfigSource.DEFAULT_CONFIG.value,
                          ConfigSource.STATIC_BROKER_CONFIG.value,
                          ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
        plain_entry = plain["retention.ms"]
        self.assertTrue(plain_entry.is_default or _source(plain_entry) in broker_sources,
                        "retention.ms of a topic without overrides: source %s, is_default %s"
                        % (plain_entry.source, plain_entry.is_default))
        self.assertNotEqual(_source(configured["retention.ms"]), ConfigSource.DEFAULT_CONFIG.value)
        self.assertNotEqual(plain["retention.ms"].value, "123456")
        self.assertRegex(plain["retention.ms"].value, r"^-?[0-9]+$")

    def test_watermarks_and_offsets_for_times(self):
        topic = "timed"
        self.create_topic(topic, 2)
        producer, errors = self.producer(acks="all")
        sent = [Sent(b"k%d" % i, b"v%d" % i, None, BASE_TS_MS + 10 * i, partition=0)
                for i in range(100)]
        self.assert_all_delivered(sent, produce_all(producer, topic, sent), errors)
        consumer = Consumer({"bootstrap.servers": self.broker.bootstrap,
                             "group.id": "sluice-client-test-unused", **debug_config()})
        try:
            self.assertEqual(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10,
                                                            cached=False), (0, 100))
            self.assertEqual(consumer.get_watermark_offsets(TopicPartition(topic, 1), timeout=10,
                                                            cached=False), (0, 0))
            # Offset of the first message whose timestamp is >= the asked one: derived
            # from the timestamps written (BASE + 10 i).
            queries = {BASE_TS_MS - 5000: 0, BASE_TS_MS: 0, BASE_TS_MS + 55: 6,
                       BASE_TS_MS + 60: 6, BASE_TS_MS + 990: 99, BASE_TS_MS + 991: -1}
            for ts, expected in queries.items():
                with self.subTest(timestamp_delta=ts - BASE_TS_MS):
                    [answer] = consumer.offsets_for_times([TopicPartition(topic, 0, ts)],
                                                          timeout=10)
                    self.assertIsNone(answer.error)
                    self.assertEqual(answer.offset, expected)
            [empty] = consumer.offsets_for_times([TopicPartition(topic, 1, BASE_TS_MS)],
                                                 timeout=10)
            self.assertEqual(empty.offset, -1)
        finally:
            consumer.close()


class Restart(BrokerTestCase):

    def test_acknowledged_messages_survive_sigkill(self):
        topic = "durable"
        self.create_topic(topic, 3)
        producer, errors = self.producer(**{"acks": "all", "linger.ms": 5})
        sent = keyed_messages(3000, seed=5)
        self.assert_all_delivered(sent, produce_all(producer, topic, sent), errors)
        self.assertEqual(self.broker.kill(), -9)
        self.broker.restart()
        counts = {p: sum(1 for s in sent if s.partition == p) for p in range(3)}
        got = consume_partitions(self.broker.bootstrap, topic, counts)
        self.assert_read_matches_written(sent, got)
        # Appends continue after the recovered end.
        more = keyed_messages(300, seed=6)
        for i, s in enumerate(more):
            s.timestamp = BASE_TS_MS + 10000 + i
        self.assert_all_delivered(more, produce_all(producer, topic, more), errors)
        counts = {p: sum(1 for s in sent + more if s.partition == p) for p in range(3)}
        got = consume_partitions(self.broker.bootstrap, topic, counts)
        self.assert_read_matches_written(sent + more, got)

    def test_sigkill_while_producing_keeps_every_acknowledged_message(self):
        topic = "interrupted"
        self.create_topic(topic, 3)
        producer, errors = self.producer(**{"acks": "all", "linger.ms": 2,
                                            "message.timeout.ms": 20000})
        sent = keyed_messages(10000, seed=7)
        killed_after = None
        acked = [0]  # delivery reports with success so far
        in_flight_max = 1500  # keeps production just ahead of the acknowledgements
        for index, item in enumerate(sent):
            def on_delivery(err, msg, item=item):
                item.error = err
                if err is None:
                    item.partition, item.offset = msg.partition(), msg.offset()
                    acked[0] += 1
            for _ in range(1000):
                try:
                    producer.produce(topic, value=item.value, key=item.key, headers=item.headers,
                                     timestamp=item.timestamp, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            if killed_after is not None or index % 100 != 99:
                continue
            # Until the kill, wait for acknowledgements whenever too many are pending, so
            # that the kill finds both acknowledged and in-flight messages.
            deadline = time.monotonic() + TIMEOUT_S
            while index + 1 - acked[0] > in_flight_max and time.monotonic() < deadline:
                producer.poll(0.01)
            if acked[0] >= 2000:
                self.broker.kill()  # messages are in flight right now
                killed_after = index + 1
        self.assertIsNotNone(killed_after, "never reached 2000 acknowledged messages")
        acked_before_kill = [s for s in sent if s.offset is not None]
        time.sleep(0.5)
        self.broker.restart()
        self.assertEqual(producer.flush(60), 0, "producer did not drain after the restart")
        acked = [s for s in sent if s.error is None and s.offset is not None]
        self.assertTrue(set(map(id, acked_before_kill)) <= set(map(id, acked)))
        hw = {}
        consumer = Consumer({"bootstrap.servers": self.broker.bootstrap,
                             "group.id": "sluice-client-test-unused"})
        try:
            for p in range(3):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10,
                                                           cached=False)
                self.assertEqual(low, 0)
                hw[p] = high
        finally:
            consumer.close()
        got = consume_partitions(self.broker.bootstrap, topic, hw)
        for p, msgs in got.items():
            self.assertEqual([m.offset() for m in msgs], list(range(hw[p])),
                             "partition %d: offsets not contiguous after recovery" % p)
        for s in acked:
            msgs = got[s.partition]
            self.assertLess(s.offset, len(msgs), "acknowledged message at %d/%d lost"
                            % (s.partition, s.offset))
            self.assertEqual(received_record(msgs[s.offset]),
                             (s.key, s.value, normalize_headers(s.headers), s.timestamp),
                             "acknowledged message at %d/%d differs" % (s.partition, s.offset))
        print("\n  killed after %d produced: %d acknowledged before the kill, %d in all"
              % (killed_after, len(acked_before_kill), len(acked)), file=sys.stderr)


if __name__ == "__main__":
    SLUICE = take_sluice_arg(sys.argv)
    unittest.main(verbosity=2)
