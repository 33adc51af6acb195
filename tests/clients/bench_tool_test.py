"""sluice-bench against a real `sluice` broker, its counts checked with confluent-kafka.

Run: /usr/bin/python3 bench_tool_test.py --sluice PATH [--sluice-bench PATH] [unittest args]

Without --sluice-bench (or $SLUICE_BENCH_BINARY) the tool is looked for where the build
puts it: tools/sluice-bench/sluice-bench beside the build's broker/ directory.

- `produce --records 20000 --partitions 4 --json` creates the topic and reports exactly
  20000 records acknowledged, no errors; confluent-kafka then sees 4 partitions whose
  end offsets sum to 20000;
- `consume --verify --json` reads exactly those 20000 records, each once and in order;
- `e2e --duration-s 3 --verify --json` produces and consumes at once, and every record
  acknowledged arrives (the produced and consumed counts agree, verify is clean);
- bad flags exit 2 with one line on stderr and nothing on stdout.
"""

import json
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import running_sluice, take_sluice_arg  # noqa: E402

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

SLUICE = None  # set from --sluice before unittest.main()
SLUICE_BENCH = None  # set from --sluice-bench, or found beside the broker
RUN_TIMEOUT_S = 120


def take_bench_arg(argv, sluice_path):
    path = os.environ.get("SLUICE_BENCH_BINARY")
    rest = [argv[0]]
    i = 1
    while i < len(argv):
        if argv[i] == "--sluice-bench" and i + 1 < len(argv):
            path = argv[i + 1]
            i += 2
            continue
        if argv[i].startswith("--sluice-bench="):
            path = argv[i][len("--sluice-bench="):]
        else:
            rest.append(argv[i])
        i += 1
    argv[:] = rest
    if not path:
        build = os.path.dirname(os.path.dirname(os.path.abspath(sluice_path)))
        path = os.path.join(build, "tools", "sluice-bench", "sluice-bench")
    if not os.access(path, os.X_OK):
        raise SystemExit("%s: not an executable sluice-bench" % path)
    return path


def bench(*args):
    return subprocess.run([SLUICE_BENCH, *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)


def end_offsets(bootstrap, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-tool-test",
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        partitions = sorted(metadata.topics[topic].partitions)
        ends = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            ends.append(high)
        return ends
    finally:
        consumer.close()


class BenchToolTest(unittest.TestCase):
    def run_json(self, *args):
        result = bench(*args, "--json")
        self.assertEqual(result.returncode, 0, "sluice-bench %s failed:\n%s\n%s"
                         % (" ".join(args), result.stdout, result.stderr))
        document = json.loads(result.stdout)
        self.assertTrue(document["ok"], document)
        self.assertEqual(document["errors"], [])
        return document

    def test_produce_consume_e2e(self):
        with running_sluice(SLUICE) as broker:
            common = ["--bootstrap", broker.bootstrap]
            produced = self.run_json("produce", *common, "--topic", "bench-counts",
                                     "--records", "20000", "--partitions", "4",
                                     "--record-bytes", "200", "--producers", "2")
            self.assertEqual(produced["records"], 20000)
            self.assertEqual(produced["produce"]["records_sent"], 20000)
            self.assertTrue(produced["topic_created"])
            self.assertEqual(produced["partitions"], 4)
            self.assertGreater(produced["bytes"], 20000 * 200)
            self.assertEqual(produced["latency_us"]["count"], 20000)
            latency = produced["latency_us"]
            self.assertLessEqual(latency["p50"], latency["p99"])
            self.assertLessEqual(latency["p99"], latency["max"])

            ends = end_offsets(broker.bootstrap, "bench-counts")
            self.assertEqual(len(ends), 4)
            self.assertEqual(sum(ends), 20000)

            consumed = self.run_json("consume", *common, "--topic", "bench-counts", "--verify",
                                     "--consumers", "3")
            self.assertEqual(consumed["records"], 20000)
            self.assertEqual(consumed["bytes"], produced["bytes"])
            verify = consumed["verify"]
            self.assertTrue(verify["ok"], verify)
            self.assertEqual(verify["received"], 20000)
            for fault in ("missing", "duplicate", "out_of_order", "misplaced", "untracked"):
                self.assertEqual(verify[fault], 0, fault)

            e2e = self.run_json("e2e", *common, "--topic", "bench-e2e", "--duration-s", "3",
                                "--verify", "--partitions", "3", "--record-bytes", "100")
            self.assertGreater(e2e["produce"]["records"], 0)
            self.assertEqual(e2e["consume"]["records"], e2e["produce"]["records"])
            self.assertEqual(e2e["produce"]["records_sent"], e2e["produce"]["records"])
            self.assertTrue(e2e["verify"]["ok"], e2e["verify"])
            self.assertEqual(e2e["verify"]["received"], e2e["produce"]["records"])
            self.assertEqual(e2e["latency_us"]["count"], e2e["consume"]["records"])
            self.assertEqual(sum(end_offsets(broker.bootstrap, "bench-e2e")),
                             e2e["produce"]["records"])

            # A second consume of the first topic, with an older run mixed in, is still
            # clean: runs are told apart by their run id.
            again = self.run_json("produce", *common, "--topic", "bench-counts",
                                  "--records", "1000", "--record-bytes", "200",
                                  "--compression", "lz4", "--keys", "random")
            self.assertEqual(again["records"], 1000)
            self.assertFalse(again["topic_created"])
            consumed = self.run_json("consume", *common, "--topic", "bench-counts", "--verify")
            self.assertEqual(consumed["records"], 21000)
            self.assertTrue(consumed["verify"]["ok"], consumed["verify"])

    def test_bad_flags_exit_2_with_one_line(self):
        cases = [
            [],
            ["fly"],
            ["produce", "--records", "0"],
            ["produce", "--acks", "2"],
            ["produce", "--compression", "brotli"],
            ["produce", "--record-bytes", "10"],
            ["produce", "--bootstrap", "nohostport"],
            ["produce", "--no-such-flag"],
            ["consume", "--rate", "100"],
            ["produce", "--verify"],
            ["produce", "--linger-ms", "5"],
        ]
        for args in cases:
            result = bench(*args)
            self.assertEqual(result.returncode, 2, (args, result.stderr))
            self.assertEqual(result.stdout, "", args)
            lines = result.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, (args, result.stderr))
            self.assertTrue(lines[0].startswith("sluice-bench: "), lines[0])

    def test_unreachable_broker_exits_1(self):
        result = bench("produce", "--bootstrap", "127.0.0.1:1", "--records", "10")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("127.0.0.1:1", result.stderr)


if __name__ == "__main__":
    SLUICE = take_sluice_arg(sys.argv)
    SLUICE_BENCH = take_bench_arg(sys.argv, SLUICE)
    unittest.main()
