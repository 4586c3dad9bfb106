#!/usr/bin/env bash
# Builds the web client and runs the end-to-end tests: the real imd (build/src/app/imd, built
# beforehand by scripts/build.sh) driven through Debian's headless Chromium (/usr/bin/chromium)
# with playwright-core. Exit code = test result; the whole run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

IMD_BIN=${IMD_BIN:-build/src/app/imd}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
TIMEOUT_S=${E2E_TIMEOUT_S:-900}

[[ -x "$IMD_BIN" ]] || { echo "e2e: $IMD_BIN is missing: run scripts/build.sh first" >&2; exit 1; }
[[ -x "$CHROMIUM" ]] || { echo "e2e: $CHROMIUM is missing (Debian: apt-get install chromium)" >&2; exit 1; }

[[ -n ${E2E_SKIP_WEB_BUILD:-} ]] || ./scripts/web-build.sh
export IMD_BIN CHROMIUM
flags=()
# Node >= 20.14: a leaked handle cannot keep the run alive past its last test.
if node --help 2>/dev/null | grep -q -- --test-force-exit; then flags+=(--test-force-exit); fi
# The scenarios share one server and one browser: they run in order in one file.
exec timeout --kill-after=20 "$TIMEOUT_S" node --test "${flags[@]}" tests/e2e/*.test.mjs "$@"
