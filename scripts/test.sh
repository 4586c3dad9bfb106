#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs every test: unit and integration
# tests through CTest (the integration tests start the real imd binary on free ports), then
# the browser end-to-end tests (the web client in headless Chromium against the real imd),
# once against a standalone imd and once against the local cluster (scripts/cluster.sh).
# The CTest run includes the cluster engines: MariaDB, Redis (single and cluster), NATS
# JetStream, etcd and the local cluster behind nginx, started and stopped as fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
(cd build && ctest --output-on-failure -j 2 --timeout 600 "$@")
./scripts/e2e.sh
./scripts/e2e-cluster.sh
