"""Consumer groups on a real `sluice` broker, with real clients.

Run: /usr/bin/python3 groups_test.py --sluice PATH [unittest args]

Members are separate processes (group_member.py, on confluent-kafka or kafka-python) so
that a test can stop one cleanly (it leaves the group) or SIGKILL it (it just goes
silent, and only its session timeout tells the coordinator). Each member reports what it
was assigned, what it received and what it committed as JSON lines; the test checks:

- every partition is owned by exactly one member once the group settles;
- a member that leaves or dies has its partitions taken over within its session timeout
  (plus the time of one rebalance);
- nothing is skipped: every offset of every partition reaches some member;
- nothing is delivered twice unless a rebalance happened between the two deliveries
  (members commit each message synchronously after processing it);
- committed offsets survive broker restarts, clean and SIGKILL, and consumers resume
  from them;
- members whose assignors have nothing in common get INCONSISTENT_GROUP_PROTOCOL;
- a static member (group.instance.id) that restarts within its session timeout gets its
  partitions back without a rebalance;
- kcat's balanced consumer (-G) reads a topic to the end and commits.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import running_sluice, take_sluice_arg  # noqa: E402

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

SLUICE = None
HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
KCAT = os.environ.get("KCAT", "/usr/bin/kcat")
SESSION_MS = 6000
# The broker completes a rebalance of an empty group after this delay (Kafka's
# group.initial.rebalance.delay.ms, 3 s by default): short, so tests are quick, but long
# enough that members started together join one rebalance.
BROKER_ARGS = ["--group-initial-rebalance-delay-ms", "500"]
INCONSISTENT_GROUP_PROTOCOL = 23


class Member:
    """A group_member.py process and the events it reported, stamped on arrival."""

    def __init__(self, client, bootstrap, group, topic, assignor="range", instance_id=None,
                 session_ms=SESSION_MS):
        args = [PYTHON, os.path.join(HERE, "group_member.py"), "--client", client,
                "--bootstrap", bootstrap, "--group", group, "--topic", topic,
                "--assignor", assignor, "--session-ms", str(session_ms)]
        if instance_id:
            args += ["--instance-id", instance_id]
        self.name = "%s/%s" % (client, instance_id or "dynamic")
        self.events = []
        self.lock = threading.Lock()
        self.stderr = open(os.devnull, "wb") if not os.environ.get("SLUICE_CLIENT_DEBUG") \
            else None
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr,
                                        stdin=subprocess.DEVNULL, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            event["t"] = time.monotonic()
            with self.lock:
                self.events.append(event)

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def assignment(self):
        """The partitions it owns now, from its last assigned/revoked event."""
        owned = set()
        for e in self.snapshot():
            if e["ev"] == "assigned":
                owned = set(e["partitions"])
            elif e["ev"] == "revoked":
                owned = set()
        return owned

    def messages(self):
        return [e for e in self.snapshot() if e["ev"] == "msg"]

    def errors(self):
        return [e for e in self.snapshot() if e["ev"] == "error"]

    def stop(self, timeout_s=30):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout_s)
        self.reader.join(timeout=5)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self.reader.join(timeout=5)

    def running(self):
        return self.process.poll() is None


def wait_until(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout_s, what))


def create_topic(bootstrap, topic, partitions, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})])
    futures[topic].result(timeout=30)


def produce(bootstrap, topic, partitions, per_partition, tag):
    """per_partition messages into each partition; values name partition and sequence."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    failures = []
    for i in range(per_partition):
        for p in range(partitions):
            producer.produce(topic, value=("%s-%d-%d" % (tag, p, i)).encode(), partition=p,
                             on_delivery=lambda err, _msg: err and failures.append(err))
    left = producer.flush(60)
    assert left == 0 and not failures, "produce failed: %d left, %s" % (left, failures[:3])


def end_offsets(bootstrap, topic, partitions):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10,
                                                  cached=False)[1] for p in range(partitions)}
    finally:
        consumer.close()


def committed_offsets(bootstrap, group, topic, partitions):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        got = consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                 timeout=15)
        return {tp.partition: tp.offset for tp in got}
    finally:
        consumer.close()


def settled(members, partitions):
    """Every partition owned by exactly one live member."""
    owned = [m.assignment() for m in members]
    union = set().union(*owned) if owned else set()
    return union == set(range(partitions)) and sum(len(o) for o in owned) == partitions


class GroupsTest(unittest.TestCase):
    def setUp(self):
        self.members = []

    def tearDown(self):
        for m in self.members:
            m.kill()

    def member(self, *args, **kwargs):
        m = Member(*args, **kwargs)
        self.members.append(m)
        return m

    def check_no_skip_and_no_unexplained_duplicates(self, members, ends):
        deliveries = {}
        rebalances = []
        for m in members:
            for e in m.snapshot():
                if e["ev"] == "msg":
                    deliveries.setdefault((e["p"], e["o"]), []).append(e["t"])
                elif e["ev"] in ("assigned", "revoked"):
                    rebalances.append(e["t"])
        for p, end in ends.items():
            missing = [o for o in range(end) if (p, o) not in deliveries]
            self.assertEqual(missing[:10], [], "partition %d: offsets never delivered" % p)
        for key, times in deliveries.items():
            times.sort()
            for first, second in zip(times, times[1:]):
                self.assertTrue(any(first <= r <= second for r in rebalances),
                                "%s delivered twice with no rebalance in between" % (key,))

    def three_members_scenario(self, client):
        with running_sluice(SLUICE, BROKER_ARGS) as broker:
            topic, group, partitions = "orders", "g-" + client, 6
            create_topic(broker.bootstrap, topic, partitions)
            produce(broker.bootstrap, topic, partitions, 100, "a")
            members = [self.member(client, broker.bootstrap, group, topic) for _ in range(3)]

            wait_until(lambda: settled(members, partitions), 60, "3 members to share 6 partitions")
            for m in members:
                self.assertEqual(len(m.assignment()), 2, "%s owns %s" % (m.name, m.assignment()))
            wait_until(lambda: len({(e["p"], e["o"]) for m in members for e in m.messages()})
                       >= 600, 60, "600 messages consumed")

            # A member leaves cleanly: the other two take its partitions over.
            left_at = time.monotonic()
            members[2].stop()
            survivors = members[:2]
            wait_until(lambda: settled(survivors, partitions), SESSION_MS / 1000 + 10,
                       "2 members to take over the partitions of one that left")
            self.assertLess(time.monotonic() - left_at, SESSION_MS / 1000 + 5)
            produce(broker.bootstrap, topic, partitions, 10, "b")

            # A member is killed: the last one takes everything within the session timeout.
            wait_until(lambda: len({(e["p"], e["o"]) for m in members for e in m.messages()})
                       >= 660, 60, "660 messages consumed")
            killed_at = time.monotonic()
            members[1].kill()
            wait_until(lambda: members[0].assignment() == set(range(partitions)),
                       SESSION_MS / 1000 + 15, "the last member to own every partition")
            took_s = time.monotonic() - killed_at
            self.assertLess(took_s, SESSION_MS / 1000 + 6,
                            "reassignment after a kill took %.1f s" % took_s)
            produce(broker.bootstrap, topic, partitions, 10, "c")
            ends = end_offsets(broker.bootstrap, topic, partitions)
            self.assertEqual(ends, {p: 120 for p in range(partitions)})
            wait_until(lambda: all(
                any(e["p"] == p and e["o"] == ends[p] - 1 for e in members[0].messages())
                for p in range(partitions)), 60, "the last member to reach every end")
            self.check_no_skip_and_no_unexplained_duplicates(members, ends)
            wait_until(lambda: committed_offsets(broker.bootstrap, group, topic, partitions)
                       == ends, 30, "committed offsets at the end of every partition")
            members[0].stop()
            print("\n  %s: takeover after kill in %.1f s" % (client, took_s), file=sys.stderr)

    def test_confluent_kafka_three_members_six_partitions(self):
        self.three_members_scenario("confluent")

    def test_kafka_python_three_members_six_partitions(self):
        self.three_members_scenario("kafka-python")

    def test_mixed_clients_with_incompatible_assignors_are_refused(self):
        with running_sluice(SLUICE, BROKER_ARGS) as broker:
            topic, group = "mixed", "g-mixed"
            create_topic(broker.bootstrap, topic, 4)
            first = self.member("confluent", broker.bootstrap, group, topic, assignor="roundrobin")
            wait_until(lambda: first.assignment() == {0, 1, 2, 3}, 30, "the first member")
            second = self.member("kafka-python", broker.bootstrap, group, topic, assignor="range")
            wait_until(lambda: any(e["code"] == INCONSISTENT_GROUP_PROTOCOL or
                                   "InconsistentGroupProtocol" in e["name"]
                                   for e in second.errors()), 30,
                       "INCONSISTENT_GROUP_PROTOCOL for the second member")
            self.assertEqual(second.assignment(), set())
            self.assertEqual(first.assignment(), {0, 1, 2, 3})

    def test_static_member_restart_keeps_its_partitions_without_rebalance(self):
        with running_sluice(SLUICE, BROKER_ARGS) as broker:
            topic, group, session_ms = "static", "g-static", 20000
            create_topic(broker.bootstrap, topic, 4)
            a = self.member("confluent", broker.bootstrap, group, topic, instance_id="a",
                            session_ms=session_ms)
            b = self.member("confluent", broker.bootstrap, group, topic, instance_id="b",
                            session_ms=session_ms)
            wait_until(lambda: settled([a, b], 4), 60, "two static members to settle")
            before_a, before_b = a.assignment(), b.assignment()
            b_events = len(b.snapshot())
            a.kill()
            again = self.member("confluent", broker.bootstrap, group, topic, instance_id="a",
                                session_ms=session_ms)
            wait_until(lambda: again.assignment(), 30, "the restarted static member's assignment")
            self.assertEqual(again.assignment(), before_a)
            time.sleep(2)  # a rebalance, had there been one, would have reached b by now
            later = [e for e in b.snapshot()[b_events:] if e["ev"] in ("assigned", "revoked")]
            self.assertEqual(later, [], "the other member saw a rebalance")
            self.assertEqual(b.assignment(), before_b)

    def restart_scenario(self, kill):
        with running_sluice(SLUICE, BROKER_ARGS) as broker:
            topic, group, partitions = "resume", "g-resume", 3
            create_topic(broker.bootstrap, topic, partitions)
            produce(broker.bootstrap, topic, partitions, 200, "r")
            m = self.member("confluent", broker.bootstrap, group, topic)
            wait_until(lambda: sum(1 for e in m.snapshot() if e["ev"] == "commit") >= 150, 60,
                       "150 acknowledged commits")
            if kill:
                broker.kill()
            else:
                self.assertEqual(broker.stop(), 0)
            m.kill()
            acked = {}
            for e in m.snapshot():
                if e["ev"] == "commit":
                    acked[e["p"]] = max(acked.get(e["p"], 0), e["o"])
            broker.start()
            committed = committed_offsets(broker.bootstrap, group, topic, partitions)
            for p, offset in acked.items():
                self.assertGreaterEqual(committed[p], offset,
                                        "partition %d: acknowledged commit %d lost" % (p, offset))
            resumed = self.member("confluent", broker.bootstrap, group, topic)
            unfinished = [p for p in range(partitions) if committed[p] < 200]
            wait_until(lambda: all(any(e["p"] == p and e["o"] == 199 for e in resumed.messages())
                                   for p in unfinished), 60, "the resumed member to finish")
            wait_until(lambda: resumed.assignment() == set(range(partitions)), 30,
                       "the resumed member to own every partition")
            time.sleep(1)  # anything delivered below the commits would show up by now
            for p in range(partitions):
                offsets = [e["o"] for e in resumed.messages() if e["p"] == p]
                if committed[p] >= 200:
                    self.assertEqual(offsets, [], "partition %d was finished" % p)
                else:
                    self.assertEqual(min(offsets), max(committed[p], 0),
                                     "partition %d did not resume from its commit" % p)
            self.check_no_skip_and_no_unexplained_duplicates([m, resumed],
                                                             {p: 200 for p in range(partitions)})
            resumed.stop()

    def test_committed_offsets_survive_a_clean_restart(self):
        self.restart_scenario(kill=False)

    def test_committed_offsets_survive_sigkill(self):
        self.restart_scenario(kill=True)

    def test_kcat_balanced_consumer_reads_to_the_end_and_commits(self):
        with running_sluice(SLUICE, BROKER_ARGS) as broker:
            topic, group, partitions = "kcat-g", "g-kcat", 4
            create_topic(broker.bootstrap, topic, partitions)
            produce(broker.bootstrap, topic, partitions, 250, "k")

            def run_kcat():
                out = subprocess.run(
                    [KCAT, "-b", broker.bootstrap, "-G", group, "-e", "-q",
                     "-X", "auto.offset.reset=earliest", "-f", "%p %o %s\n", topic],
                    capture_output=True, text=True, timeout=120)
                self.assertEqual(out.returncode, 0, out.stderr)
                return [line.split(" ") for line in out.stdout.splitlines() if line]

            first = run_kcat()
            got = {(int(p), int(o)): v for p, o, v in first}
            self.assertEqual(len(first), 1000)
            for p in range(partitions):
                for i in range(250):
                    self.assertEqual(got[(p, i)], "k-%d-%d" % (p, i))
            self.assertEqual(committed_offsets(broker.bootstrap, group, topic, partitions),
                             {p: 250 for p in range(partitions)})
            produce(broker.bootstrap, topic, partitions, 5, "more")
            second = run_kcat()
            self.assertEqual(sorted((int(p), int(o)) for p, o, _ in second),
                             sorted((p, 250 + i) for p in range(partitions) for i in range(5)))


if __name__ == "__main__":
    SLUICE = take_sluice_arg(sys.argv)
    unittest.main(verbosity=2)
