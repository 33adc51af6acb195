"""Log compaction (cleanup.policy=compact) on a real `sluice` broker, seen by real clients.

Run: /usr/bin/python3 compaction_test.py --sluice PATH [unittest args]

A compacted topic is written through confluent-kafka with several values per key and
tombstones (null values) for some keys; its segments roll quickly (segment.ms) so the
cleaner, checking often (--log-cleaner-backoff-ms), has sealed segments to clean. The
test then reads the partition with kcat until the log holds exactly the latest value of
every live key, at the offset that value was first written at, and no tombstone once
delete.retention.ms has passed -- and checks that this survives a restart.
"""

import json
import os
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import running_sluice, take_sluice_arg  # noqa: E402

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

SLUICE = None
KCAT = os.environ.get("KCAT", "/usr/bin/kcat")
BROKER_ARGS = ["--log-cleaner-backoff-ms", "200"]


def read_partition(bootstrap, topic, partition=0):
    """[(offset, key, value-or-None)] in log order, through kcat."""
    out = subprocess.run([KCAT, "-b", bootstrap, "-C", "-t", topic, "-p", str(partition),
                          "-o", "beginning", "-e", "-q", "-J"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError("kcat failed: %s" % out.stderr)
    records = []
    for line in out.stdout.splitlines():
        if line.strip():
            r = json.loads(line)
            records.append((r["offset"], r["key"], r["payload"]))
    return records


class CompactionTest(unittest.TestCase):
    def produce_history(self, bootstrap, topic):
        """Writes 3 rounds of values for 40 keys, then tombstones for 10 of them, each
        round a separate flush (and, with segment.ms, soon a separate segment). Returns
        {key: (offset, value)} of the latest write of every key (value None = tombstone)."""
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
        latest = {}

        def remember(key, value):
            def on_delivery(err, msg):
                self.assertIsNone(err)
                latest[key] = (msg.offset(), value)
            return on_delivery

        for round_no in range(3):
            for k in range(40):
                key, value = "key-%02d" % k, "value-%02d-round-%d" % (k, round_no)
                producer.produce(topic, key=key, value=value, partition=0,
                                 on_delivery=remember(key, value))
            self.assertEqual(producer.flush(30), 0)
            time.sleep(0.6)  # past segment.ms: the next append rolls a new segment
        for k in range(0, 40, 4):
            key = "key-%02d" % k
            producer.produce(topic, key=key, value=None, partition=0,
                             on_delivery=remember(key, None))
        self.assertEqual(producer.flush(30), 0)
        time.sleep(0.6)
        # One more record on a key of its own, so the segment with the tombstones is sealed
        # (the active segment is never cleaned).
        producer.produce(topic, key="marker", value="end", partition=0,
                         on_delivery=remember("marker", "end"))
        self.assertEqual(producer.flush(30), 0)
        return latest

    def expected_after_cleaning(self, latest):
        return sorted((offset, key, value) for key, (offset, value) in latest.items()
                      if value is not None)

    def test_latest_value_per_key_survives_and_tombstones_go(self):
        with running_sluice(SLUICE, BROKER_ARGS) as broker:
            topic = "compacted"
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            config = {"cleanup.policy": "compact", "segment.ms": "500",
                      "delete.retention.ms": "2000", "min.cleanable.dirty.ratio": "0.01"}
            admin.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(30)
            latest = self.produce_history(broker.bootstrap, topic)
            total_written = 3 * 40 + 10 + 1
            want = self.expected_after_cleaning(latest)

            # First the duplicates go (tombstones still there: delete.retention.ms has not
            # passed for all of them), later the tombstones too.
            deadline = time.monotonic() + 60
            records = read_partition(broker.bootstrap, topic)
            while time.monotonic() < deadline and sorted(records) != want:
                time.sleep(0.5)
                records = read_partition(broker.bootstrap, topic)
            self.assertEqual(sorted(records), want,
                             "after cleaning: %d records, want %d" % (len(records), len(want)))
            self.assertLess(len(records), total_written)
            # Offsets are kept: each surviving record sits at the offset it was written at.
            for offset, key, value in records:
                self.assertEqual(latest[key], (offset, value))

            # What compaction left survives a restart (the cleaned segments recover).
            broker.restart()
            self.assertEqual(sorted(read_partition(broker.bootstrap, topic)), want)

    def test_tombstones_stay_until_delete_retention_passes(self):
        with running_sluice(SLUICE, BROKER_ARGS) as broker:
            topic = "compacted-slow-tombstones"
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            config = {"cleanup.policy": "compact", "segment.ms": "500",
                      "delete.retention.ms": "3600000", "min.cleanable.dirty.ratio": "0.01"}
            admin.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(30)
            latest = self.produce_history(broker.bootstrap, topic)
            # Cleaned, but tombstones must stay for an hour: the latest write of every key,
            # tombstones included.
            want = sorted((offset, key, value) for key, (offset, value) in latest.items())
            deadline = time.monotonic() + 60
            records = read_partition(broker.bootstrap, topic)
            while time.monotonic() < deadline and sorted(records) != want:
                time.sleep(0.5)
                records = read_partition(broker.bootstrap, topic)
            self.assertEqual(sorted(records), want)
            self.assertEqual(sum(1 for r in records if r[2] is None), 10)


if __name__ == "__main__":
    SLUICE = take_sluice_arg(sys.argv)
    unittest.main(verbosity=2)
