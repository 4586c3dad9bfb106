#!/usr/bin/env bash
# The browser scenarios of tests/e2e, unchanged, against the local cluster (scripts/cluster.sh:
# nginx in front of two gateways, two logic workers and one api on MariaDB, Redis Cluster,
# JetStream and etcd): the web client must not notice that it talks to a cluster. "The server
# is killed" becomes: both gateways are killed with SIGKILL, and started again.
# Brings its own cluster up (IMD_E2E_CLUSTER_DIR, IMD_E2E_CLUSTER_PORT) and always down again.
set -euo pipefail
cd "$(dirname "$0")/.."

export IMD_CLUSTER_DIR=${IMD_E2E_CLUSTER_DIR:-/tmp/imd-e2e-cluster}
export IMD_CLUSTER_PORT=${IMD_E2E_CLUSTER_PORT:-25680}
export IMD_BIN=${IMD_BIN:-build/src/app/imd}
# The scenarios' server flags (tests/e2e/chat.test.mjs SERVER_ARGS), and no per-IP limits:
# every browser comes through nginx from 127.0.0.1.
# Server admins by phone: every scenario file registers into the one database, so "the first
# account" is only the first file's (tests/e2e/harness.mjs adminIdentity).
export IMD_E2E_ADMIN_PHONES=+15550000101,+15550000102
export IMD_CLUSTER_ARGS="--ws-heartbeat-s 2 --auth-access-ttl-s 40 --limits-http-rate-per-s 100000 \
--limits-http-burst 100000 --limits-auth-rate-per-min 1000000 --auth-admins $IMD_E2E_ADMIN_PHONES"

./scripts/web-build.sh
trap './scripts/cluster.sh down >/dev/null || true' EXIT
./scripts/cluster.sh up
export IMD_E2E_URL=http://127.0.0.1:$IMD_CLUSTER_PORT
export IMD_E2E_KILL_CMD="scripts/cluster.sh kill gateway1 && scripts/cluster.sh kill gateway2"
export IMD_E2E_START_CMD="scripts/cluster.sh start gateway1 && scripts/cluster.sh start gateway2"
E2E_SKIP_WEB_BUILD=1 ./scripts/e2e.sh "$@"
