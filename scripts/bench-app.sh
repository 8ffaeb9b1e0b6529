#!/usr/bin/env bash
# The web app's figures: bundle sizes, send→render latency between two pages, start time.
#   scripts/bench-app.sh [messages=100]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh
for f in target/app/*.wasm target/app/sotto-*.js target/app/boot-*.js target/app/style-*.css; do
  printf '%-40s %8d bytes raw %8d gzipped\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(stat -c %s "$f.gz")"
done
node tests/browser/latency.mjs "${1:-100}"
node tests/browser/group-join.mjs 1000 3
