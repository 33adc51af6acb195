#!/usr/bin/env bash
# Builds Sluice in Release, measures the same-run fio reference on the file system the
# benchmarks write to, runs the storage benchmarks, and prints each figure beside its
# reference and the ratio (docs/benchmarks.md, "Storage engine").
#
# Usage: tools/bench/run_storage_bench.sh
# Environment:
#   BUILD_DIR         build directory (default: <repo>/build/release, the Release build
#                     that tools/run.sh and tools/test.sh use)
#   SLUICE_BENCH_DIR  where benchmark and fio files go (default: /tmp)
#   REPETITIONS       benchmark repetitions (default: 3)
#   RESULTS_DIR       keep the raw JSON here (default: a temporary directory, removed)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$repo/build/release}
bench_dir=${SLUICE_BENCH_DIR:-/tmp}
repetitions=${REPETITIONS:-3}
python=/usr/bin/python3

if [[ -n ${RESULTS_DIR:-} ]]; then
  mkdir -p "$RESULTS_DIR"
  results=$RESULTS_DIR
else
  results=$(mktemp -d)
  trap 'rm -rf "$results"' EXIT
fi

echo "== build ($build, Release)"
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_SANITIZE=OFF >/dev/null
ninja -C "$build" -j2 sluice_bench >/dev/null

echo "== machine"
echo "date:        $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpus:        $(nproc)"
echo "cpu:         $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "kernel:      $(uname -r)"
echo "file system: $(df -T "$bench_dir" | awk 'NR == 2 { print $2 " (" $1 ") at " $7 }')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== fio reference in $bench_dir"
"$repo/tools/bench/disk_reference.sh" "$bench_dir" "$results/fio.json"

echo "== sluice_bench"
SLUICE_BENCH_DIR=$bench_dir "$build/bench/sluice_bench" \
  --benchmark_filter='crc32c|append|read_sequential|index_lookup|recovery|idle_partition' \
  --benchmark_repetitions="$repetitions" --benchmark_report_aggregates_only=true \
  --benchmark_out="$results/bench.json" --benchmark_out_format=json
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== figures against the same-run references (medians of $repetitions repetitions)"
"$python" - "$results/fio.json" "$results/bench.json" <<'EOF'
import json, sys

with open(sys.argv[1]) as f:
    fio = json.load(f)
with open(sys.argv[2]) as f:
    bench = json.load(f)

# The median of the repetitions, or the single run of a benchmark that runs once.
runs = {}
for b in bench["benchmarks"]:
    name = b.get("run_name", b["name"])
    if b.get("aggregate_name") == "median" or (
            b.get("run_type") == "iteration" and name not in runs):
        runs[name] = b

def find(prefix):
    for name, b in runs.items():
        if name.startswith(prefix):
            return b
    return None

mib = 1024 * 1024
rows = []

def row(figure, value, unit, reference=None, ref_label="", target=None):
    ratio = f"{value / reference:6.0%}" if reference else ""
    rows.append((figure, f"{value:,.1f} {unit}", ref_label, ratio, target or ""))

b = find("BM_append_flush_off")
if b:
    row("append, flush off", b["bytes_per_second"] / mib, "MiB/s",
        fio["buffered_write_bytes_per_second"] / mib,
        f"fio buffered write {fio['buffered_write_bytes_per_second'] / mib:,.0f} MiB/s",
        ">= 80%")
    row("  vectored writes per GiB", b["writes_per_GiB"], "")
b = find("BM_append_flush_per_batch")
if b:
    row("append, fdatasync per batch (group commit)", b["bytes_per_second"] / mib, "MiB/s",
        fio["sync_write_bytes_per_second"] / mib,
        f"fio fdatasync/64 KiB {fio['sync_write_bytes_per_second'] / mib:,.0f} MiB/s, "
        f"p50 {fio['fdatasync_p50_us']:.0f} us p99 {fio['fdatasync_p99_us']:.0f} us")
    row("  fdatasyncs per GiB", b["fdatasyncs_per_GiB"], "", None,
        f"fio: {1024 * 1024 / 64:,.0f} per GiB")
for fresh in (0, 1):
    b = find(f"BM_read_sequential/fresh_map:{fresh}")
    if b:
        row(f"read sequential ({'new mapping' if fresh else 'kept mapping'})",
            b["bytes_per_second"] / mib, "MiB/s", fio["cached_read_bytes_per_second"] / mib,
            f"fio page-cache read {fio['cached_read_bytes_per_second'] / mib:,.0f} MiB/s")
b = find("BM_crc32c_dispatched/1048576")
if b:
    row(f"CRC32C, 1 MiB, one core ({b.get('label', '')})", b["bytes_per_second"] / 1e9,
        "GB/s", 5.0, "target 5 GB/s", ">= 100%")
b = find("BM_index_lookup")
if b:
    row("offset index lookup, 100k entries", b["items_per_second"] / 1e6, "M lookups/s")
b = find("BM_recovery_per_gib/0")
if b:
    rows.append(("recovery (page cache)", f"{b['seconds_per_GiB']:,.3f} s per GiB", "", "", ""))
b = find("BM_recovery_per_gib/1")
if b:
    # As a ratio of bandwidths: the GiB/s recovery reaches against fio's device read.
    ref = fio["cold_read_bytes_per_second"] / (1024 * mib)
    rows.append(("recovery (cold cache)", f"{b['seconds_per_GiB']:,.3f} s per GiB",
                 f"fio cold read {fio['cold_read_bytes_per_second'] / mib:,.0f} MiB/s "
                 f"= {1 / ref:.3f} s per GiB", f"{(1 / b['seconds_per_GiB']) / ref:6.0%}", ""))
b = find("BM_idle_partition_memory")
if b:
    row("idle partition, resident memory", b["bytes_per_idle_partition"], "bytes")
    row("  descriptors open, 10k partitions", b["fds_after_create"], "",
        None, "limit 1024")
    row("  descriptors open, all files closed", b["fds_after_close"], "")

widths = [max(len(r[i]) for r in rows) for i in range(5)]
header = ("figure", "value", "same-run reference", "ratio", "target")
widths = [max(w, len(h)) for w, h in zip(widths, header)]
for r in (header,) + tuple(rows):
    print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
EOF
