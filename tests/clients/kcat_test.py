"""Drives a real `sluice` broker with kcat (librdkafka): metadata, keyed produce with
headers, consume, acks 0/1/all, every compression codec, consuming from an offset, from
the end and from a timestamp, a clean restart, and a SIGKILL that must not lose any
message acknowledged with acks=all.

Run: python3 kcat_test.py --sluice build/broker/sluice [unittest args]
Needs kcat on the PATH (or $KCAT). Uses tests/clients/sluice_harness.py.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import running_sluice, take_sluice_arg  # noqa: E402

SLUICE = None
KCAT = os.environ.get("KCAT") or shutil.which("kcat") or "/usr/bin/kcat"
KCAT_TIMEOUT_S = 120
HEADERS = ["app=kcat-test", "trace=abc123"]


def messages(count, prefix="m"):
    """(key, value) pairs, distinct and checkable, none containing the ':' delimiter."""
    return [("%s-key-%06d" % (prefix, i), "%s-value-%06d-%s" % (prefix, i, "x" * (i % 37)))
            for i in range(count)]


def kcat(args, stdin_text=None, timeout_s=KCAT_TIMEOUT_S):
    done = subprocess.run([KCAT, *args], input=stdin_text, capture_output=True, text=True,
                          timeout=timeout_s)
    return done


class KcatTest(unittest.TestCase):
    # --- helpers ------------------------------------------------------------------------

    def produce(self, broker, topic, pairs, extra=(), headers=HEADERS):
        args = ["-b", broker.bootstrap, "-P", "-t", topic, "-K:", "-X", "linger.ms=5"]
        for header in headers:
            args += ["-H", header]
        args += list(extra)
        text = "".join("%s:%s\n" % kv for kv in pairs)
        done = kcat(args, text)
        self.assertEqual(done.returncode, 0, "kcat produce failed: %s" % done.stderr)
        self.assertNotIn("ERROR", done.stderr)

    def consume(self, broker, topic, offset="beginning", extra=()):
        """Every message from `offset` to the end: [(key, value, headers, offset)]."""
        done = kcat(["-b", broker.bootstrap, "-C", "-t", topic, "-o", offset, "-e", "-q",
                     "-f", "%k\t%s\t%h\t%o\n", *extra])
        self.assertEqual(done.returncode, 0, "kcat consume failed: %s" % done.stderr)
        out = []
        for line in done.stdout.splitlines():
            key, value, headers, off = line.split("\t")
            out.append((key, value, headers, int(off)))
        return out

    def assert_round_trip(self, consumed, pairs, first_offset=0):
        self.assertEqual(len(consumed), len(pairs))
        for i, ((key, value), got) in enumerate(zip(pairs, consumed)):
            self.assertEqual(got, (key, value, ",".join(HEADERS), first_offset + i),
                             "message %d" % i)

    # --- tests --------------------------------------------------------------------------

    def test_metadata_lists_the_broker_and_auto_created_topics(self):
        with running_sluice(SLUICE) as broker:
            done = kcat(["-b", broker.bootstrap, "-L"])
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("broker 0 at %s (controller)" % broker.bootstrap, done.stdout)
            self.assertIn("0 topics", done.stdout)
            done = kcat(["-b", broker.bootstrap, "-L", "-t", "auto-made"])
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn('topic "auto-made" with 1 partitions', done.stdout)
            self.assertIn("leader 0, replicas: 0, isrs: 0", done.stdout)

    def test_hundred_thousand_keyed_messages_with_headers_round_trip(self):
        pairs = messages(100000)
        with running_sluice(SLUICE) as broker:
            self.produce(broker, "orders", pairs, ["-X", "acks=all"])
            self.assert_round_trip(self.consume(broker, "orders"), pairs)

    def test_every_acks_setting_delivers(self):
        with running_sluice(SLUICE) as broker:
            for acks in ("0", "1", "all"):
                pairs = messages(2000, "acks" + acks)
                topic = "acks-" + acks
                self.produce(broker, topic, pairs, ["-X", "acks=" + acks])
                self.assert_round_trip(self.consume(broker, topic), pairs)

    def test_every_compression_codec_round_trips(self):
        with running_sluice(SLUICE) as broker:
            for codec in ("gzip", "snappy", "lz4", "zstd"):
                pairs = messages(10000, codec)
                self.produce(broker, "z-" + codec, pairs, ["-z", codec, "-X", "acks=all"])
                self.assert_round_trip(self.consume(broker, "z-" + codec), pairs)

    def test_consume_from_an_offset(self):
        pairs = messages(10000)
        with running_sluice(SLUICE) as broker:
            self.produce(broker, "middle", pairs, ["-z", "lz4"])
            consumed = self.consume(broker, "middle", "5000")
            self.assert_round_trip(consumed, pairs[5000:], first_offset=5000)

    def test_consume_from_the_end_sees_only_new_messages(self):
        old, new = messages(500, "old"), messages(300, "new")
        with running_sluice(SLUICE) as broker:
            self.produce(broker, "tail", old)
            consumer = subprocess.Popen(
                [KCAT, "-b", broker.bootstrap, "-C", "-t", "tail", "-o", "end", "-c",
                 str(len(new)), "-q", "-f", "%k\t%s\t%h\t%o\n"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                # The consumer asks for the end offset, then long-polls; give it time to
                # get there before producing (its fetches wait on the broker meanwhile).
                time.sleep(2.0)
                self.produce(broker, "tail", new)
                out, err = consumer.communicate(timeout=60)
            finally:
                if consumer.poll() is None:
                    consumer.kill()
            self.assertEqual(consumer.returncode, 0, err)
            consumed = [tuple(line.split("\t")) for line in out.splitlines()]
            consumed = [(k, v, h, int(o)) for k, v, h, o in consumed]
            self.assert_round_trip(consumed, new, first_offset=len(old))

    def test_consume_and_query_by_timestamp(self):
        before, after = messages(1000, "before"), messages(1000, "after")
        with running_sluice(SLUICE) as broker:
            self.produce(broker, "clock", before, ["-z", "zstd"])
            time.sleep(0.05)
            cut_ms = int(time.time() * 1000)
            time.sleep(0.05)
            self.produce(broker, "clock", after, ["-z", "zstd"])
            consumed = self.consume(broker, "clock", "s@%d" % cut_ms)
            self.assert_round_trip(consumed, after, first_offset=len(before))
            done = kcat(["-b", broker.bootstrap, "-Q", "-t", "clock:0:%d" % cut_ms])
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("clock [0] offset %d" % len(before), done.stdout)

    def test_clean_restart_keeps_everything(self):
        pairs = messages(10000)
        with running_sluice(SLUICE) as broker:
            self.produce(broker, "durable", pairs, ["-X", "acks=all", "-z", "snappy"])
            with open(os.path.join(broker.data_dir, "topics")) as f:
                topics_before = f.read()
            self.assertEqual(broker.stop(), 0, broker.log_tail())
            self.assertTrue(os.path.exists(os.path.join(broker.data_dir, ".sluice_cleanshutdown")))
            self.assertIn("stopped cleanly", broker.log_text())
            broker.start()
            self.assert_round_trip(self.consume(broker, "durable"), pairs)
            with open(os.path.join(broker.data_dir, "topics")) as f:
                self.assertEqual(f.read(), topics_before, "topic ids must survive a restart")
            # And it keeps appending after the restart.
            more = messages(100, "more")
            self.produce(broker, "durable", more)
            self.assert_round_trip(self.consume(broker, "durable", str(len(pairs))), more,
                                   first_offset=len(pairs))

    def test_sigkill_loses_no_message_acknowledged_with_acks_all(self):
        pairs = messages(200000, "crash")
        with running_sluice(SLUICE) as broker:
            # -vv prints one "Message delivered ... (offset N)" line per acknowledged
            # message; a short message timeout makes kcat give up soon after the kill.
            producer = subprocess.Popen(
                [KCAT, "-b", broker.bootstrap, "-P", "-t", "crash", "-K:", "-vv",
                 "-X", "acks=all", "-X", "message.timeout.ms=3000", "-X", "linger.ms=2"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True)
            stderr_lines = []
            reader = threading.Thread(target=lambda: stderr_lines.extend(producer.stderr))
            reader.start()

            def feed():
                try:
                    for i in range(0, len(pairs), 500):
                        producer.stdin.write("".join("%s:%s\n" % kv for kv in pairs[i:i + 500]))
                        producer.stdin.flush()
                        time.sleep(0.005)
                    producer.stdin.close()
                except (BrokenPipeError, ValueError):
                    pass

            feeder = threading.Thread(target=feed)
            feeder.start()
            delivered_pattern = re.compile(r"Message delivered to partition 0 \(offset (\d+)\)")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if sum(1 for line in list(stderr_lines) if delivered_pattern.search(line)) > 5000:
                    break
                time.sleep(0.05)
            broker.kill()
            feeder.join(timeout=60)
            try:
                producer.wait(timeout=60)
            finally:
                if producer.poll() is None:
                    producer.kill()
            reader.join(timeout=10)
            producer.stderr.close()
            if not producer.stdin.closed:
                try:
                    producer.stdin.close()
                except BrokenPipeError:
                    pass
            delivered = set()
            for line in stderr_lines:
                match = delivered_pattern.search(line)
                if match:
                    delivered.add(int(match.group(1)))
            self.assertGreater(len(delivered), 5000, "the producer never got going")

            broker.start()
            consumed = self.consume(broker, "crash")
            by_offset = {off: (key, value) for key, value, _, off in consumed}
            missing = sorted(delivered - set(by_offset))
            self.assertEqual(missing, [], "acknowledged offsets lost by the crash")
            produced = dict(pairs)
            for off in delivered:
                key, value = by_offset[off]
                self.assertEqual(produced.get(key), value, "offset %d" % off)
            self.assertEqual([off for _, _, _, off in consumed], list(range(len(consumed))))


if __name__ == "__main__":
    SLUICE = take_sluice_arg(sys.argv)
    unittest.main(verbosity=2)
