#!/usr/bin/env bash
# Measures the web client in Chromium: `./scripts/e2e-perf.sh` (tests/e2e/perf.bench.mjs) a
# busy channel: a reader holding PERF_PRELOAD messages (10,000) while PERF_RATE msgs/s (20)
# arrive for PERF_SECONDS (30); prints send-to-display latency percentiles, long tasks, rendered
# rows and JS heap as JSON. `./scripts/e2e-perf.sh firstpaint` (tests/e2e/firstpaint.bench.mjs):
# a returning user's reloads (PERF_LOADS, 20), median/p95/max of the first contentful paint and
# of the conversation list on screen.
# Uses build/src/app/imd (scripts/build.sh) like scripts/e2e.sh; builds web/dist first.
set -euo pipefail
cd "$(dirname "$0")/.."

IMD_BIN=${IMD_BIN:-build/src/app/imd}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[[ -x "$IMD_BIN" ]] || { echo "e2e-perf: $IMD_BIN is missing: run scripts/build.sh first" >&2; exit 1; }
[[ -x "$CHROMIUM" ]] || { echo "e2e-perf: $CHROMIUM is missing (Debian: apt-get install chromium)" >&2; exit 1; }
[[ -n ${E2E_SKIP_WEB_BUILD:-} ]] || ./scripts/web-build.sh
export IMD_BIN CHROMIUM
BENCH=${1:-perf}
[[ $BENCH == perf || $BENCH == firstpaint ]] || { echo "e2e-perf: no bench '$BENCH' (perf, firstpaint)" >&2; exit 2; }
exec timeout --kill-after=20 "${E2E_TIMEOUT_S:-900}" node "tests/e2e/$BENCH.bench.mjs"
