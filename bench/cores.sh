#!/usr/bin/env bash
# The same sluice-bench workloads against a broker with --cores 1 and with --cores 2 (or
# the core counts given), one fresh data directory per broker, to show how Sluice
# scales with its reactor threads and what each broker core delivers.
#
#   bash bench/cores.sh BUILD_DIR OUT_DIR [CORES...]      (default CORES: 1 2)
#
# Per core count it runs (10 s each, 1 KiB records, sluice-bench defaults otherwise):
# produce acks=1 on 8 partitions with 2 producer connections, produce acks=all likewise,
# consume of the acks=1 topic with 2 consumer connections, e2e with --verify, and the
# creation of a 10,000-partition topic followed by 10 s of produce over it. Every broker
# listens on 127.0.0.1 only and is stopped at the end. Results: OUT_DIR/cores-N-*.json
# (sluice-bench --json, with the broker's CPU and memory), OUT_DIR/cores-N-create.txt
# (seconds to create the 10,000 partitions), and a table on standard output.
set -euo pipefail

build=${1:?usage: bench/cores.sh BUILD_DIR OUT_DIR [CORES...]}
out=${2:?usage: bench/cores.sh BUILD_DIR OUT_DIR [CORES...]}
shift 2
counts=("$@")
[[ ${#counts[@]} -gt 0 ]] || counts=(1 2)
sluice="$build/broker/sluice"
bench="$build/tools/sluice-bench/sluice-bench"
admin="$build/tools/admin/sluice-admin"
for tool in "$sluice" "$bench" "$admin"; do
  [[ -x "$tool" ]] || { echo "bench/cores.sh: $tool is missing (build first)" >&2; exit 2; }
done
mkdir -p "$out"
port=19494
pid=
stop_broker() {
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
trap stop_broker EXIT

for cores in "${counts[@]}"; do
  data=$(mktemp -d "${TMPDIR:-/tmp}/sluice-cores-bench-XXXXXX")
  "$sluice" --listen "127.0.0.1:$port" --data-dir "$data/data" --cores "$cores" \
    2>"$out/cores-$cores-broker.log" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "ready:" "$out/cores-$cores-broker.log" && break
    sleep 0.1
  done
  common=(--bootstrap "127.0.0.1:$port" --broker-pid "$pid" --json --record-bytes 1024)
  "$bench" produce "${common[@]}" --topic p1 --partitions 8 --producers 2 --acks 1 \
    --duration-s 10 >"$out/cores-$cores-produce-acks1.json"
  "$bench" produce "${common[@]}" --topic pall --partitions 8 --producers 2 --acks all \
    --duration-s 10 >"$out/cores-$cores-produce-acksall.json"
  "$bench" consume "${common[@]}" --topic p1 --consumers 2 \
    >"$out/cores-$cores-consume.json"
  "$bench" e2e "${common[@]}" --topic e2e --partitions 8 --duration-s 10 --verify \
    >"$out/cores-$cores-e2e.json"
  start=$(date +%s%N)
  "$admin" --bootstrap "127.0.0.1:$port" topics create p10k --partitions 10000 >/dev/null
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000000 )) ms" >"$out/cores-$cores-create.txt"
  "$bench" produce "${common[@]}" --topic p10k --acks 1 --duration-s 10 \
    >"$out/cores-$cores-produce-10k.json"
  stop_broker
  rm -rf "$data"
done

/usr/bin/python3 - "$out" "${counts[@]}" <<'EOF'
import json, sys
out, counts = sys.argv[1], sys.argv[2:]
runs = ["produce-acks1", "produce-acksall", "consume", "e2e", "produce-10k"]
print("| cores | run | records/s | MB/s | p50 ms | p99 ms | broker CPU (cores busy) | MB/s per busy broker core | broker CPU s/GB | broker RSS MiB (anon) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for cores in counts:
    for run in runs:
        with open("%s/cores-%s-%s.json" % (out, cores, run)) as f:
            doc = json.load(f)
        seconds = doc["seconds"]
        mbs = doc["mb_per_second"]
        busy = doc["cpu"]["broker_seconds"] / seconds if seconds else 0
        lat = doc["latency_us"]
        print("| %s | %s | %s | %.1f | %.2f | %.2f | %.2f | %.1f | %.2f | %.1f (%.1f) |" % (
            cores, run, format(int(doc["records_per_second"]), ","), mbs, lat["p50"] / 1000,
            lat["p99"] / 1000, busy, mbs / busy if busy else 0,
            doc["cpu"]["broker_seconds_per_gb"], doc["broker_rss_bytes"] / 2**20,
            doc["broker_rss_anonymous_bytes"] / 2**20))
    with open("%s/cores-%s-create.txt" % (out, cores)) as f:
        print("| %s | create 10,000 partitions | %s | | | | | | | |" % (cores, f.read().strip()))
EOF
