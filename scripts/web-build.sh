#!/usr/bin/env bash
# Builds the web client into web/dist (index.html + hashed files under assets/), which imd
# serves with --web-root web/dist (or finds by itself from the repository root).
# Installs the npm packages pinned in web/package-lock.json first unless they are current.
set -euo pipefail
cd "$(dirname "$0")/../web"

if ! command -v npm >/dev/null 2>&1; then
  echo "web-build: npm is missing (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

# npm records what it installed in node_modules/.package-lock.json; reinstall when the lock
# file is newer or when that record is missing.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

npx --no-install tsc --noEmit
npx --no-install vite build --logLevel warn
echo "web-build: $(pwd)/dist"
