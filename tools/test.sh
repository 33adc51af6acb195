#!/usr/bin/env bash
# Installs what is missing, builds Sluice and runs every test: the whole suite on the
# Release build, then the unit, crash and tool tests again under AddressSanitizer and
# UndefinedBehaviorSanitizer, the libFuzzer targets for a bounded time, and each
# micro-benchmark for a moment so none can rot.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

tools/setup.sh

echo "== Release build"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$jobs"

echo "== Sanitizer build (ASan + UBSan)"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON \
  -DSLUICE_BUILD_BENCH=OFF >/dev/null
cmake --build build/asan -j"$jobs"

echo "== Micro-benchmarks, a few iterations each (a smoke run, not a measurement)"
build/release/bench/sluice_bench --benchmark_filter='crc32c|validate|reactor|index_lookup|decode|encode' \
  --benchmark_min_time=0.01 >/dev/null

echo "== Fuzzing with libFuzzer (clang), 30 s per target"
CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSLUICE_FUZZ=ON -DSLUICE_BUILD_BENCH=OFF >/dev/null
fuzz_targets=(batch_validator_fuzz request_decoder_fuzz)
cmake --build build/fuzz -j"$jobs" --target "${fuzz_targets[@]}"
for target in "${fuzz_targets[@]}"; do
  corpus=$(mktemp -d)
  build/fuzz/tests/fuzz/"$target" -max_total_time=30 -rss_limit_mb=2048 -print_final_stats=0 \
    "$corpus" 2>&1 | tail -n 2
  rm -rf "$corpus"
done

echo "== Tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs" --timeout 600

echo "== Tests on the Release build"
ctest --test-dir build/release --output-on-failure -j"$jobs" --timeout 600
