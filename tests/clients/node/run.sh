#!/usr/bin/env bash
# Runs the kafkajs compatibility tests against a sluice binary:
#   bash tests/clients/node/run.sh PATH/TO/sluice
# Installs the pinned kafkajs (package-lock.json) with `npm ci` when node_modules is
# missing or was installed from a different lock file, then runs `node --test`.
# Exits non-zero when a tool is missing, the install fails, or a test fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ $# -lt 1 ]]; then
  echo "usage: $0 PATH/TO/sluice" >&2
  exit 2
fi
sluice="$(realpath -- "$1")"
if [[ ! -x "$sluice" ]]; then
  echo "$0: $1 is not an executable sluice binary" >&2
  exit 2
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$0: '$tool' not found: install Node.js 20 or newer with npm (Debian: apt-get install nodejs npm)" >&2
    exit 2
  fi
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 20 )); then
  echo "$0: Node.js $(node --version) is too old: the tests need Node.js 20 or newer (node:test)" >&2
  exit 2
fi
kcat="${KCAT:-/usr/bin/kcat}"
if [[ ! -x "$kcat" ]]; then
  echo "$0: kcat not found at $kcat (set \$KCAT, or apt-get install kcat): the tests read records back with it" >&2
  exit 2
fi

cd "$here"

# node_modules is current when it was installed from this very package-lock.json; the
# stamp records the lock file's hash. A lock on a file outside the tree keeps two test
# runs (two build directories) from installing into the same directory at once.
stamp=node_modules/.sluice-package-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
(
  flock -w 300 9 || { echo "$0: timed out waiting for another npm ci" >&2; exit 1; }
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "installing kafkajs (npm ci) in $here" >&2
    npm ci --no-audit --no-fund --prefer-offline --loglevel=error
    echo "$want" >"$stamp"
  fi
) 9>"${TMPDIR:-/tmp}/sluice-kafkajs-npm-ci.lock"

export SLUICE_BINARY="$sluice"
export KCAT="$kcat"
exec node --test --test-reporter=spec kafkajs_test.mjs
