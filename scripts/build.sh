#!/usr/bin/env bash
# Configures (once) and builds imd into ./build with Ninja, ccache when present, -j2
# (compiling Beast takes ~1 GB per job). Extra arguments go to ninja (e.g. a target name).
set -euo pipefail
cd "$(dirname "$0")/.."
build_type=${IMD_BUILD_TYPE:-RelWithDebInfo}
if [[ ! -f build/build.ninja ]] || ! grep -q "CMAKE_BUILD_TYPE:STRING=$build_type" build/CMakeCache.txt; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$build_type"
fi
ninja -C build -j "${IMD_JOBS:-2}" "$@"
