#!/usr/bin/env bash
# Copies the SHA-256 of the @noble/hashes npm package pinned in tests/js (installed there by
# `npm ci`) into public/vendor/noble-hashes/, with its licence: the page hashes files
# incrementally, which WebCrypto cannot. tests/js/browser/files.test.mjs fails while the
# copy and the package differ.
set -euo pipefail
cd "$(dirname "$0")/.."
dist=tests/js/node_modules/@noble/hashes
[ -d "$dist" ] || (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
mkdir -p public/vendor/noble-hashes
for f in sha2.js _md.js _u64.js utils.js LICENSE; do
  cp "$dist/$f" public/vendor/noble-hashes/
done
version=$(node -p "require('./$dist/package.json').version")
echo "@noble/hashes $version" > public/vendor/noble-hashes/VERSION
echo "vendored @noble/hashes $version into public/vendor/noble-hashes/"
