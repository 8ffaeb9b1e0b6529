#!/usr/bin/env bash
# Relay figures for docs/benchmarks.md: the release relay and the load tool on this machine.
#   scripts/bench-relay.sh [pairs|latency|idle|durable|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
cargo build --quiet --release -p sotto-relay -p sotto-load
data=$(mktemp -d)
port=${SOTTO_BENCH_PORT:-18080}
# Every client comes from 127.0.0.1: lift the per-IP limits for the benchmark.
target/release/sotto-relay --listen 127.0.0.1:$port --data-dir "$data" --log warn \
  --max-connections-per-ip 100000 --rate-per-ip 100000000 --rate-per-connection 1000000 \
  --max-queued-envelopes 100000000 --max-queued-bytes 100000000000 &
relay=$!
trap 'kill $relay 2>/dev/null; wait $relay 2>/dev/null; rm -rf "$data"' EXIT
sleep 0.5
load() { target/release/sotto-load --relay 127.0.0.1:$port "$@"; }
case $what in
  pairs|all) load pairs --pairs 1000 --size 256 --seconds 10 ;;&
  latency|all) load pairs --pairs 1000 --size 256 --seconds 10 --rate 20000 ;;&
  durable|all) load durable --senders 100 --size 256 --seconds 10 ;;&
  idle|all) load idle --connections 10000 --relay-pid $relay ;;
esac
echo "relay peak RSS: $(grep VmHWM /proc/$relay/status | awk '{print $2, $3}')"
