"""sluice-admin against a real `sluice` broker, checked against confluent-kafka's view.

Run: /usr/bin/python3 admin_tool_test.py --sluice PATH [--sluice-admin PATH] [unittest args]

Without --sluice-admin (or $SLUICE_ADMIN_BINARY) the tool is looked for where the build
puts it: tools/admin/sluice-admin beside the build's broker/ directory.

- topics create / list / describe / alter-config / delete do what AdminClient then sees,
  and --json prints one document that says the same;
- usage errors exit 2 with one line on stderr and nothing on stdout; failures the broker
  reports exit 1 with one line naming the topic or group and the Kafka error;
- groups: a confluent-kafka consumer in a group consumes part of a topic, commits and
  closes; `groups describe --json` shows the committed offset, log end offset and lag
  of each partition, as computed here from what was produced and consumed; a reset to
  the earliest offsets makes the next consumer re-read from 0; delete removes the group.
  These skip, saying why, only when the broker's ApiVersions lacks the group APIs.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import running_sluice, take_sluice_arg  # noqa: E402

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource  # noqa: E402

SLUICE = None  # set from --sluice before unittest.main()
SLUICE_ADMIN = None  # set from --sluice-admin, or found beside the broker
TIMEOUT_S = 30.0
DYNAMIC_TOPIC_CONFIG = 1
# The APIs a consumer group and the groups commands need (Kafka API keys).
GROUP_APIS = {8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup",
              12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups",
              16: "ListGroups", 42: "DeleteGroups"}


def take_admin_arg(argv, sluice_path):
    """Removes `--sluice-admin PATH` from argv; falls back to $SLUICE_ADMIN_BINARY, then to
    the build tree's tools/admin/sluice-admin next to the broker's broker/ directory."""
    path = os.environ.get("SLUICE_ADMIN_BINARY")
    rest = [argv[0]]
    i = 1
    while i < len(argv):
        if argv[i] == "--sluice-admin" and i + 1 < len(argv):
            path = argv[i + 1]
            i += 2
            continue
        if argv[i].startswith("--sluice-admin="):
            path = argv[i][len("--sluice-admin="):]
        else:
            rest.append(argv[i])
        i += 1
    if not path:
        build = os.path.dirname(os.path.dirname(os.path.abspath(sluice_path)))
        path = os.path.join(build, "tools", "admin", "sluice-admin")
    if not os.access(path, os.X_OK):
        raise SystemExit("%s: not an executable sluice-admin binary" % path)
    argv[:] = rest
    return path


def run_admin(broker, *args, bootstrap=None):
    """Runs sluice-admin against `broker`; returns the CompletedProcess (text)."""
    command = [SLUICE_ADMIN, "--bootstrap", bootstrap or broker.bootstrap, *args]
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT_S * 2)


def broker_api_keys(bootstrap):
    """The API keys the broker lists in ApiVersions v0, on a plain socket."""
    host, port = bootstrap.rsplit(":", 1)
    client_id = b"admin-tool-test"
    request = struct.pack(">hhih", 18, 0, 77, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _read_exactly(s, 4))[0]
        reply = _read_exactly(s, size)
    correlation_id, error_code, count = struct.unpack(">ihi", reply[:10])
    assert correlation_id == 77 and error_code == 0, (correlation_id, error_code)
    keys = set()
    for i in range(count):
        key, _low, _high = struct.unpack(">hhh", reply[10 + 6 * i:16 + 6 * i])
        keys.add(key)
    return keys


def _read_exactly(s, size):
    data = b""
    while len(data) < size:
        chunk = s.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes" % (len(data), size))
        data += chunk
    return data


def wait_until(condition, timeout_s=TIMEOUT_S, step_s=0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()


class AdminToolTest(unittest.TestCase):

    def assertOneLineError(self, result, exit_code, *fragments):
        self.assertEqual(result.returncode, exit_code, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertEqual(result.stderr.count("\n"), 1, result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)

    def admin_client(self, broker):
        return AdminClient({"bootstrap.servers": broker.bootstrap})

    def describe_configs(self, admin, topic):
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        return admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)

    # ---- topics ----------------------------------------------------------------------------

    def test_topics_create_list_describe_alter_delete(self):
        with running_sluice(SLUICE) as broker:
            admin = self.admin_client(broker)
            created = run_admin(broker, "topics", "create", "orders", "--partitions", "3",
                                "--config", "retention.ms=3600000", "--json")
            self.assertEqual(created.returncode, 0, created.stderr)
            document = json.loads(created.stdout)
            self.assertEqual(document["created"]["name"], "orders")
            self.assertEqual(document["created"]["partitions"], 3)

            metadata = admin.list_topics(timeout=TIMEOUT_S)
            self.assertIn("orders", metadata.topics)
            self.assertEqual(len(metadata.topics["orders"].partitions), 3)

            listed = run_admin(broker, "topics", "list", "--json")
            self.assertEqual(listed.returncode, 0, listed.stderr)
            topics = {t["name"]: t for t in json.loads(listed.stdout)["topics"]}
            self.assertEqual(set(topics), set(metadata.topics))
            self.assertEqual(topics["orders"]["partitions"], 3)
            self.assertEqual(len(topics["orders"]["topic_id"]), 22)

            described = run_admin(broker, "topics", "describe", "orders", "--json")
            self.assertEqual(described.returncode, 0, described.stderr)
            (topic,) = json.loads(described.stdout)["topics"]
            self.assertEqual(topic["name"], "orders")
            self.assertEqual(topic["topic_id"], topics["orders"]["topic_id"])
            theirs = metadata.topics["orders"].partitions
            self.assertEqual([p["partition"] for p in topic["partitions"]], sorted(theirs))
            for p in topic["partitions"]:
                self.assertEqual(p["leader"], theirs[p["partition"]].leader)
                self.assertEqual(p["replicas"], list(theirs[p["partition"]].replicas))
                self.assertEqual(p["isr"], list(theirs[p["partition"]].isrs))
            # Every config, as AdminClient reads it.
            configs = {c["name"]: c for c in topic["configs"]}
            their_configs = self.describe_configs(admin, "orders")
            self.assertEqual(set(configs), set(their_configs))
            for name, entry in their_configs.items():
                self.assertEqual(configs[name]["value"], entry.value, name)
            self.assertEqual(configs["retention.ms"]["value"], "3600000")
            self.assertEqual(configs["retention.ms"]["source"], "DYNAMIC_TOPIC_CONFIG")

            altered = run_admin(broker, "topics", "alter-config", "orders", "--set",
                                "segment.ms=600000", "--delete", "retention.ms", "--json")
            self.assertEqual(altered.returncode, 0, altered.stderr)
            self.assertEqual(json.loads(altered.stdout),
                             {"topic": "orders", "set": {"segment.ms": "600000"},
                              "deleted": ["retention.ms"]})
            their_configs = self.describe_configs(admin, "orders")
            self.assertEqual(their_configs["segment.ms"].value, "600000")
            self.assertNotEqual(their_configs["retention.ms"].value, "3600000")
            table = run_admin(broker, "topics", "describe", "orders")
            self.assertIn("segment.ms=600000", table.stdout)
            self.assertNotIn("retention.ms", table.stdout)

            deleted = run_admin(broker, "topics", "delete", "orders")
            self.assertEqual(deleted.returncode, 0, deleted.stderr)
            self.assertEqual(deleted.stdout, "Deleted topic orders.\n")
            self.assertTrue(wait_until(
                lambda: "orders" not in admin.list_topics(timeout=TIMEOUT_S).topics))

    def test_tables_are_aligned(self):
        with running_sluice(SLUICE) as broker:
            for name, partitions in (("a", "1"), ("a-much-longer-name", "12")):
                result = run_admin(broker, "topics", "create", name, "--partitions", partitions)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(result.stdout,
                                 "Created topic %s with %s partitions.\n" % (name, partitions))
            listed = run_admin(broker, "topics", "list")
            self.assertEqual(listed.returncode, 0, listed.stderr)
            lines = listed.stdout.splitlines()
            self.assertEqual(lines[0].split(), ["TOPIC", "PARTITIONS", "TOPIC-ID"])
            column = lines[0].index("PARTITIONS")
            rows = {line.split()[0]: line for line in lines[1:]}
            self.assertEqual(rows["a"][column:].split()[0], "1")
            self.assertEqual(rows["a-much-longer-name"][column:].split()[0], "12")
            for line in lines:
                self.assertEqual(line, line.rstrip())

    def test_bad_flags_exit_2_with_one_line(self):
        # No broker needed: usage errors are found before connecting.
        cases = [
            (["--frobnicate"], "frobnicate"),
            (["topics"], "subcommand"),
            (["topics", "shred"], "topics shred"),
            (["topics", "create"], "exactly one TOPIC"),
            (["topics", "list", "--partitions", "3"], "--partitions"),
            (["topics", "create", "t", "--partitions", "0"], "--partitions"),
            (["topics", "create", "t", "--config", "oops"], "KEY=VALUE"),
            (["--bootstrap", "nohost", "topics", "list"], "--bootstrap"),
            (["groups", "reset-offsets", "g", "--topic", "t"], "--to-earliest"),
        ]
        for args, fragment in cases:
            with self.subTest(args=args):
                result = subprocess.run([SLUICE_ADMIN, *args], capture_output=True, text=True,
                                        timeout=TIMEOUT_S)
                self.assertOneLineError(result, 2, fragment)

    def test_broker_failures_exit_1_naming_the_topic_and_the_error(self):
        with running_sluice(SLUICE, extra_args=["--auto-create-topics", "false"]) as broker:
            self.assertOneLineError(run_admin(broker, "topics", "describe", "no-such-topic"), 1,
                                    "'no-such-topic'", "UNKNOWN_TOPIC_OR_PARTITION")
            self.assertOneLineError(run_admin(broker, "topics", "delete", "no-such-topic"), 1,
                                    "'no-such-topic'", "UNKNOWN_TOPIC_OR_PARTITION")
            self.assertEqual(run_admin(broker, "topics", "create", "t").returncode, 0)
            self.assertOneLineError(run_admin(broker, "topics", "create", "t"), 1,
                                    "'t'", "TOPIC_ALREADY_EXISTS")
            self.assertOneLineError(
                run_admin(broker, "topics", "alter-config", "t", "--set", "no.such.config=1"), 1,
                "'t'", "INVALID_CONFIG")
            # Nothing was auto-created along the way.
            listed = json.loads(run_admin(broker, "topics", "list", "--json").stdout)
            self.assertEqual([t["name"] for t in listed["topics"] if not t["internal"]], ["t"])
            # A broker that is not there.
            self.assertOneLineError(
                run_admin(broker, "topics", "list", bootstrap="127.0.0.1:1"), 1,
                "127.0.0.1:1", "refused")

    # ---- groups ----------------------------------------------------------------------------

    def require_group_apis(self, broker):
        missing = [name for key, name in sorted(GROUP_APIS.items())
                   if key not in broker_api_keys(broker.bootstrap)]
        if missing:
            self.skipTest("the broker does not serve the group APIs yet (ApiVersions lacks %s)"
                          % ", ".join(missing))

    def broker_args(self):
        # A short initial rebalance delay, when the broker has the flag, keeps joins quick.
        help_text = subprocess.run([SLUICE, "--help"], capture_output=True, text=True,
                                   timeout=TIMEOUT_S).stdout
        if "--group-initial-rebalance-delay-ms" in help_text:
            return ["--group-initial-rebalance-delay-ms", "200"]
        return []

    def consumer(self, broker, group):
        return Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000})

    def consume(self, consumer, count, timeout_s=TIMEOUT_S):
        """Polls until `count` messages arrived; returns them."""
        messages = []
        deadline = time.monotonic() + timeout_s
        while len(messages) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            self.assertIsNone(message.error(), message.error())
            messages.append(message)
        self.assertEqual(len(messages), count)
        return messages

    def describe_group(self, broker, group):
        result = run_admin(broker, "groups", "describe", group, "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        (described,) = json.loads(result.stdout)["groups"]
        return described

    def test_groups_describe_reset_and_delete(self):
        topic, group, per_partition, partitions = "events", "G", 10, 3
        with running_sluice(SLUICE, extra_args=self.broker_args()) as broker:
            self.require_group_apis(broker)
            created = run_admin(broker, "topics", "create", topic, "--partitions", str(partitions))
            self.assertEqual(created.returncode, 0, created.stderr)
            producer = Producer({"bootstrap.servers": broker.bootstrap})
            for p in range(partitions):
                for i in range(per_partition):
                    producer.produce(topic, value=b"%d-%d" % (p, i), partition=p)
            self.assertEqual(producer.flush(TIMEOUT_S), 0)

            # Part of the topic, committed; what is committed follows from what arrived.
            consumer = self.consumer(broker, group)
            consumer.subscribe([topic])
            consumed = self.consume(consumer, 12)
            consumer.commit(asynchronous=False)
            committed = {}
            for message in consumed:
                committed[message.partition()] = max(committed.get(message.partition(), 0),
                                                     message.offset() + 1)

            # While the consumer is a member, offsets cannot be reset.
            refused = run_admin(broker, "groups", "reset-offsets", group, "--topic", topic,
                                "--to-earliest")
            self.assertOneLineError(refused, 1, "'%s'" % group, "NON_EMPTY_GROUP")
            live = self.describe_group(broker, group)
            self.assertEqual(live["state"], "Stable")
            (member,) = live["members"]
            assigned = {(a["topic"], p) for a in member["assignment"] for p in a["partitions"]}
            self.assertEqual(assigned, {(topic, p) for p in range(partitions)})
            consumer.close()

            described = self.describe_group(broker, group)
            self.assertEqual(described["state"], "Empty")
            self.assertEqual(described["members"], [])
            rows = {(row["topic"], row["partition"]): row for row in described["offsets"]}
            self.assertEqual(set(rows), {(topic, p) for p in committed})
            for p, offset in committed.items():
                row = rows[(topic, p)]
                self.assertEqual(row["committed_offset"], offset)
                self.assertEqual(row["log_end_offset"], per_partition)
                self.assertEqual(row["lag"], per_partition - offset)
                self.assertIsNone(row["member_id"])

            listed = run_admin(broker, "groups", "list", "--json")
            self.assertEqual(listed.returncode, 0, listed.stderr)
            self.assertIn(group, [g["group"] for g in json.loads(listed.stdout)["groups"]])

            # A dry run changes nothing; the real reset moves every partition to 0.
            dry = run_admin(broker, "groups", "reset-offsets", group, "--topic", topic,
                            "--to-earliest", "--dry-run", "--json")
            self.assertEqual(dry.returncode, 0, dry.stderr)
            planned = json.loads(dry.stdout)
            self.assertTrue(planned["dry_run"])
            self.assertEqual({o["partition"]: o["new_offset"] for o in planned["offsets"]},
                             {p: 0 for p in range(partitions)})
            self.assertEqual(
                {r["partition"]: r["committed_offset"]
                 for r in self.describe_group(broker, group)["offsets"]}, committed)
            reset = run_admin(broker, "groups", "reset-offsets", group, "--topic", topic,
                              "--to-earliest")
            self.assertEqual(reset.returncode, 0, reset.stderr)
            after = self.describe_group(broker, group)
            self.assertEqual({r["partition"]: (r["committed_offset"], r["lag"])
                              for r in after["offsets"]},
                             {p: (0, per_partition) for p in range(partitions)})

            # The next consumer of the group starts over from offset 0 everywhere.
            again = self.consumer(broker, group)
            again.subscribe([topic])
            reread = self.consume(again, partitions * per_partition)
            first = {}
            for message in reread:
                first.setdefault(message.partition(), message.offset())
            self.assertEqual(first, {p: 0 for p in range(partitions)})
            again.close()

            deleted = run_admin(broker, "groups", "delete", group)
            self.assertEqual(deleted.returncode, 0, deleted.stderr)
            self.assertEqual(deleted.stdout, "Deleted group %s.\n" % group)
            self.assertOneLineError(run_admin(broker, "groups", "describe", group), 1,
                                    "'%s'" % group, "GROUP_ID_NOT_FOUND")


if __name__ == "__main__":
    SLUICE = take_sluice_arg(sys.argv)
    SLUICE_ADMIN = take_admin_arg(sys.argv, SLUICE)
    unittest.main()
