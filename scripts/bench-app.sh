#!/usr/bin/env bash
# The web app's figures: bundle sizes, send→render latency between two pages, start time,
# joining a big group, and files (the worker's speed beside native, a big file end to end).
#   scripts/bench-app.sh [messages=100] [file MiB=1024]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh
for f in target/app/*.wasm target/app/*.js target/app/style-*.css; do
  printf '%-40s %8d bytes raw %8d gzipped\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(stat -c %s "$f.gz")"
done
node tests/browser/latency.mjs "${1:-100}"
node tests/browser/group-join.mjs 1000 3
cargo run --release --quiet -p sotto-worker --example speed
node tests/browser/file-speed.mjs 256
node tests/browser/big-file.mjs "${2:-1024}"
