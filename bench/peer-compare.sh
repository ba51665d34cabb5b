#!/usr/bin/env bash
# Measures ringmq and the rocketmq-rust broker (crates.io) with the same ringmq-bench scenarios,
# one after the other in the same session on this host, and prints `ringmq-bench compare` tables
# (A = ringmq, B = rocketmq-rust, ratios B/A).
#
#   bench/peer-compare.sh                 # defaults below
#   DURATION=30s FLUSH=SYNC_FLUSH RATE_LOW=500 RATE_HIGH=20000 bench/peer-compare.sh
#   SKIP_SELF_TEST=1 bench/peer-compare.sh    # reuse the ceilings measured before
#
# Everything runs on 127.0.0.1 with stores under $WORK (default /tmp/ringmq-peer-compare); the
# peer is installed with `cargo install` into $PEER_ROOT (default /tmp/peer) if it is not there
# yet, at low priority: a long build. Nothing from the peer is written into this repository.
set -euo pipefail
cd "$(dirname "$0")/.."

PEER_ROOT=${PEER_ROOT:-/tmp/peer}
WORK=${WORK:-/tmp/ringmq-peer-compare}
DURATION=${DURATION:-10s}
FLUSH=${FLUSH:-ASYNC_FLUSH}          # ASYNC_FLUSH or SYNC_FLUSH, applied to both brokers
RATE_LOW=${RATE_LOW:-1000}           # open-loop targets, messages/s: one both brokers sustain,
RATE_HIGH=${RATE_HIGH:-10000}        # and one that may overload the slower one
SIZE=${SIZE:-1024}
BENCH_FLAGS=("$@")

RINGMQ_NS=127.0.0.1:19876
RINGMQ_PORT=20911
PEER_NS_PORT=29876
PEER_NS=127.0.0.1:$PEER_NS_PORT
PEER_PORT=30911

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The stores are gigabytes; keep only reports and logs unless asked (KEEP_STORES=1).
  [[ -n ${KEEP_STORES:-} ]] || rm -rf "$WORK/ringmq-store" "$WORK/peer/store"
}
trap cleanup EXIT INT TERM

if [[ ! -x $PEER_ROOT/bin/rocketmq-broker-rust || ! -x $PEER_ROOT/bin/rocketmq-namesrv-rust ]]; then
  echo "== installing rocketmq-namesrv and rocketmq-broker from crates.io into $PEER_ROOT (slow)"
  nice -n 19 cargo install --root "$PEER_ROOT" rocketmq-namesrv rocketmq-broker
fi
echo "== building ringmq (release)"
cargo build --release -p ringmq-bench -p ringmq-net
BENCH=target/release/ringmq-bench

rm -rf "$WORK" && mkdir -p "$WORK"

wait_port() { # host port seconds
  for _ in $(seq 1 $(($3 * 10))); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1:$2 after $3 s" >&2
  return 1
}

# The scenarios, identical for both targets. $1 = label prefix, $2 = namesrv.
scenarios() {
  local who=$1 ns=$2
  local common=(--namesrv "$ns" --size "$SIZE" --flush-label "$FLUSH" "${BENCH_FLAGS[@]}")
  "$BENCH" produce-consume "${common[@]}" --duration "$DURATION" --topic-prefix pc-closed \
    --json "$WORK/$who-pc-closed.json" --hgrm "$WORK/$who-pc-closed-hgrm"
  "$BENCH" produce-consume "${common[@]}" --duration "$DURATION" --rate "$RATE_LOW" \
    --topic-prefix pc-open-low --json "$WORK/$who-pc-open-low.json"
  "$BENCH" produce-consume "${common[@]}" --duration "$DURATION" --rate "$RATE_HIGH" \
    --topic-prefix pc-open-high --json "$WORK/$who-pc-open-high.json"
  "$BENCH" produce "${common[@]}" --send sync --duration "$DURATION" --topic-prefix send-sync \
    --json "$WORK/$who-send-sync.json"
  "$BENCH" produce "${common[@]}" --send batch --duration "$DURATION" --topic-prefix send-batch \
    --json "$WORK/$who-send-batch.json"
  "$BENCH" consume "${common[@]}" --from start --duration "$DURATION" --topic-prefix send-batch \
    --no-create --json "$WORK/$who-catchup.json"
}

echo "== generator ceiling (self-test, no broker): 1 responder (the peer) and 2 (ringmq, 2 shards)"
[[ -n ${SKIP_SELF_TEST:-} ]] || for brokers in 1 2; do
  for send in async sync batch; do
    "$BENCH" self-test --size "$SIZE" --send $send --brokers $brokers --duration 5s \
      --json "$WORK/self-test-$send-$brokers.json" | grep -E 'ceiling:'
  done
done

echo "== ringmq ($FLUSH)"
target/release/ringmq-namesrv listenPort=${RINGMQ_NS#*:} >"$WORK/ringmq-namesrv.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 "${RINGMQ_NS#*:}" 10
target/release/ringmq-broker -n "$RINGMQ_NS" listenPort=$RINGMQ_PORT brokerIP1=127.0.0.1 \
  storePathRootDir="$WORK/ringmq-store" flushDiskType="$FLUSH" metricsPort=0 \
  >"$WORK/ringmq-broker.log" 2>&1 &
RINGMQ_BROKER=$!
PIDS+=($RINGMQ_BROKER)
wait_port 127.0.0.1 $RINGMQ_PORT 20
sleep 1
scenarios ringmq "$RINGMQ_NS"
kill "$RINGMQ_BROKER"; wait "$RINGMQ_BROKER" 2>/dev/null || true

echo "== rocketmq-rust ($FLUSH)"
mkdir -p "$WORK/peer/conf"
cat >"$WORK/peer/conf/broker.toml" <<EOF
[broker]
namesrvAddr = "$PEER_NS"
brokerIp1 = "127.0.0.1"
listenPort = $PEER_PORT
storePathRootDir = "$WORK/peer/store"

[broker.brokerServerConfig]
bindAddress = "127.0.0.1"

[broker.brokerIdentity]
brokerName = "peer-a"
brokerClusterName = "DefaultCluster"
brokerId = 0

[store]
storeType = "LocalFile"
brokerRole = "ASYNC_MASTER"
flushDiskType = "$FLUSH"
storePathRootDir = "$WORK/peer/store"
haListenAddress = "127.0.0.1"
haListenPort = $((PEER_PORT + 1))
EOF
export ROCKETMQ_HOME="$WORK/peer"
export ROCKETMQ_SECURITY_PROFILE=development-insecure-loopback
"$PEER_ROOT/bin/rocketmq-namesrv-rust" --listenPort $PEER_NS_PORT --bindAddress 127.0.0.1 \
  --rocketmqHome "$WORK/peer" --kvConfigPath "$WORK/peer/kv.json" >"$WORK/peer-namesrv.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $PEER_NS_PORT 20
"$PEER_ROOT/bin/rocketmq-broker-rust" -c "$WORK/peer/conf/broker.toml" -n "$PEER_NS" \
  >"$WORK/peer-broker.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $PEER_PORT 60
sleep 2
scenarios peer "$PEER_NS"

echo "== comparison (A = ringmq, B = rocketmq-rust)"
for s in pc-closed pc-open-low pc-open-high send-sync send-batch catchup; do
  echo "-- $s"
  "$BENCH" compare "$WORK/ringmq-$s.json" "$WORK/peer-$s.json"
done
echo "reports and logs in $WORK"
