"""Compatibility of a real `sluice` broker with kafka-python (pure Python client).

Run: /usr/bin/python3 kafka_python_test.py --sluice PATH [unittest args]

kafka-python guesses the broker's version (it sends ApiVersions v0 and a Metadata v0
probe, then infers a version from the ranges in the answer) and picks its request
versions from that guess, so these tests exercise different request versions than
librdkafka does. Every client's debug log (every request it sent) is captured and
printed when a test fails.
"""

import io
import logging
import os
import random
import shutil
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import running_sluice, take_sluice_arg  # noqa: E402

import kafka.errors as Errors  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic  # noqa: E402
from kafka.client_async import KafkaClient  # noqa: E402

SLUICE = None  # set from --sluice before unittest.main()
TIMEOUT_S = 30.0
BASE_TS_MS = (int(time.time()) - 3600) * 1000
LOG_TAIL_LINES = 60


class BrokerTestCase(unittest.TestCase):
    # Topics come only from CreateTopics unless a test asks otherwise: a Metadata request
    # for an unknown topic must not make it exist behind the test's back.
    extra_args = ("--auto-create-topics", "false")

    def setUp(self):
        # kafka-python logs each request it sends at DEBUG: keep them for failure reports.
        self.client_log = io.StringIO()
        self.log_handler = logging.StreamHandler(self.client_log)
        self.log_handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        logging.getLogger("kafka").addHandler(self.log_handler)
        logging.getLogger("kafka").setLevel(logging.DEBUG)
        self.addCleanup(logging.getLogger("kafka").removeHandler, self.log_handler)
        context = running_sluice(SLUICE, extra_args=self.extra_args, keep_dir=True)
        self.broker = context.__enter__()
        self.addCleanup(context.__exit__, None, None, None)
        self.closers = []
        self.addCleanup(self._close_clients)

    def _close_clients(self):
        for close in reversed(self.closers):
            try:
                close()
            except Exception as e:  # closing must not hide the test's own outcome
                print("closing a client failed: %r" % e, file=sys.stderr)

    def run(self, result=None):
        self.broker = None
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        if self.broker is not None:
            root = os.path.dirname(self.broker.log_path)
            if len(result.failures) + len(result.errors) > before:
                lines = self.client_log.getvalue().splitlines()
                print("\n[%s] kafka-python log (last %d lines):\n%s\n[%s] broker files kept in "
                      "%s\n%s" % (self.id(), min(LOG_TAIL_LINES, len(lines)),
                                  "\n".join(lines[-LOG_TAIL_LINES:]), self.id(), root,
                                  self.broker.log_tail()), file=sys.stderr)
            elif not os.environ.get("SLUICE_KEEP_DATA"):
                shutil.rmtree(root, ignore_errors=True)
        return outcome

    # --- clients ------------------------------------------------------------------------

    def common(self):
        return dict(bootstrap_servers=self.broker.bootstrap, request_timeout_ms=30000,
                    api_version_auto_timeout_ms=10000)

    def admin(self):
        admin = KafkaAdminClient(**self.common())
        self.closers.append(admin.close)
        return admin

    def producer(self, **config):
        producer = KafkaProducer(**self.common(), **config)
        self.closers.append(lambda: producer.close(timeout=10))
        return producer

    def consumer(self):
        consumer = KafkaConsumer(**self.common(), group_id=None, enable_auto_commit=False,
                                 auto_offset_reset="none", consumer_timeout_ms=1000)
        self.closers.append(lambda: consumer.close(autocommit=False))
        return consumer

    # --- helpers ------------------------------------------------------------------------

    def create_topic(self, admin, name, partitions, configs=None):
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                      topic_configs=configs or {})], timeout_ms=10000)
        deadline = time.monotonic() + 10
        while name not in admin.list_topics():
            self.assertLess(time.monotonic(), deadline, "created topic %s not listed" % name)
            time.sleep(0.1)

    def produce(self, producer, topic, messages):
        """messages: dicts of send() arguments. Returns (partition, offset) per message,
        waiting for every acknowledgement."""
        futures = [producer.send(topic, **m) for m in messages]
        producer.flush(timeout=60)
        out = []
        for i, f in enumerate(futures):
            try:
                md = f.get(timeout=TIMEOUT_S)
            except Exception as e:
                self.fail("send %d of %d failed: %r" % (i, len(futures), e))
            out.append((md.partition, md.offset))
        return out

    def consume(self, topic, counts):
        """Reads every partition of `counts` from the beginning (assign + seek, no group)
        until it holds the expected count; {partition: [ConsumerRecord]}."""
        consumer = self.consumer()
        partitions = [TopicPartition(topic, p) for p in counts]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        got = {p: [] for p in counts}
        deadline = time.monotonic() + TIMEOUT_S
        while any(len(got[p]) < n for p, n in counts.items()):
            if time.monotonic() > deadline:
                self.fail("timed out reading %s: got %s of %s" % (
                    topic, {p: len(v) for p, v in got.items()}, counts))
            for tp, records in consumer.poll(timeout_ms=500, max_records=1000).items():
                got[tp.partition].extend(records)
        # Nothing beyond what was written.
        extra = consumer.poll(timeout_ms=300)
        self.assertEqual({tp.partition: len(r) for tp, r in extra.items() if r}, {},
                         "more records than were written")
        return got

    def assert_read_matches_written(self, messages, placed, got):
        by_partition = {}
        for m, (p, off) in zip(messages, placed):
            by_partition.setdefault(p, []).append((off, m))
        self.assertEqual(sorted(p for p, r in got.items() if r), sorted(by_partition))
        for p, written in by_partition.items():
            read = got[p]
            self.assertEqual(len(read), len(written), "partition %d: count" % p)
            for i, ((off, m), r) in enumerate(zip(written, read)):
                where = "partition %d, message %d" % (p, i)
                self.assertEqual(r.offset, i, where + ": offsets not contiguous from 0")
                self.assertEqual(r.offset, off, where + ": offset differs from the ack")
                self.assertEqual(r.timestamp_type, 0, where + ": not CreateTime")
                self.assertEqual(
                    (r.key, r.value, list(r.headers), r.timestamp),
                    (m.get("key"), m.get("value"), list(m.get("headers") or []),
                     m["timestamp_ms"]), where + ": record differs")


def messages(count, seed, with_headers=True):
    rng = random.Random(seed)
    out = []
    for i in range(count):
        m = dict(key=b"key-%d" % rng.randrange(500),
                 value=b"value %d " % i + rng.randbytes(rng.randrange(200)),
                 timestamp_ms=BASE_TS_MS + 7 * i)
        if with_headers:
            m["headers"] = [("seq", b"%d" % i), ("dup", b"a"), ("dup", b"b"), ("empty", b"")]
        out.append(m)
    return out


class ApiVersionDetection(BrokerTestCase):

    def test_kafka_python_detects_a_version_with_record_headers(self):
        client = KafkaClient(**self.common())
        self.closers.append(client.close)
        version = client.config["api_version"]
        self.assertIsInstance(version, tuple)
        # Record headers and RecordBatch v2 need 0.11; kafka-python would refuse headers
        # (and use old message formats) below that.
        self.assertGreaterEqual(version, (0, 11, 0), "kafka-python inferred %s from ApiVersions "
                                "%s" % (version, client.get_api_versions()))
        versions = client.get_api_versions()
        for key, name in ((0, "Produce"), (1, "Fetch"), (2, "ListOffsets"), (3, "Metadata"),
                          (18, "ApiVersions"), (19, "CreateTopics"), (20, "DeleteTopics")):
            self.assertIn(key, versions, "%s (api key %d) not in ApiVersions" % (name, key))
            low, high = versions[key]
            self.assertLessEqual(low, high)
        print("\n  kafka-python inferred broker version %s" % (version,), file=sys.stderr)


class ProduceConsume(BrokerTestCase):

    def test_keyed_messages_with_headers_and_timestamps_round_trip(self):
        admin = self.admin()
        self.create_topic(admin, "roundtrip", 3)
        producer = self.producer(acks="all", linger_ms=5)
        self.assertGreaterEqual(producer.config["api_version"], (0, 11, 0))
        sent = messages(2000, seed=11)
        placed = self.produce(producer, "roundtrip", sent)
        counts = {p: sum(1 for q, _ in placed if q == p) for p in range(3)}
        self.assertTrue(all(counts.values()), counts)
        got = self.consume("roundtrip", counts)
        self.assert_read_matches_written(sent, placed, got)

    def test_null_keys_and_values_and_gzip(self):
        admin = self.admin()
        self.create_topic(admin, "nulls", 1)
        self.create_topic(admin, "gzipped", 2)
        producer = self.producer(acks="all")
        sent = [dict(key=None, value=b"", timestamp_ms=BASE_TS_MS, partition=0),
                dict(key=b"tombstone", value=None, timestamp_ms=BASE_TS_MS + 1, partition=0),
                dict(key=b"", value=b"empty key", timestamp_ms=BASE_TS_MS + 2, partition=0),
                dict(key=None, value=b"no key", timestamp_ms=BASE_TS_MS + 3, partition=0)]
        placed = self.produce(producer, "nulls", sent)
        self.assert_read_matches_written(sent, placed, self.consume("nulls", {0: len(sent)}))
        gzip_producer = self.producer(acks="all", compression_type="gzip", linger_ms=20)
        sent = messages(500, seed=12)
        for m in sent:
            m["value"] = m["value"][:12] + b" compressible" * 20
        placed = self.produce(gzip_producer, "gzipped", sent)
        counts = {p: sum(1 for q, _ in placed if q == p) for p in range(2)}
        self.assert_read_matches_written(sent, placed, self.consume("gzipped", counts))

    def test_offsets_lookup(self):
        admin = self.admin()
        self.create_topic(admin, "timed", 1)
        producer = self.producer(acks="all")
        sent = [dict(key=b"k", value=b"v%d" % i, timestamp_ms=BASE_TS_MS + 10 * i, partition=0)
                for i in range(50)]
        self.produce(producer, "timed", sent)
        consumer = self.consumer()
        tp = TopicPartition("timed", 0)
        self.assertEqual(consumer.beginning_offsets([tp]), {tp: 0})
        self.assertEqual(consumer.end_offsets([tp]), {tp: 50})
        # First offset whose timestamp is >= the query, from the timestamps written.
        for delta, expected in ((-100, 0), (0, 0), (15, 2), (490, 49)):
            answer = consumer.offsets_for_times({tp: BASE_TS_MS + delta})[tp]
            self.assertIsNotNone(answer, "no answer for delta %d" % delta)
            self.assertEqual(answer.offset, expected, "delta %d" % delta)
            self.assertEqual(answer.timestamp, BASE_TS_MS + 10 * expected)
        self.assertIsNone(consumer.offsets_for_times({tp: BASE_TS_MS + 491})[tp])


class Admin(BrokerTestCase):

    def test_create_list_delete_topics(self):
        admin = self.admin()
        admin.create_topics([NewTopic("checked", 3, 1)], timeout_ms=10000, validate_only=True)
        self.assertNotIn("checked", admin.list_topics(), "validate_only created the topic")
        self.create_topic(admin, "checked", 3)
        [described] = admin.describe_topics(["checked"])
        self.assertEqual(described["error_code"], 0)
        self.assertEqual(sorted(p["partition"] for p in described["partitions"]), [0, 1, 2])
        cluster = admin.describe_cluster()
        [node] = cluster["brokers"]
        self.assertEqual((node["host"], node["port"]), ("127.0.0.1", self.broker.port))
        for p in described["partitions"]:
            self.assertEqual((p["error_code"], p["leader"], p["replicas"], p["isr"]),
                             (0, node["node_id"], [node["node_id"]], [node["node_id"]]))
        with self.assertRaises(Errors.TopicAlreadyExistsError):
            admin.create_topics([NewTopic("checked", 1, 1)], timeout_ms=10000)
        with self.assertRaises(Errors.InvalidReplicationFactorError):
            admin.create_topics([NewTopic("replicated", 1, 3)], timeout_ms=10000)
        self.assertNotIn("replicated", admin.list_topics())
        self.create_topic(admin, "kept", 1)
        admin.delete_topics(["checked"], timeout_ms=10000)
        topics = admin.list_topics()
        self.assertNotIn("checked", topics)
        self.assertIn("kept", topics)
        with self.assertRaises(Errors.UnknownTopicOrPartitionError):
            admin.delete_topics(["checked"], timeout_ms=10000)

    def test_describe_configs(self):
        admin = self.admin()
        self.create_topic(admin, "configured", 1, {"retention.ms": "654321",
                                                   "cleanup.policy": "delete"})
        self.create_topic(admin, "plain", 1)
        try:
            responses = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, "configured"),
                 ConfigResource(ConfigResourceType.TOPIC, "plain")])
        except Errors.IncompatibleBrokerVersion as e:
            self.fail("DESCRIBE_CONFIGS (required) is not offered: %s; ApiVersions: %s"
                      % (e, admin._client.get_api_versions()))
        entries = {}
        for response in responses:
            for error_code, error_message, _, name, configs in response.resources:
                self.assertEqual(error_code, 0, "DESCRIBE_CONFIGS (required) failed for %s: %s"
                                 % (name, error_message))
                # v0 entries: (name, value, read_only, is_default, is_sensitive);
                # v1+: (name, value, read_only, config_source, is_sensitive, synonyms).
                entries[name] = {c[0]: c for c in configs}
        self.assertEqual(sorted(entries), ["configured", "plain"])
        for topic in ("configured", "plain"):
            for key in ("retention.ms", "cleanup.policy", "segment.bytes", "max.message.bytes"):
                self.assertIn(key, entries[topic], "%s not described for %s" % (key, topic))
        self.assertEqual(entries["configured"]["retention.ms"][1], "654321")
        self.assertEqual(entries["configured"]["cleanup.policy"][1], "delete")
        self.assertNotEqual(entries["plain"]["retention.ms"][1], "654321")
        self.assertRegex(entries["plain"]["retention.ms"][1], r"^-?[0-9]+$")


if __name__ == "__main__":
    SLUICE = take_sluice_arg(sys.argv)
    unittest.main(verbosity=2)
