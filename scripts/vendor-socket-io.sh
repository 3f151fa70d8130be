#!/usr/bin/env bash
# Copies the Socket.IO browser client from the npm package pinned in tests/js (installed
# there by `npm ci`) into public/vendor/, with its licence. Run after changing the pinned
# version; tests/js/browser/socket-io-client.test.mjs fails while the two differ.
set -euo pipefail
cd "$(dirname "$0")/.."
dist=tests/js/node_modules/socket.io-client
[ -d "$dist" ] || (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
for f in socket.io.js socket.io.min.js socket.io.esm.min.js; do
  cp "$dist/dist/$f" public/vendor/
done
cp "$dist/LICENSE" public/vendor/socket.io-client.LICENSE
version=$(node -p "require('./$dist/package.json').version")
echo "socket.io-client $version" > public/vendor/socket.io-client.VERSION
echo "vendored socket.io-client $version into public/vendor/"
