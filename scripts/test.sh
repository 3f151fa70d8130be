#!/usr/bin/env bash
# Runs every test of meshchat. On a fresh Debian machine it first installs what the tests
# need: Chromium for the browser tests, coturn for the TURN tests, redis-server for the
# cluster tests, Node.js if missing, the npm packages from the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v turnserver >/dev/null || missing+=(coturn)
command -v node >/dev/null || missing+=(nodejs npm)
# The cluster tests start their own redis-server (and use redis-cli) on a free loopback port.
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

echo "== npm ci (tests/js)"
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (with bench/loadgen/tests/smoke.rs: the load generator against the real server)"
cargo test --workspace
echo "== release build (the same command the Dockerfile runs)"
scripts/build-release.sh
echo "== cargo build (the binary the Node and browser tests start)"
cargo build

echo "== Node socket.io-client tests (one node and a Redis cluster) and headless Chromium tests"
(cd tests/js && npm test)
echo "== the cross-node tests again, against a Redis Cluster of six (REDIS_CLUSTER=true)"
(cd tests/js && MESHCHAT_TEST_REDIS_CLUSTER=1 npm test -- cluster/protocol.test.mjs cluster/mesh.test.mjs \
  cluster/resume.test.mjs cluster/rolling.test.mjs cluster/rolling-page.test.mjs)
