#!/usr/bin/env bash
# Reconnect storm, by hand (not in CI): a redis-server and three meshchat nodes (release
# build, limits lifted as in bench/run.sh), clients in rooms of 4 spread over the nodes
# (member k of room r on node (r + k) mod 3, as a round-robin balancer would place them),
# then one node SIGKILLed: every client it held reconnects to a surviving node after
# socket.io-client's randomized backoff and joins its room again (`reference`: a fresh
# connection and `join-room`, as the reference page) or resumes (`resume`: the token of its
# ack in the Socket.IO `auth`). The load generator (bench/loadgen/src/storm.rs) measures
# the time until every room is whole, checks every leave and join heard, and reads the
# survivors' and Redis's CPU and Redis's commands meanwhile. A fresh cluster per kind.
#
#   bench/storm.sh                          10,000 clients, both kinds (~3 minutes after the build)
#   bench/storm.sh --clients 400 --kind resume
#
# Prints one JSON line per kind and a markdown table (bench/storm-table.mjs); raw results
# stay in the work directory it names. Nodes and Redis share CPU 0 (STORM_SERVER_CPUS), the
# load generator has CPU 1 (STORM_LOADGEN_CPUS). Extra node settings: STORM_NODE_ENV, e.g.
# STORM_NODE_ENV="NODE_TTL_MS=3000 NODE_HEARTBEAT_MS=1000".
set -euo pipefail
cd "$(dirname "$0")/.."

clients=10000
kinds="reference resume"
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --clients) clients=$2; shift 2 ;;
    --kind) kinds=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: bench/storm.sh [--clients N] [--kind reference|resume] [-- loadgen storm options]" >&2; exit 2 ;;
  esac
done
port=${STORM_PORT:-3970}
server_cpus=${STORM_SERVER_CPUS:-0}
loadgen_cpus=${STORM_LOADGEN_CPUS:-1}
target=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d /tmp/meshchat-storm.XXXXXX)
results=$work/results.jsonl
: >"$results"

# One connection is one file descriptor on both sides.
ulimit -n "$(ulimit -Hn)"

command -v redis-server >/dev/null || { echo "needs redis-server" >&2; exit 1; }
[ -n "${STORM_NO_BUILD:-}" ] || cargo build --release -p meshchat -p loadgen

# As bench/run.sh's ours_env: the limits that would throttle a load from one machine lifted.
ours_env=(HOST=127.0.0.1 RUST_LOG=warn MAX_CONNECTIONS=20000
  CONNECT_RATE=0 SIGNAL_RATE=0 JOIN_RATE=0 STUN_PORT=0)
redis_port=$((port + 10))
node_env=(REDIS_URL=redis://127.0.0.1:$redis_port ${STORM_NODE_ENV:-})

pids=()
stop() {
  [ ${#pids[@]} -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
trap stop EXIT

. bench/lib.sh

for kind in $kinds; do
  echo "== $kind: redis-server and three nodes"
  taskset -c "$server_cpus" redis-server --port $redis_port --bind 127.0.0.1 --save '' \
    --appendonly no >"$work/redis-$kind.log" 2>&1 &
  redis_pid=$!
  pids+=($redis_pid)
  wait_port "redis-$kind" $redis_pid $redis_port
  node_pids=() addrs=()
  for i in 1 2 3; do
    env "${ours_env[@]}" "${node_env[@]}" PORT=$((port + i)) \
      taskset -c "$server_cpus" "$target/release/meshchat" >"$work/node$i-$kind.log" 2>&1 &
    node_pids+=($!)
    pids+=($!)
    addrs+=(--addr "127.0.0.1:$((port + i))")
  done
  for i in 0 1 2; do
    wait_port "node$((i + 1))-$kind" "${node_pids[$i]}" $((port + 1 + i))
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((port + 1 + i))/readyz" >/dev/null && break; sleep 0.1; done
  done
  # The resume key is read on a node's first beat: wait for one.
  sleep 2.5
  args=("${addrs[@]}" storm --clients "$clients" --kind "$kind" --kill-node 0
    --kill-pid "${node_pids[0]}" --survivor-pid "${node_pids[1]}" --survivor-pid "${node_pids[2]}"
    --redis "127.0.0.1:$redis_port" --redis-pid "$redis_pid" "${extra[@]}")
  echo "== taskset -c $loadgen_cpus $target/release/loadgen ${args[*]}"
  taskset -c "$loadgen_cpus" "$target/release/loadgen" "${args[@]}" | tee -a "$results"
  stop
done

{
  echo "date=$(date -u +'%Y-%m-%d %H:%M UTC')"
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
  echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench || echo '+changes')"
  echo "redis=$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
  echo "node_env=${ours_env[*]} ${node_env[*]}"
} >"$work/meta.txt"
node bench/storm-table.mjs "$results" "$work/meta.txt"
echo "== raw results in $results, logs in $work"
