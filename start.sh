#!/usr/bin/env bash
# Quick start: build ringmq and run a name server and a broker on localhost with defaults
# (namesrv 127.0.0.1:9876, broker 127.0.0.1:10911 — one port per shard: 10911, 10915, … —
# data under ./data, metrics on http://127.0.0.1:10910/metrics). Ctrl-C stops both cleanly.
#
#   ./start.sh                                    # defaults (ASYNC_FLUSH, one shard per core)
#   ./start.sh flushDiskType=SYNC_FLUSH shards=1  # any broker.conf key=value overrides
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --bins
mkdir -p data
# Both run in their own session (setsid), so a Ctrl-C reaches only this script, which then
# stops them in order with one signal each: the broker first (it unregisters, answers parked
# pulls, flushes and checkpoints while the name server still runs), then the name server. A
# second signal would make the broker exit without its clean stop.
setsid target/release/ringmq-namesrv listenPort=9876 &
NAMESRV=$!
# Loopback address by default so the whole setup stays on this machine; pass brokerIP1=… to
# advertise another address to clients.
setsid target/release/ringmq-broker -n 127.0.0.1:9876 storePathRootDir=./data \
  brokerIP1=127.0.0.1 "$@" &
BROKER=$!

stop() {
  trap - INT TERM
  kill -TERM "$BROKER" 2>/dev/null && wait "$BROKER" 2>/dev/null || true
  kill -TERM "$NAMESRV" 2>/dev/null && wait "$NAMESRV" 2>/dev/null || true
  exit 0
}
trap stop INT TERM
wait -n "$NAMESRV" "$BROKER" || true
echo "start.sh: a process exited; stopping the other" >&2
stop
