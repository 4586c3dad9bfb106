#!/usr/bin/env bash
# Installs what is missing, builds, and starts the standalone server on 127.0.0.1:8080 with
# its data in ./data. Arguments are passed to imd (see `imd --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh imd
exec ./build/src/app/imd "$@"
