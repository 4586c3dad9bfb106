#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs every test: unit and integration
# tests through CTest (the integration tests start the real imd binary on free ports), then
# the browser end-to-end tests (the web client in headless Chromium against the real imd).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
(cd build && ctest --output-on-failure -j 2 --timeout 600 "$@")
./scripts/e2e.sh
