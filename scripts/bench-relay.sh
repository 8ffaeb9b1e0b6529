#!/usr/bin/env bash
# Relay figures for docs/benchmarks.md: the release relay and the load tool on this machine,
# a fresh relay (and data dir) for each scenario.
#   scripts/bench-relay.sh [pairs|latency|durable|idle|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
cargo build --quiet --release -p sotto-relay -p sotto-load
port=${SOTTO_BENCH_PORT:-18080}

scenario() {
  local data relay
  data=$(mktemp -d)
  # Every client comes from 127.0.0.1: lift the per-IP limits for the benchmark.
  target/release/sotto-relay --listen 127.0.0.1:$port --data-dir "$data" --log warn \
    --max-connections-per-ip 100000 --rate-per-ip 100000000 --rate-per-connection 1000000 \
    --max-queued-envelopes 100000000 --max-queued-bytes 100000000000 &
  relay=$!
  sleep 0.5
  local args=("$@")
  [ "${args[0]}" = idle ] && args+=(--relay-pid "$relay")
  target/release/sotto-load --relay 127.0.0.1:$port "${args[@]}" 2> >(grep -v -E 'logged in|connected|connections$' >&2) || true
  echo "  relay peak RSS: $(grep VmHWM /proc/$relay/status | awk '{print $2, $3}')"
  kill $relay; wait $relay 2>/dev/null || true
  rm -rf "$data"
}

case $what in pairs|all) scenario pairs --pairs 1000 --size 256 --seconds 10 ;; esac
case $what in latency|all) scenario pairs --pairs 1000 --size 256 --seconds 10 --rate 20000 ;; esac
case $what in durable|all) scenario durable --senders 100 --size 256 --seconds 10 ;; esac
case $what in idle|all) scenario idle --connections 10000 ;; esac
