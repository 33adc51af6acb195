#!/usr/bin/env bash
# Installs what is missing, builds Sluice (Release) and starts a broker with its
# defaults. Extra arguments go to `sluice` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)"
exec build/release/broker/sluice "$@"
