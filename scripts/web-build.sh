#!/usr/bin/env bash
# Builds the web client into web/dist (index.html + hashed files under assets/), which imd
# serves with --web-root web/dist (or finds by itself from the repository root).
# Installs the npm packages pinned in web/package-lock.json first unless they are current.
set -euo pipefail
cd "$(dirname "$0")/../web"

../scripts/web-deps.sh

npx --no-install tsc --noEmit
npx --no-install vite build --logLevel warn
echo "web-build: $(pwd)/dist"
