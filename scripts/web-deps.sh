#!/usr/bin/env bash
# Installs the npm packages pinned in web/package-lock.json unless they are current: npm
# records what it installed in node_modules/.package-lock.json; reinstall when the lock file
# is newer or when that record is missing. Used by web-build.sh and web-test.sh.
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v npm >/dev/null 2>&1; then
  echo "web: npm is missing (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
