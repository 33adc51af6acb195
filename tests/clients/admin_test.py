"""The admin APIs of a real `sluice` broker through confluent-kafka-python's AdminClient.

Run: /usr/bin/python3 admin_test.py --sluice PATH [unittest args]

CreatePartitions and DescribeConfigs go through AdminClient. confluent-kafka 1.7 (with
librdkafka 2.0) has neither incremental_alter_configs nor describe_cluster, so
IncrementalAlterConfigs is sent as a hand-encoded v0 request on a plain socket (its
effect is then read back through AdminClient), and the DescribeCluster case is skipped
when the client lacks it.
"""

import os
import socket
import struct
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import running_sluice, take_sluice_arg  # noqa: E402

from confluent_kafka import KafkaError, Producer  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AdminClient, ConfigResource, NewPartitions, NewTopic)

SLUICE = None  # set from --sluice before unittest.main()
TIMEOUT_S = 30.0
SEVEN_DAYS_MS = str(7 * 24 * 3600 * 1000)

DYNAMIC_TOPIC_CONFIG = 1
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5


def source_id(entry):
    source = entry.source
    return source.value if hasattr(source, "value") else int(source)


def wait_all(futures):
    return {key: future.result(timeout=TIMEOUT_S) for key, future in futures.items()}


def describe_topic(admin, topic):
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)


# ---- IncrementalAlterConfigs v0 on a plain socket ------------------------------------------

def _string(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def _nullable_string(text):
    return struct.pack(">h", -1) if text is None else _string(text)


def incremental_alter_configs(bootstrap, topic, changes, validate_only=False):
    """Sends IncrementalAlterConfigs v0 for one TOPIC resource; `changes` is a list of
    (name, operation, value). Returns (error_code, error_message)."""
    body = struct.pack(">i", 1) + struct.pack(">b", 2) + _string(topic)
    body += struct.pack(">i", len(changes))
    for name, operation, value in changes:
        body += _string(name) + struct.pack(">b", operation) + _nullable_string(value)
    body += struct.pack(">?", validate_only)
    correlation_id = 4242
    header = struct.pack(">hhi", 44, 0, correlation_id) + _string("admin-test")
    request = header + body
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _read_exactly(s, 4))[0]
        reply = _read_exactly(s, size)
    got_id, _throttle, count = struct.unpack(">iii", reply[:12])
    assert got_id == correlation_id and count == 1, (got_id, count)
    error_code, message_size = struct.unpack(">hh", reply[12:16])
    position = 16
    message = None
    if message_size >= 0:
        message = reply[position:position + message_size].decode()
        position += message_size
    resource_type = struct.unpack(">b", reply[position:position + 1])[0]
    name_size = struct.unpack(">h", reply[position + 1:position + 3])[0]
    name = reply[position + 3:position + 3 + name_size].decode()
    assert resource_type == 2 and name == topic, (resource_type, name)
    assert position + 3 + name_size == len(reply), "trailing bytes in the response"
    return error_code, message


def _read_exactly(s, size):
    data = b""
    while len(data) < size:
        chunk = s.recv(size - len(data))
        if not chunk:
            raise RuntimeError("connection closed after %d of %d bytes" % (len(data), size))
        data += chunk
    return data


class AdminTest(unittest.TestCase):

    def admin(self, broker):
        return AdminClient({"bootstrap.servers": broker.bootstrap})

    def create_topic(self, admin, name, partitions=1):
        wait_all(admin.create_topics([NewTopic(name, num_partitions=partitions,
                                               replication_factor=1)]))

    def test_create_partitions_grows_a_topic_that_then_takes_writes(self):
        with running_sluice(SLUICE) as broker:
            admin = self.admin(broker)
            self.create_topic(admin, "growing", 1)
            wait_all(admin.create_partitions([NewPartitions("growing", 3)]))
            metadata = admin.list_topics(topic="growing", timeout=TIMEOUT_S)
            self.assertEqual(sorted(metadata.topics["growing"].partitions), [0, 1, 2])

            delivered = []
            producer = Producer({"bootstrap.servers": broker.bootstrap,
                                 "topic.metadata.refresh.interval.ms": 500})
            producer.produce("growing", value=b"to partition 2", partition=2,
                             on_delivery=lambda err, msg: delivered.append((err, msg)))
            self.assertEqual(producer.flush(TIMEOUT_S), 0)
            self.assertEqual(len(delivered), 1)
            err, msg = delivered[0]
            self.assertIsNone(err)
            self.assertEqual((msg.partition(), msg.offset()), (2, 0))

            # Not growing is refused with INVALID_PARTITIONS.
            futures = admin.create_partitions([NewPartitions("growing", 3)])
            with self.assertRaises(Exception) as refused:
                futures["growing"].result(timeout=TIMEOUT_S)
            self.assertEqual(refused.exception.args[0].code(), KafkaError.INVALID_PARTITIONS)

    def test_describe_configs_of_a_topic_and_of_the_broker(self):
        with running_sluice(SLUICE, extra_args=["--segment-bytes", "1048576"]) as broker:
            admin = self.admin(broker)
            self.create_topic(admin, "described")
            configs = describe_topic(admin, "described")
            for name in ("cleanup.policy", "retention.ms", "retention.bytes", "segment.bytes",
                         "segment.ms", "max.message.bytes", "min.insync.replicas"):
                self.assertIn(name, configs)
            self.assertEqual(configs["retention.ms"].value, SEVEN_DAYS_MS)
            self.assertEqual(source_id(configs["retention.ms"]), DEFAULT_CONFIG)
            self.assertEqual(configs["segment.bytes"].value, "1048576")
            self.assertEqual(source_id(configs["segment.bytes"]), STATIC_BROKER_CONFIG)
            self.assertEqual(configs["cleanup.policy"].value, "delete")
            self.assertFalse(configs["retention.ms"].is_read_only)

            resource = ConfigResource(ConfigResource.Type.BROKER, "0")
            configs = admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
            self.assertEqual(configs["log.segment.bytes"].value, "1048576")
            self.assertEqual(source_id(configs["log.segment.bytes"]), STATIC_BROKER_CONFIG)
            self.assertEqual(configs["log.retention.ms"].value, SEVEN_DAYS_MS)
            self.assertEqual(configs["node.id"].value, "0")
            self.assertTrue(configs["num.partitions"].is_read_only)

            missing = ConfigResource(ConfigResource.Type.TOPIC, "absent")
            with self.assertRaises(Exception) as refused:
                admin.describe_configs([missing])[missing].result(timeout=TIMEOUT_S)
            self.assertEqual(refused.exception.args[0].code(), KafkaError.UNKNOWN_TOPIC_OR_PART)

    def test_incremental_alter_configs_sets_deletes_and_persists(self):
        with running_sluice(SLUICE) as broker:
            admin = self.admin(broker)
            self.create_topic(admin, "tuned")
            self.assertEqual(
                incremental_alter_configs(broker.bootstrap, "tuned",
                                          [("retention.ms", 0, "3600000")], validate_only=True),
                (0, None))
            self.assertEqual(describe_topic(admin, "tuned")["retention.ms"].value, SEVEN_DAYS_MS)

            self.assertEqual(incremental_alter_configs(broker.bootstrap, "tuned",
                                                       [("retention.ms", 0, "3600000")]),
                             (0, None))
            entry = describe_topic(admin, "tuned")["retention.ms"]
            self.assertEqual(entry.value, "3600000")
            self.assertEqual(source_id(entry), DYNAMIC_TOPIC_CONFIG)

            self.assertEqual(incremental_alter_configs(broker.bootstrap, "tuned",
                                                       [("retention.ms", 1, None)]), (0, None))
            entry = describe_topic(admin, "tuned")["retention.ms"]
            self.assertEqual(entry.value, SEVEN_DAYS_MS)
            self.assertEqual(source_id(entry), DEFAULT_CONFIG)

            code, message = incremental_alter_configs(broker.bootstrap, "tuned",
                                                      [("cleanup.policy", 0, "shred")])
            self.assertEqual(code, 40)  # INVALID_CONFIG
            self.assertIn("cleanup.policy", message)
            self.assertEqual(incremental_alter_configs(broker.bootstrap, "tuned",
                                                       [("cleanup.policy", 0, "compact,delete")]),
                             (0, None))
            self.assertEqual(describe_topic(admin, "tuned")["cleanup.policy"].value,
                             "compact,delete")

            # An override survives a restart.
            self.assertEqual(incremental_alter_configs(broker.bootstrap, "tuned",
                                                       [("segment.ms", 0, "60000")]), (0, None))
            broker.restart()
            admin = self.admin(broker)
            entry = describe_topic(admin, "tuned")["segment.ms"]
            self.assertEqual(entry.value, "60000")
            self.assertEqual(source_id(entry), DYNAMIC_TOPIC_CONFIG)

    def test_describe_cluster(self):
        admin_class = AdminClient
        if not hasattr(admin_class, "describe_cluster"):
            self.skipTest("confluent-kafka %s (librdkafka %s) has no AdminClient.describe_cluster"
                          % (__import__("confluent_kafka").version()[0],
                             __import__("confluent_kafka").libversion()[0]))
        with running_sluice(SLUICE) as broker:
            description = self.admin(broker).describe_cluster().result(timeout=TIMEOUT_S)
            self.assertEqual(len(description.nodes), 1)
            self.assertEqual(description.nodes[0].id, 0)
            self.assertEqual(description.controller.id, 0)
            self.assertTrue(description.cluster_id)


if __name__ == "__main__":
    SLUICE = take_sluice_arg(sys.argv)
    unittest.main()
