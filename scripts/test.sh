#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs every test: the web client's unit
# tests (scripts/web-test.sh, node's test runner), unit and integration tests through CTest
# (the integration tests start the real imd binary on free ports), then the browser
# end-to-end tests (the web client in headless Chromium against the real imd; with the short
# busy-channel check, tests/e2e/busy.test.mjs: its timings printed, correctness asserted),
# once against a standalone imd and once against the local cluster (scripts/cluster.sh),
# a short chaos drill (scripts/chaos.sh) and, when an older build was made, the mixed-version
# drill (scripts/upgrade-drill.sh).
# The CTest run includes the cluster engines: MariaDB, Redis (single and cluster), NATS
# JetStream, etcd and the local cluster behind nginx, started and stopped as fixtures, and the
# checks of the house: clang-format, include edges against the build's links, and the names
# the architecture documents cite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
./scripts/web-test.sh
(cd build && ctest --output-on-failure -j 2 --timeout 600 "$@")
# The short chaos drill: kill -9, SIGSTOP and SIGTERM of a standalone imd under steady traffic,
# then the history check (well under 2 minutes; the cluster drill: scripts/chaos.sh cluster).
./scripts/chaos.sh standalone --short
# The mixed-version drill (an older build and this one in the local cluster, about 45 s) when
# that older build exists; building it is the long part, left to `scripts/upgrade-drill.sh
# --build-only` (docs/operations.md "Mixed-version drill").
./scripts/upgrade-drill.sh --short --no-build
./scripts/e2e.sh
./scripts/e2e-cluster.sh
