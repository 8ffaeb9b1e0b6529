#!/usr/bin/env bash
# Relay figures for docs/benchmarks.md: the release relay and the load tool on this machine,
# a fresh relay (and data dir) for each scenario.
#   scripts/bench-relay.sh [pairs|latency|durable|idle|group|channel|defaults|forwarder|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
cargo build --quiet --release -p sotto-relay -p sotto-load
port=${SOTTO_BENCH_PORT:-18080}

# Every client comes from 127.0.0.1: the lifted runs lift the per-IP limits (and the per-connection
# rate, so senders can saturate). The `defaults` run keeps every default limit and puts each client
# behind its own address, as a reverse proxy in front of many people would.
lifted=(--max-connections-per-ip 100000 --rate-per-ip 100000000 --rate-per-connection 1000000
  --ip-bytes-per-sec 4000000000 --ip-bytes-burst 4000000000
  --max-queued-envelopes 100000000 --max-queued-bytes 100000000000 --max-store-bytes 100000000000
  --new-mailboxes-per-ip-hour 100000000 --topic-posts-per-sec 100000000
  --channel-reads-per-ip-minute 100000000 --counted-subscribers-per-ip-hour 100000000)
defaults=(--trusted-proxy 127.0.0.1/32)

scenario() {
  local data relay limits=$1 load_flags=()
  shift
  data=$(mktemp -d)
  local -n relay_flags=$limits
  [ "$limits" = defaults ] && load_flags=(--forwarded-clients)
  target/release/sotto-relay --listen 127.0.0.1:$port --data-dir "$data" --log warn "${relay_flags[@]}" &
  relay=$!
  sleep 0.5
  local args=("$@")
  case ${args[0]} in idle|channel) args+=(--relay-pid "$relay") ;; esac
  target/release/sotto-load --relay 127.0.0.1:$port "${load_flags[@]}" "${args[@]}" \
    2> >(grep -v -E 'logged in|connected|connections$' >&2) || true
  echo "  relay peak RSS: $(grep VmHWM /proc/$relay/status | awk '{print $2, $3}')"
  kill $relay; wait $relay 2>/dev/null || true
  rm -rf "$data"
}

case $what in pairs|all) scenario lifted pairs --pairs 1000 --size 256 --seconds 10 ;; esac
case $what in latency|all) scenario lifted pairs --pairs 1000 --size 256 --seconds 10 --rate 20000 ;; esac
case $what in durable|all) scenario lifted durable --senders 100 --size 256 --seconds 10 ;; esac
case $what in idle|all) scenario lifted idle --connections 10000 ;; esac
case $what in group|all)
  scenario lifted group --members 1000 --size 320 --seconds 20 --rate 10
  scenario lifted group --members 1000 --size 320 --seconds 10 --rate 100 ;;
esac
case $what in channel|all)
  scenario lifted channel --subscribers 10000 --size 200 --seconds 20 --rate 2
  scenario lifted channel --subscribers 10000 --size 200 --seconds 10 --rate 10 ;;
esac
case $what in forwarder|all)
  # The floor: a memory-only forwarder on the same WebSocket stack (load/src/bin/sotto-forwarder.rs).
  echo "memory-only forwarder (the baseline, not the relay):"
  target/release/sotto-forwarder --listen 127.0.0.1:$port >/dev/null &
  fwd=$!
  sleep 0.3
  target/release/sotto-load --relay 127.0.0.1:$port pairs --pairs 1000 --size 256 --seconds 10 --rate 20000 \
    2> >(grep -v -E 'logged in|connected|connections$' >&2) || true
  kill $fwd; wait $fwd 2>/dev/null || true ;;
esac
case $what in defaults|all)
  echo "with the default limits, every client behind its own address:"
  scenario defaults pairs --pairs 1000 --size 256 --seconds 10
  scenario defaults pairs --pairs 1000 --size 256 --seconds 10 --rate 20000 ;;
esac
