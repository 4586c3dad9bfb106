#!/bin/bash
# Server-level A/B of the search index's cost (docs/benchmarks.md "Search"): imbench pairs at a
# fixed rate (msgs/s, the first argument) against a fresh imd with search on, then off, twice.
# Uses build/ (scripts/build.sh); port 18471.
# Usage: tools/search_bench/pairs_ab.sh 3000
root=$(cd "$(dirname "$0")/../.." && pwd)
flags=(--auth-password-hash min --limits-ws-rate-per-s 1000000 --limits-ws-burst 1000000
  --limits-http-rate-per-s 1000000 --limits-http-burst 1000000 --limits-auth-rate-per-min 10000000 --log-level warn)
for round in 1 2; do
  for mode in 1 0; do
    dir=$(mktemp -d /tmp/wts-ab.XXXXXX)
    "$root"/build/src/app/imd --listen 127.0.0.1:18471 --data-dir "$dir" "${flags[@]}" --search-enabled $mode > "$dir/log" 2>&1 &
    pid=$!
    sleep 1
    echo "=== round $round search.enabled=$mode"
    "$root"/build/tools/imbench/imbench pairs --port 18471 --server-pid $pid --conns 200 --rate "$1" --duration 15 2>&1 | tail -12
    kill $pid; wait $pid
    rm -rf "$dir"
  done
done
