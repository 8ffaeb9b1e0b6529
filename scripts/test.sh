#!/usr/bin/env bash
# README command 2: set up and run every test (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-off run gains nothing from incremental caches, which are most of a debug target's size.
export CARGO_INCREMENTAL=0

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "setup"
scripts/setup.sh --test

step "format"
cargo fmt --all --check

step "build (web app + release relay)"
scripts/build.sh

step "clippy (native)"
cargo clippy --quiet --workspace --all-targets -- -D warnings
step "clippy (wasm32)"
cargo clippy --quiet -p sotto-client --all-targets --target wasm32-unknown-unknown -- -D warnings
cargo clippy --quiet -p sotto-engine -p sotto-messenger -p sotto-shared -p sotto-worker -p sotto-scanner --target wasm32-unknown-unknown -- -D warnings

step "native tests (unit, relay integration against the release binary)"
SOTTO_RELAY_BIN="$PWD/target/release/sotto-relay" cargo test --workspace

step "wasm tests in headless Chromium"
# Each run leaves large Chromium temp dirs: give it its own TMPDIR and remove it after.
wasm_tmp=$(mktemp -d)
TMPDIR="$wasm_tmp" cargo test -p sotto-client --target wasm32-unknown-unknown
rm -rf "$wasm_tmp"

step "browser tests (playwright-core, headless Chromium, real relay)"
SOTTO_RELAY_BIN="$PWD/target/release/sotto-relay" node --test --test-concurrency=1 tests/browser/

step "all tests passed"
