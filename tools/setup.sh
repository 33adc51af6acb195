#!/usr/bin/env bash
# Installs every Debian 12 package that building, running and testing Sluice needs.
# Idempotent: packages already present are left alone. Runs as root or through sudo.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev
  # libraries
  liburing-dev libxxhash-dev libmimalloc-dev libboost-program-options-dev libfmt-dev
  zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  # tests and benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev fio iperf3
  # real Kafka clients for the compatibility tests
  kcat python3 python3-kafka python3-confluent-kafka
  # side-by-side comparison (bench/compare): other brokers and client libraries
  redis-server redis-tools nats-server libnats-dev librdkafka-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
