#!/usr/bin/env bash
# Installs what is missing, builds the server and the web client, and starts the standalone
# server on http://127.0.0.1:8080 (the chat is at /) with its data in ./data.
# Arguments are passed to imd (see `imd --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh imd
./scripts/web-build.sh
exec ./build/src/app/imd --web-root web/dist "$@"
