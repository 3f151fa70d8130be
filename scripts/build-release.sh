#!/bin/sh
# The release build of the server binary, target/release/meshchat, with public/ embedded.
# Defined once here: CI runs it (scripts/test.sh) and so does the Dockerfile's build stage.
set -eu
cd "$(dirname "$0")/.."
exec cargo build --release --locked -p meshchat
