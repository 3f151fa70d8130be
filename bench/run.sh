#!/usr/bin/env bash
# Benchmarks meshchat against the Node.js socket.io baseline (bench/node/server.mjs) with the
# load generator (bench/loadgen/), every scenario against both servers in one run, and writes
# BENCHMARKS.md. Each server runs pinned to CPU 0, the load generator to CPU 1, and every
# scenario gets a freshly started server.
#
#   bench/run.sh            full run (~15 minutes on 2 cores)
#   bench/run.sh --quick    a few minutes, smaller loads (figures not comparable)
#
# BENCH_OUT (default BENCHMARKS.md) is the report; BENCH_NOTE adds a line to it.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
[ "${1:-}" = "--quick" ] && mode=quick
out=${BENCH_OUT:-BENCHMARKS.md}
port=${BENCH_PORT:-3950}
work=$(mktemp -d /tmp/meshchat-bench.XXXXXX)
results=$work/results.jsonl
commands=$work/commands.txt
: >"$results"
: >"$commands"

if [ "$mode" = full ]; then
  idle_clients=19000 idle_hold=30
  relay_args=(--clients 128 --start-rate 4000 --factor 1.5 --refine 2 --step-secs 5)
  churn_args=(--lanes 64 --secs 15)
else
  idle_clients=2000 idle_hold=3
  relay_args=(--clients 64 --start-rate 4000 --factor 2 --refine 1 --step-secs 2)
  churn_args=(--lanes 32 --secs 4)
fi

server_cpu=0 loadgen_cpu=1
if [ "$(nproc)" -lt 2 ]; then
  echo "warning: fewer than 2 CPUs; server and load generator share CPU 0" >&2
  loadgen_cpu=0
fi

# One connection is one file descriptor, on both sides; 19,000 clients need them all.
ulimit -n "$(ulimit -Hn)"

echo "== build"
cargo build --release -p meshchat -p loadgen
(cd bench/node && npm ci --no-audit --no-fund --loglevel=error)

# What meshchat runs with: every limit that would throttle a load test from one machine
# (connection rate per IP, signaling and join rates, connection cap) lifted; logs at warn,
# since the baseline logs nothing either; no STUN server, which the baseline lacks too.
ours_env=(HOST=127.0.0.1 PORT=$port RUST_LOG=warn MAX_CONNECTIONS=20000
  CONNECT_RATE=0 SIGNAL_RATE=0 JOIN_RATE=0 STUN_PORT=0)
node_env=(HOST=127.0.0.1 PORT=$port)

server_pid=
start_server() { # ours|node
  local log=$work/$1.log
  if [ "$1" = ours ]; then
    env "${ours_env[@]}" taskset -c $server_cpu target/release/meshchat >>"$log" 2>&1 &
  else
    env "${node_env[@]}" taskset -c $server_cpu node bench/node/server.mjs >>"$log" 2>&1 &
  fi
  server_pid=$!
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      sleep 0.5 # let it settle before its baseline memory is read
      return
    fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; echo "server $1 died" >&2; exit 1; }
    sleep 0.1
  done
  echo "server $1 did not start" >&2
  exit 1
}

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
trap stop_server EXIT

run() { # ours|node scenario args...
  local server=$1
  shift
  start_server "$server"
  local args=(--addr "127.0.0.1:$port" "$@")
  [ "$1" = idle ] && args+=(--server-pid "$server_pid")
  echo "== $server: loadgen ${args[*]}"
  local line
  line=$(taskset -c $loadgen_cpu target/release/loadgen "${args[@]}")
  echo "{\"server\":\"$server\",${line#\{}" >>"$results"
  stop_server
  echo "$server: taskset -c $loadgen_cpu target/release/loadgen ${args[*]}" |
    sed 's/--server-pid [0-9]*/--server-pid $SERVER_PID/' >>"$commands"
}

for server in ours node; do
  run $server idle --clients $idle_clients --room 4 --hold-secs $idle_hold
done
for room in 2 4 8; do
  for server in ours node; do
    run $server relay --room $room "${relay_args[@]}"
  done
done
for server in ours node; do
  run $server churn "${churn_args[@]}"
done

# The machine and the versions, for the report.
{
  echo "mode=$mode"
  echo "date=$(date -u +'%Y-%m-%d %H:%M UTC')"
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "cores=$(nproc)"
  echo "kernel=$(uname -sr)"
  echo "rustc=$(rustc --version)"
  echo "node=$(node --version)"
  echo "socketio=$(node -p "require('./bench/node/node_modules/socket.io/package.json').version")"
  echo "socketioxide=$(awk '/^name = "socketioxide"$/ {getline; print $3}' Cargo.lock | tr -d '"')"
  echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench || echo '+changes')"
  echo "ours_env=${ours_env[*]}"
  echo "node_env=${node_env[*]}"
  echo "server_taskset=taskset -c $server_cpu"
  echo "note=${BENCH_NOTE:-}"
} >"$work/meta.txt"

node bench/report.mjs "$results" "$work/meta.txt" "$commands" >"$out"
echo "== wrote $out (raw results in $results)"
