#!/usr/bin/env bash
# Engine figures for docs/benchmarks.md: the same workloads (engine/src/workloads.rs, and search
# over 100,000 messages) natively
# with criterion and in headless Chromium with wasm-bindgen-test's criterion port.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test >/dev/null
echo "== native (criterion)"
cargo bench -p sotto-engine --bench engine -- --warm-up-time 1 --measurement-time 3 2>&1 | grep -E "^[a-z]|time:|thrpt:"
cargo bench -p sotto-messenger --bench search -- --warm-up-time 1 --measurement-time 3 2>&1 | grep -E "^[a-z]|time:"
echo "== headless Chromium (wasm32, release)"
tmp=$(mktemp -d)
# In two runs: the test runner gives up on a run that takes more than about 20 s.
for filter in "--skip file --skip search" "file" "search"; do
  # shellcheck disable=SC2086
  TMPDIR="$tmp" cargo bench -p sotto-client --target wasm32-unknown-unknown --bench engine_in_browser -- $filter 2>&1 \
    | grep -E "time:|test result" | sed 's/\x1b\[[0-9;]*m//g'
done
rm -rf "$tmp"
