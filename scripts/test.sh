#!/usr/bin/env bash
# Runs every test of meshchat. On a fresh Debian machine it first installs what the tests
# need: Chromium for the browser tests, coturn for the TURN tests, Node.js if missing, the npm
# packages from the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v turnserver >/dev/null || missing+=(coturn)
command -v node >/dev/null || missing+=(nodejs npm)
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
echo "== cargo test"
cargo test --workspace
echo "== release build (the same command the Dockerfile runs)"
scripts/build-release.sh
echo "== cargo build (the binary the Node and browser tests start)"
cargo build

echo "== Node socket.io-client and headless Chromium tests"
(cd tests/js && npm test)
