#!/usr/bin/env bash
# Where an idle websocket client's bytes go: runs the release server under heaptrack, holds
# N idle clients in rooms of 4 with the load generator, and prints the heap they hold at the
# peak, per client, by owner (bench/idle-heap.py). By hand, on any machine: heap sizes do
# not depend on load. Needs heaptrack (Debian: apt-get install heaptrack).
#
#   bench/idle-heap.sh [CLIENTS]     default 19000
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-19000}
port=${BENCH_PORT:-3960}
work=$(mktemp -d /tmp/meshchat-heap.XXXXXX)
ulimit -n "$(ulimit -Hn)"
command -v heaptrack >/dev/null || { echo "needs heaptrack" >&2; exit 1; }
cargo build --release -p meshchat -p loadgen
env HOST=127.0.0.1 PORT=$port RUST_LOG=warn MAX_CONNECTIONS=$((clients + 1000)) CONNECT_RATE=0 \
  SIGNAL_RATE=0 JOIN_RATE=0 STUN_PORT=0 \
  heaptrack -o "$work/heap" target/release/meshchat >"$work/server.log" 2>&1 &
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
pid=$(pgrep -n -f "^target/release/meshchat") || { cat "$work/server.log"; exit 1; }
target/release/loadgen --addr "127.0.0.1:$port" idle --clients "$clients" --room 4 \
  --hold-secs 3 --server-pid "$pid" | tail -1
kill -INT "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
sleep 1 # heaptrack writes its file after the process ends
heaptrack_print -f "$work"/heap.*zst --print-peaks 1 --print-allocators 0 --print-temporary 0 \
  --print-leaks 0 --peak-limit 300 >"$work/peaks.txt"
python3 bench/idle-heap.py "$work/peaks.txt" "$clients"
echo "(heaptrack data in $work)"
