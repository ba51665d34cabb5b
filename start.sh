#!/usr/bin/env bash
# Quick start: build ringmq and run a name server and a broker on localhost with defaults
# (namesrv 9876, broker 10911, data under ./data). Ctrl-C stops both.
#
#   ./start.sh                      # defaults
#   ./start.sh flushDiskType=SYNC_FLUSH shards=1   # extra broker.conf keys for the broker
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --bins
mkdir -p data
target/release/ringmq-namesrv listenPort=9876 &
NAMESRV=$!
trap 'kill $NAMESRV ${BROKER:-} 2>/dev/null; wait' EXIT INT TERM
if target/release/ringmq-broker --version >/dev/null 2>&1; then
  target/release/ringmq-broker -n 127.0.0.1:9876 storePathRootDir=./data "$@" &
  BROKER=$!
else
  echo "start.sh: ringmq-broker is not available in this build; running the name server only" >&2
fi
wait
