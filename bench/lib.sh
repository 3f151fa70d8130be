# Shell helpers the benchmark scripts source. Each script sets `work`, the folder that
# holds the logs of what it started.

# Waits until something listens on loopback port $3, started as process $2 and logging
# to $work/$1.log; stops the script with the end of that log if the process dies first.
wait_port() { # name pid port
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null && return
    kill -0 "$2" 2>/dev/null || { tail -n 40 "$work/$1.log" >&2; echo "$1 died" >&2; exit 1; }
    sleep 0.1
  done
  echo "$1 did not start" >&2
  exit 1
}
