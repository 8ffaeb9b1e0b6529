#!/usr/bin/env bash
# README command 1: set up, build, and start the relay serving the app on http://127.0.0.1:8080.
# Extra arguments go to the relay (e.g. --listen 0.0.0.0:8080 --data-dir /var/lib/sotto).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
# The relay keeps its data under ./sotto-data unless --data-dir (or SOTTO_DATA_DIR) says otherwise.
exec target/release/sotto-relay "$@"
