#!/usr/bin/env bash
# Same-run reference figures for the storage benchmarks, measured with fio on the file
# system the benchmarks write to.
#
# Usage: tools/bench/disk_reference.sh DIR [SUMMARY_JSON]
#   DIR           an existing directory on the file system under test; fio's files go to a
#                 fresh subdirectory of it, removed at exit
#   SUMMARY_JSON  optional: where to write the figures as JSON (for run_storage_bench.sh)
#
# The three jobs, run one after the other, all with --ioengine=psync --direct=0
# --fallocate=none --runtime=20 (an upper bound, not --time_based) and --numjobs=1:
#   buffered_write  --rw=write --bs=16k --size=1G --end_fsync=0
#                   page-cache write bandwidth: the reference for BM_append_flush_off
#                   (which also writes a fresh, not preallocated, file and never syncs)
#   sync_write      --rw=write --bs=16k --size=256M --fdatasync=4 --end_fsync=0
#                   an fdatasync after every 64 KiB: bandwidth and fdatasync latency
#                   (p50/p99 from fio's "sync" section), the reference for
#                   BM_append_flush_per_batch
#   cached_read     --rw=read --bs=1M --size=1G --invalidate=0, on buffered_write's file
#                   with caches NOT dropped (fio would drop the file's cached pages before
#                   the job without --invalidate=0): page-cache read bandwidth, the
#                   reference for BM_read_sequential (1 MiB reads from the page cache)
#   cold_read       --rw=read --bs=1M --size=1G --invalidate=1, the same file after
#                   `sync --data` (untimed) and fio's dropping its cached pages: device
#                   read bandwidth, the reference for BM_recovery_per_gib/1 (recovery of
#                   a segment that is not cached). Without the sync the pages would stay
#                   dirty, fio could not drop them, and writeback would compete. Run twice:
#                   on this virtual disk the first read after a write is several times
#                   slower than later uncached reads (the host's own caching, presumably);
#                   both are printed, and the second is the reference because the recovery
#                   benchmark's median comes from repeated reads too.
set -euo pipefail

if [[ $# -lt 1 || ! -d $1 ]]; then
  echo "usage: $0 DIR [SUMMARY_JSON]  (DIR must exist)" >&2
  exit 2
fi
command -v fio >/dev/null || {
  echo "disk_reference: fio is not installed (tools/setup.sh installs it)" >&2
  exit 1
}
python=/usr/bin/python3
summary_out=${2:-}

work=$(mktemp -d "$1/sluice-fio-XXXXXX")
trap 'rm -rf "$work"' EXIT

common=(--ioengine=psync --direct=0 --fallocate=none --runtime=20 --numjobs=1
        --output-format=json)

run_job() {  # name, json output, fio options...
  local name=$1 out=$2
  shift 2
  fio --name="$name" --directory="$work" "${common[@]}" "$@" >"$out"
}

run_job buffered_write "$work/buffered_write.json" \
  --filename=data.1g --rw=write --bs=16k --size=1G --end_fsync=0
run_job cached_read "$work/cached_read.json" \
  --filename=data.1g --rw=read --bs=1M --size=1G --invalidate=0
sync --data "$work/data.1g"
run_job cold_read_first "$work/cold_read_first.json" \
  --filename=data.1g --rw=read --bs=1M --size=1G --invalidate=1
run_job cold_read "$work/cold_read.json" \
  --filename=data.1g --rw=read --bs=1M --size=1G --invalidate=1
run_job sync_write "$work/sync_write.json" \
  --filename=data.sync --rw=write --bs=16k --size=256M --fdatasync=4 --end_fsync=0

"$python" - "$work" "$summary_out" <<'EOF'
import json, sys

work, summary_out = sys.argv[1], sys.argv[2]

def job(name):
    with open(f"{work}/{name}.json") as f:
        return json.load(f)["jobs"][0]

write = job("buffered_write")
read = job("cached_read")
cold = job("cold_read")
cold_first = job("cold_read_first")
sync = job("sync_write")
percentiles = sync["sync"]["lat_ns"].get("percentile", {})

summary = {
    "buffered_write_bytes_per_second": write["write"]["bw_bytes"],
    "buffered_write_bytes": write["write"]["io_bytes"],
    "sync_write_bytes_per_second": sync["write"]["bw_bytes"],
    "sync_write_bytes": sync["write"]["io_bytes"],
    "fdatasyncs": sync["sync"]["lat_ns"].get("N", 0),
    "fdatasync_p50_us": percentiles.get("50.000000", 0) / 1000,
    "fdatasync_p99_us": percentiles.get("99.000000", 0) / 1000,
    "cached_read_bytes_per_second": read["read"]["bw_bytes"],
    "cached_read_bytes": read["read"]["io_bytes"],
    "cold_read_bytes_per_second": cold["read"]["bw_bytes"],
    "cold_read_bytes": cold["read"]["io_bytes"],
    "cold_read_first_bytes_per_second": cold_first["read"]["bw_bytes"],
}

mib = 1024 * 1024
print("fio reference (same file system, same run)")
print(f"  {'job':<46} {'MiB/s':>9}  note")
print(f"  {'buffered write, bs=16k, 1 GiB, no fsync':<46} "
      f"{summary['buffered_write_bytes_per_second'] / mib:9.0f}  page cache")
print(f"  {'write bs=16k, fdatasync every 64 KiB, 256 MiB':<46} "
      f"{summary['sync_write_bytes_per_second'] / mib:9.0f}  "
      f"fdatasync p50 {summary['fdatasync_p50_us']:.0f} us, "
      f"p99 {summary['fdatasync_p99_us']:.0f} us ({summary['fdatasyncs']} syncs)")
print(f"  {'read bs=1M, 1 GiB, caches not dropped':<46} "
      f"{summary['cached_read_bytes_per_second'] / mib:9.0f}  page cache")
print(f"  {'read bs=1M, 1 GiB, cached pages dropped':<46} "
      f"{summary['cold_read_bytes_per_second'] / mib:9.0f}  device (first read after "
      f"the write: {summary['cold_read_first_bytes_per_second'] / mib:.0f})")

if summary_out:
    with open(summary_out, "w") as f:
        json.dump(summary, f, indent=2)
EOF
