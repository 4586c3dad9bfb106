#!/usr/bin/env bash
# Unit tests of the web client's model (web/src/model/): type checks the client, compiles the
# model with the project's tsc into web/.test-build (web/tsconfig.test.json; ignored by git)
# and runs web/test/*.test.mjs with Node's test runner. No browser, no server. Arguments go to
# `node --test`, e.g. --test-name-pattern=outbox.
# Installs the npm packages pinned in web/package-lock.json first unless they are current.
set -euo pipefail
cd "$(dirname "$0")/../web"

../scripts/web-deps.sh

npx --no-install tsc --noEmit
rm -rf .test-build
npx --no-install tsc -p tsconfig.test.json
# web/package.json says "type": "module"; the test build is CommonJS (see tsconfig.test.json).
echo '{ "type": "commonjs" }' >.test-build/package.json
exec node --test "$@" test/*.test.mjs
