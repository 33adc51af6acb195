#!/usr/bin/env bash
# Side-by-side benchmark: Sluice next to the machine's own limits (disk, loopback TCP) and
# next to two other brokers (Redis Streams, NATS JetStream), all measured in one run on
# one machine, printed as one table of figures and ratios (docs/benchmarks.md,
# "Side by side (bench/compare)").
#
# Usage: bench/compare/compare.sh [BUILD_DIR] [OUT_DIR] [DURATION_S] [--quick] [--no-build]
#   BUILD_DIR   build directory (default build/release); sluice and the load clients
#               (rdkafka_load, nats_load, tcp_echo) are built there first (Release if the
#               directory is new), unless --no-build
#   OUT_DIR     where the raw results go, one JSON file per measurement, plus
#               machine.json, summary.json and table.txt (default BUILD_DIR/compare)
#   DURATION_S  seconds per load (default 10)
#   --quick     2 s per load: a smoke run for CI
# Environment: SLUICE_BENCH_DIR (default /tmp) holds the servers' data, in a temporary
# directory removed at exit; SLUICE_BENCH_BIN overrides where sluice-bench is looked for.
#
# Order, each step bounded in time (timeout) and independent of the others' success:
#   a. fio: sequential buffered write, and write with an fdatasync every 64 KiB -- the job
#      lines of tools/bench/disk_reference.sh, with --runtime set to the duration
#   b. iperf3 over loopback, one stream (a one-off server, -1)
#   c. tcp_echo: 1 KiB ping-pong over loopback TCP, one message at a time
#   d. Redis Streams: redis-server (AOF on, fsync every second, no RDB snapshots),
#      redis-benchmark -P 16 XADD of 1 KiB values
#   e. NATS JetStream: nats-server -js, nats_load (file stream, async publish, 1 KiB)
#   f. Sluice through librdkafka: an 8-partition topic; produce acks=1, acks=all, acks=all
#      paced at half the acks=all rate, one record at a time (single-request latency);
#      then consume everything from the beginning. Then sluice-bench, if it is built.
#   g. report.py: the table, with each figure's ratio to its same-run reference
# Every server listens on 127.0.0.1 only, on a port that was free a moment before, and is
# stopped at exit, whether the run succeeded or not. The server's CPU time (utime + stime
# from /proc/PID/stat) is read before and after each load. The exit status is 0 when every
# step succeeded, 1 when some failed (the table shows which), 2 on bad arguments.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
python=/usr/bin/python3

build=""
out=""
duration=""
quick=0
do_build=1
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --no-build) do_build=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "compare: unknown option $arg" >&2; exit 2 ;;
    *)
      if [[ -z $build ]]; then build=$arg
      elif [[ -z $out ]]; then out=$arg
      elif [[ -z $duration ]]; then duration=$arg
      else echo "compare: too many arguments" >&2; exit 2
      fi ;;
  esac
done
build=${build:-build/release}
out=${out:-$build/compare}
if ((quick)); then duration=2; fi
duration=${duration:-10}
if ! [[ $duration =~ ^[0-9]+$ ]] || ((duration < 1 || duration > 600)); then
  echo "compare: DURATION_S must be a whole number of seconds, 1 to 600" >&2
  exit 2
fi
[[ $build = /* ]] || build=$PWD/$build
[[ $out = /* ]] || out=$PWD/$out
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.log "$out"/*.csv "$out"/table.txt

# ---------------------------------------------------------------------------- build
if ((do_build)); then
  echo "== build ($build)"
  if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  targets=(sluice tcp_echo)
  for target in rdkafka_load nats_load; do  # absent when their libraries are missing
    if ninja -C "$build" -t targets all | grep -q "^$target:"; then targets+=("$target"); fi
  done
  ninja -C "$build" -j2 "${targets[@]}" >/dev/null
fi
sluice=$build/broker/sluice
tools=$build/bench

# ---------------------------------------------------------------- servers and cleanup
work=$(mktemp -d "${SLUICE_BENCH_DIR:-/tmp}/sluice-compare-XXXXXX")
server_pids=()

stop_server() {  # pid of a server's timeout(1): TERM (passed on), 10 s to exit, then KILL
  local pid=$1 children
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    children=$(pgrep -P "$pid" || true)
    # shellcheck disable=SC2086  # a list of pids
    kill -KILL $children "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  for pid in "${server_pids[@]}"; do stop_server "$pid"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {  # port, seconds: succeeds once something accepts on 127.0.0.1:port
  local port=$1 tries=$(($2 * 10))
  for _ in $(seq "$tries"); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "compare: nothing listens on 127.0.0.1:$port after $2 s" >&2
  return 1
}

# Servers run under timeout(1), a bound should this script be killed without its trap;
# the CPU time to read is the server's own, the timeout process's only child.
server_of() {  # timeout's pid: the server's pid
  local child=""
  for _ in $(seq 50); do
    child=$(pgrep -P "$1" | head -1 || true)
    [[ -n $child ]] && break
    sleep 0.1
  done
  [[ -n $child ]] || { echo "compare: no server process under $1" >&2; return 1; }
  echo "$child"
}

cpu_seconds() {  # pid: user + system CPU seconds so far
  local fields
  # The command name (field 2) may hold spaces; what follows its ')' is field 3 onwards.
  fields=$(sed 's/^.*) //' "/proc/$1/stat")
  awk -v tick="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($12 + $13) / tick }' <<<"$fields"
}

write_server_cpu() {  # name, server, pid, cpu before: writes OUT/name.server.json
  local after
  after=$(cpu_seconds "$3")
  printf '{"server": "%s", "cpu_seconds": %.2f}\n' "$2" "$(awk -v a="$after" -v b="$4" \
    'BEGIN { print a - b }')" >"$out/$1.server.json"
}

failed_steps=()
step() {  # name, function: runs it, records a failure instead of stopping the run
  local name=$1
  shift
  echo "== $name"
  if ! "$@"; then
    echo "compare: step '$name' failed" >&2
    failed_steps+=("$name")
  fi
}

# ---------------------------------------------------------------------------- steps
step_fio() {
  command -v fio >/dev/null || { echo "fio not installed (tools/setup.sh)" >&2; return 1; }
  mkdir -p "$work/fio"
  # The job lines of tools/bench/disk_reference.sh (buffered_write, sync_write).
  local common=(--directory="$work/fio" --ioengine=psync --direct=0 --fallocate=none
                --runtime="$duration" --numjobs=1 --output-format=json)
  timeout $((duration + 60)) fio --name=buffered_write "${common[@]}" \
    --filename=data.1g --rw=write --bs=16k --size=1G --end_fsync=0 \
    >"$out/fio_buffered_write.json" || return 1
  rm -f "$work/fio/data.1g"
  timeout $((duration + 60)) fio --name=sync_write "${common[@]}" \
    --filename=data.sync --rw=write --bs=16k --size=256M --fdatasync=4 --end_fsync=0 \
    >"$out/fio_sync_write.json" || return 1
  rm -rf "$work/fio"
}

step_iperf3() {
  command -v iperf3 >/dev/null || { echo "iperf3 not installed (tools/setup.sh)" >&2; return 1; }
  local port pid
  port=$(free_port)
  timeout $((duration + 60)) iperf3 -s -1 -B 127.0.0.1 -p "$port" >"$out/iperf3_server.log" 2>&1 &
  pid=$!
  server_pids+=("$pid")
  # Not wait_for_port: a one-off server (-1) would spend its one test on the probe.
  for _ in $(seq 100); do
    grep -q "Server listening" "$out/iperf3_server.log" 2>/dev/null && break
    sleep 0.1
  done
  timeout $((duration + 30)) iperf3 -c 127.0.0.1 -p "$port" -t "$duration" -J \
    >"$out/iperf3.json" || return 1
  stop_server "$pid"
  if grep -q '"error"' "$out/iperf3.json"; then
    echo "compare: iperf3: $(grep '"error"' "$out/iperf3.json")" >&2
    return 1
  fi
}

step_tcp_echo() {
  timeout $((duration + 40)) "$tools/tcp_echo" --bytes 1024 --duration-s "$duration" \
    --label tcp_echo >"$out/tcp_echo.json"
}

step_redis() {
  command -v redis-server >/dev/null || { echo "redis-server not installed" >&2; return 1; }
  local port pid server before rate records value
  port=$(free_port)
  mkdir -p "$work/redis"
  # No snapshots (--save ''), append-only file fsynced once a second: Redis's usual
  # "durable enough" setting. The stream key is created by the first XADD.
  timeout $((duration * 4 + 120)) redis-server --bind 127.0.0.1 --port "$port" \
    --dir "$work/redis" --appendonly yes --appendfsync everysec --save '' \
    --daemonize no --logfile "$out/redis-server.log" &
  pid=$!
  server_pids+=("$pid")
  wait_for_port "$port" 10 || return 1
  server=$(server_of "$pid") || return 1
  # 1 KiB of random letters: redis-benchmark 7.0 has no payload placeholder for arbitrary
  # commands (-d sizes only its built-in SET/GET), so the value is a literal argument;
  # random, so the AOF rewrite's RDB preamble cannot compress it away.
  value=$("$python" -c 'import random, string; r = random.Random(1); print("".join(r.choice(string.ascii_letters) for _ in range(1024)))')
  local bench=(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -P 16 --csv)
  # A short calibration run sets the request count for about DURATION_S seconds.
  timeout 60 "${bench[@]}" -n 20000 XADD bench '*' f "$value" >"$out/redis_calibration.csv" || return 1
  rate=$("$python" -c 'import csv, sys; rows = list(csv.reader(open(sys.argv[1]))); print(int(float(rows[1][1])))' "$out/redis_calibration.csv")
  records=$((rate * duration))
  ((records >= 20000)) || records=20000
  ((records <= 5000000)) || records=5000000
  before=$(cpu_seconds "$server")
  timeout $((duration * 3 + 60)) "${bench[@]}" -n "$records" XADD bench '*' f "$value" \
    >"$out/redis_xadd.csv" || return 1
  write_server_cpu redis_xadd redis "$server" "$before"
  redis-cli -h 127.0.0.1 -p "$port" XLEN bench >"$out/redis_xlen.log" || true
  "$python" - "$out/redis_xadd.csv" "$records" 1024 >"$out/redis_xadd.json" <<'EOF'
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1])))
head, values = rows[0], rows[1]
fields = dict(zip(head, values))
records, record_bytes = int(sys.argv[2]), int(sys.argv[3])
rps = float(fields["rps"])
# redis-benchmark's latencies are per request, in ms; it has no p99.9 in its CSV.
print(json.dumps({
    "tool": "redis-benchmark", "label": "redis_xadd", "records": records,
    "bytes": records * record_bytes, "seconds": records / rps if rps else 0,
    "records_per_second": rps, "mb_per_second": rps * record_bytes / 1e6,
    "latency_us": {"p50": float(fields["p50_latency_ms"]) * 1e3,
                   "p99": float(fields["p99_latency_ms"]) * 1e3,
                   "max": float(fields["max_latency_ms"]) * 1e3},
    "clients": 50, "pipeline": 16}))
EOF
  stop_server "$pid"
  rm -rf "$work/redis"
}

step_nats() {
  command -v nats-server >/dev/null || { echo "nats-server not installed" >&2; return 1; }
  [[ -x $tools/nats_load ]] || { echo "nats_load not built (libnats-dev missing?)" >&2; return 1; }
  local port pid server before
  port=$(free_port)
  mkdir -p "$work/nats"
  timeout $((duration * 2 + 120)) nats-server -a 127.0.0.1 -p "$port" -js -sd "$work/nats" \
    >"$out/nats-server.log" 2>&1 &
  pid=$!
  server_pids+=("$pid")
  wait_for_port "$port" 10 || return 1
  server=$(server_of "$pid") || return 1
  before=$(cpu_seconds "$server")
  timeout $((duration + 90)) "$tools/nats_load" --url "nats://127.0.0.1:$port" \
    --duration-s "$duration" --record-bytes 1024 --max-pending 1024 --label nats_publish \
    >"$out/nats_publish.json" || return 1
  write_server_cpu nats_publish nats-server "$server" "$before"
  stop_server "$pid"
  rm -rf "$work/nats"
}

sluice_port=""
sluice_pid=""  # the sluice process itself, for its CPU time

rdkafka() {  # name, rdkafka_load arguments...: one load against sluice, with its CPU
  local name=$1 before status=0
  shift
  before=$(cpu_seconds "$sluice_pid")
  timeout $((duration * 3 + 90)) "$tools/rdkafka_load" "$@" --bootstrap "127.0.0.1:$sluice_port" \
    --label "$name" >"$out/$name.json" 2>"$out/$name.log" || status=$?
  write_server_cpu "$name" sluice "$sluice_pid" "$before"
  sed 's/^/  /' "$out/$name.log"
  return "$status"
}

json_field() {  # file, field: a top-level number from a JSON file
  "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

step_sluice() {
  [[ -x $sluice ]] || { echo "$sluice not built" >&2; return 1; }
  [[ -x $tools/rdkafka_load ]] || { echo "rdkafka_load not built (librdkafka-dev missing?)" >&2; return 1; }
  local status=0 rate total=0 name
  sluice_port=$(free_port)
  mkdir -p "$work/sluice"
  timeout $((duration * 12 + 300)) "$sluice" --listen "127.0.0.1:$sluice_port" \
    --data-dir "$work/sluice" --default-partitions 8 --log-level warn \
    >"$out/sluice.log" 2>&1 &
  local pid=$!
  server_pids+=("$pid")
  wait_for_port "$sluice_port" 10 || return 1
  sluice_pid=$(server_of "$pid") || return 1
  local produce=(produce --topic bench --partitions 8 --record-bytes 1024 --linger-ms 5
                 --duration-s "$duration")
  rdkafka sluice_produce_acks1 "${produce[@]}" --create-partitions 8 --acks 1 || status=1
  rdkafka sluice_produce_acksall "${produce[@]}" --acks all || status=1
  # Below saturation: half the rate acks=all just reached, so the latency is the broker's
  # and the disk's, not the time records wait in a full client queue.
  rate=1000
  if [[ -s $out/sluice_produce_acksall.json ]]; then
    rate=$("$python" -c 'import json, sys; print(max(1000, int(json.load(open(sys.argv[1]))["records_per_second"] / 2)))' \
      "$out/sluice_produce_acksall.json")
  fi
  rdkafka sluice_produce_acksall_paced "${produce[@]}" --acks all --rate "$rate" || status=1
  rdkafka sluice_produce_sync "${produce[@]}" --acks 1 --sync || status=1
  for name in sluice_produce_acks1 sluice_produce_acksall sluice_produce_acksall_paced \
      sluice_produce_sync; do
    [[ -s $out/$name.json ]] && total=$((total + $(json_field "$out/$name.json" records)))
  done
  if ((total > 0)); then
    rdkafka sluice_consume consume --topic bench --records "$total" || status=1
  else
    echo "compare: nothing was produced, so nothing to consume" >&2
    status=1
  fi
  step_sluice_bench || true
  stop_server "$pid"
  rm -rf "$work/sluice"
  return "$status"
}

# sluice-bench (our own load generator, tools/sluice-bench) is run with the same workloads
# when it is built: produce acks=all, consume from the beginning, e2e; 1 KiB records, 8
# partitions. Each prints one JSON document (--json); --broker-pid makes it read the
# broker's CPU time itself, which it reports per GB beside its own (report.py reads
# "cpu.broker_seconds" when there is no NAME.server.json).
step_sluice_bench() {
  local binary=${SLUICE_BENCH_BIN:-}
  if [[ -z $binary ]]; then
    for candidate in "$build/tools/sluice-bench/sluice-bench" "$build/sluice-bench"; do
      [[ -x $candidate ]] && { binary=$candidate; break; }
    done
  fi
  if [[ -z $binary ]]; then
    echo "sluice-bench not built, skipped"
    return 0
  fi
  local mode status=0
  for mode in produce consume e2e; do
    local extra=()
    case $mode in
      produce) extra=(--acks all --duration-s "$duration") ;;
      consume) extra=() ;;  # from the log start to the end offsets seen at its start
      e2e) extra=(--acks all --duration-s "$duration") ;;
    esac
    if ! timeout $((duration * 3 + 60)) "$binary" "$mode" --json \
        --bootstrap "127.0.0.1:$sluice_port" --topic sluice-bench --partitions 8 \
        --record-bytes 1024 --broker-pid "$sluice_pid" "${extra[@]}" \
        >"$out/sluice_bench_$mode.json" 2>"$out/sluice_bench_$mode.log"; then
      echo "compare: sluice-bench $mode failed (see $out/sluice_bench_$mode.log)" >&2
      status=1
    fi
  done
  return "$status"
}

# ---------------------------------------------------------------------------- run
fs=$(df -T "${SLUICE_BENCH_DIR:-/tmp}" | awk 'NR == 2 { print $2 " (" $1 ") at " $7 }')
"$python" - "$out/machine.json" "$duration" "$fs" "$repo" <<'EOF'
import json, os, platform, subprocess, sys, time
def run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""
model = next((l.split(":", 1)[1].strip() for l in run("lscpu").splitlines()
              if l.startswith("Model name:")), "")
json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "duration_s": int(sys.argv[2]), "cpu": model, "cpus": os.cpu_count(),
           "kernel": platform.release(), "file_system": sys.argv[3],
           "commit": run("git", "-C", sys.argv[4], "rev-parse", "--short", "HEAD"),
           "load_before": open("/proc/loadavg").read().split()[:3]},
          open(sys.argv[1], "w"), indent=2)
EOF
echo "== machine: $(nproc) cpus, $(uname -r), data in $work on $fs, load $(cut -d' ' -f1-3 /proc/loadavg)"

step fio step_fio
step iperf3 step_iperf3
step tcp_echo step_tcp_echo
step redis step_redis
step nats step_nats
step sluice step_sluice

"$python" - "$out/machine.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["load_after"] = open("/proc/loadavg").read().split()[:3]
json.dump(m, open(sys.argv[1], "w"), indent=2)
EOF
echo "== results ($out)"
"$python" "$repo/bench/compare/report.py" "$out" "${failed_steps[@]}" | tee "$out/table.txt"
if ((${#failed_steps[@]} > 0)); then
  echo "compare: failed steps: ${failed_steps[*]}" >&2
  exit 1
fi
