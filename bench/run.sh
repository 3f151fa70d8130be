#!/usr/bin/env bash
# Benchmarks meshchat against the Node.js socket.io baseline (bench/node/server.mjs) with the
# load generator (bench/loadgen/), every scenario against both servers in one run, and writes
# BENCHMARKS.md. Each server runs pinned to CPU 0, the load generator to CPU 1, and every
# scenario gets a freshly started server.
#
#   bench/run.sh            full run (~30 minutes on 2 cores)
#   bench/run.sh --quick    a few minutes, smaller loads (figures not comparable)
#   BENCH_PARTS="relay cpu" BENCH_KEEP=/tmp/meshchat-bench.X/results.jsonl bench/run.sh
#
# BENCH_OUT (default BENCHMARKS.md) is the report; BENCH_NOTE adds a line to it.
# BENCH_PARTS (default "idle relay cpu churn") runs only the parts named; BENCH_KEEP names
# an earlier run's results.jsonl whose rows of the other parts go into the report too (for
# measuring the rates again on a quieter machine without the memory part, say).
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
parts=" ${BENCH_PARTS:-idle relay cpu churn} "
has() { [[ $parts == *" $1 "* ]]; }
if [ -n "${BENCH_KEEP:-}" ]; then
  # An earlier run's rows of the parts not run now: idle rows, relay searches (no fixed
  # rate), fixed-rate rows, churn rows.
  node -e '
    const [file, parts] = process.argv.slice(1);
    const part = (r) => r.scenario === "relay" ? (r.fixed_rate ? "cpu" : "relay") : r.scenario;
    for (const line of require("fs").readFileSync(file, "utf8").split("\n").filter(Boolean)) {
      if (!parts.includes(" " + part(JSON.parse(line)) + " ")) console.log(line);
    }' "$BENCH_KEEP" "$parts" >>"$results"
fi
: >"$commands"

if [ "$mode" = full ]; then
  idle_clients=19000 idle_hold=30
  relay_args=(--clients 128 --start-rate 4000 --factor 1.5 --refine 2 --step-secs 5)
  cpu_args=(--clients 128 --step-secs 10) cpu_runs=2
  churn_args=(--lanes 64 --secs 15)
else
  idle_clients=2000 idle_hold=3
  relay_args=(--clients 64 --start-rate 4000 --factor 2 --refine 1 --step-secs 2)
  cpu_args=(--clients 64 --step-secs 3) cpu_runs=1
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
command -v redis-server >/dev/null || { echo "the cluster rows need redis-server" >&2; exit 1; }
(cd bench/node && npm ci --no-audit --no-fund --loglevel=error)

# What meshchat runs with: every limit that would throttle a load test from one machine
# (connection rate per IP, signaling and join rates, connection cap) lifted; logs at warn,
# since the baseline logs nothing either; no STUN server, which the baseline lacks too.
ours_env=(HOST=127.0.0.1 PORT=$port RUST_LOG=warn MAX_CONNECTIONS=20000
  CONNECT_RATE=0 SIGNAL_RATE=0 JOIN_RATE=0 STUN_PORT=0)
node_env=(HOST=127.0.0.1 PORT=$port)
redis_port=$((port + 10))
cluster_env=(REDIS_URL=redis://127.0.0.1:$redis_port)

# The processes of the server under test: one, or a cluster's nodes and its Redis.
server_pids=()
addrs=()

. bench/lib.sh

start_server() { # ours|node|raw|cluster
  local log=$work/$1.log
  server_pids=() addrs=("127.0.0.1:$port")
  case $1 in
    ours) env "${ours_env[@]}" taskset -c $server_cpu target/release/meshchat >>"$log" 2>&1 & ;;
    node) env "${node_env[@]}" taskset -c $server_cpu node bench/node/server.mjs >>"$log" 2>&1 & ;;
    raw) taskset -c $server_cpu target/release/raw-relay "127.0.0.1:$port" >>"$log" 2>&1 & ;;
    cluster)
      taskset -c $server_cpu redis-server --port $redis_port --bind 127.0.0.1 --save '' \
        --appendonly no >>"$work/redis.log" 2>&1 &
      server_pids+=($!)
      wait_port redis $! $redis_port
      env "${ours_env[@]}" "${cluster_env[@]}" PORT=$((port + 1)) \
        taskset -c $server_cpu target/release/meshchat >>"$log" 2>&1 &
      server_pids+=($!)
      wait_port "$1" $! $((port + 1))
      addrs+=("127.0.0.1:$((port + 1))")
      env "${ours_env[@]}" "${cluster_env[@]}" taskset -c $server_cpu target/release/meshchat >>"$log" 2>&1 &
      ;;
  esac
  server_pids+=($!)
  wait_port "$1" $! $port
  if [ "$1" = cluster ]; then
    for a in "${addrs[@]}"; do
      for _ in $(seq 100); do curl -sf "http://$a/readyz" >/dev/null && break; sleep 0.1; done
    done
  fi
  sleep 0.5 # let it settle before its baseline memory is read
}

stop_server() {
  [ ${#server_pids[@]} -gt 0 ] || return 0
  kill "${server_pids[@]}" 2>/dev/null || true
  wait "${server_pids[@]}" 2>/dev/null || true
  server_pids=()
}
trap stop_server EXIT

run() { # ours|node|raw|cluster scenario args...
  local server=$1
  shift
  start_server "$server"
  local args=()
  for a in "${addrs[@]}"; do args+=(--addr "$a"); done
  args+=("$@")
  case " $* " in
    *" idle "*) args+=(--server-pid "${server_pids[0]}") ;;
    *" --fixed-rate "*) for p in "${server_pids[@]}"; do args+=(--server-pid "$p"); done ;;
  esac
  echo "== $server: loadgen ${args[*]}"
  local line
  line=$(taskset -c $loadgen_cpu target/release/loadgen "${args[@]}")
  echo "{\"server\":\"$server\",${line#\{}" >>"$results"
  stop_server
  echo "$server: taskset -c $loadgen_cpu target/release/loadgen ${args[*]}" |
    sed 's/--server-pid [0-9]*/--server-pid $SERVER_PID/g' >>"$commands"
}

has idle && for transport in websocket polling; do
  for server in ours node; do
    run $server idle --clients $idle_clients --room 4 --hold-secs $idle_hold --transport $transport
  done
done
has relay && for room in 2 4 8; do
  for server in ours node raw; do
    run $server relay --room $room "${relay_args[@]}"
  done
done
has relay && run cluster relay --room 4 "${relay_args[@]}"
# CPU per delivered message at three fixed loads, runs of the servers interleaved. Node
# cannot carry 48,000/s on one core, and the cluster row is for the cost of crossing nodes.
has cpu && for _ in $(seq $cpu_runs); do
  for rate in 8000 24000 48000; do
    servers=(ours raw)
    [ $rate -le 24000 ] && servers+=(node)
    [ $rate -eq 8000 ] && servers+=(cluster)
    for server in "${servers[@]}"; do
      run $server relay --room 4 --fixed-rate $rate "${cpu_args[@]}"
    done
  done
done
has churn && for server in ours node; do
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
  echo "cluster_env=${cluster_env[*]}"
  echo "redis=$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
  echo "node_env=${node_env[*]}"
  echo "server_taskset=taskset -c $server_cpu"
  echo "note=${BENCH_NOTE:-}"
} >"$work/meta.txt"

node bench/report.mjs "$results" "$work/meta.txt" "$commands" >"$out"
echo "== wrote $out (raw results in $results)"
