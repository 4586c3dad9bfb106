#!/usr/bin/env bash
# scripts/monitor.sh against a real imd: `up` starts Prometheus and Alertmanager scraping it;
# Prometheus reports the target up and has scraped imd_messages_stored_total; every query of
# ops/grafana-dashboard.json is valid PromQL to it; the alert rules are loaded; `down` stops
# both. Usage: monitor_test.sh IMD_BINARY
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:?usage: $0 IMD_BINARY}
work=$(mktemp -d /tmp/imd-monitor-test.XXXXXX)
imd_pid=""

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cleanup() {
  IMD_MONITOR_DIR=$work/monitor IMD_MONITOR_PORT=$mon_port "$root/scripts/monitor.sh" down \
    >/dev/null 2>&1 || true
  if [[ -n $imd_pid ]]; then kill -TERM "$imd_pid" 2>/dev/null || true; wait "$imd_pid" || true; fi
  rm -rf "$work"
}

fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/monitor/*.log "$work/imd.log"; do
    [[ -f $f ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

# Prometheus (PORT) and Alertmanager (PORT+3) below the ephemeral range, so that no outgoing
# connection takes them; both free now (the suite runs other servers on fixed ports).
imd_port=$(free_port)
# A free pair now; another process may still take one before the stack binds it (the suite
# starts servers in parallel): up to three pairs are tried.
pick_ports() {
  python3 -c '
import random, socket
for _ in range(200):
    p = random.randrange(21000, 29000)
    try:
        for q in (p, p + 3):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass
'
}
mon_port=$(pick_ports)
[[ -n $mon_port ]] || fail "no free port pair for Prometheus and Alertmanager"
trap cleanup EXIT

"$bin" --listen "127.0.0.1:$imd_port" --data-dir "$work/data" --auth-password-hash min \
  >"$work/imd.log" 2>&1 &
imd_pid=$!
deadline=$((SECONDS + 60))
until curl -fsS --max-time 2 "http://127.0.0.1:$imd_port/readyz" >/dev/null 2>&1; do
  ((SECONDS < deadline)) || fail "imd not ready in 60 s"
  kill -0 "$imd_pid" 2>/dev/null || fail "imd exited"
  sleep 0.2
done

export IMD_MONITOR_DIR=$work/monitor IMD_MONITOR_SCRAPE_S=1
for attempt in 1 2 3; do
  export IMD_MONITOR_PORT=$mon_port
  "$root/scripts/monitor.sh" up "127.0.0.1:$imd_port" && break
  ((attempt < 3)) || fail "monitor.sh up"
  echo "monitor.sh up failed on ports $mon_port/$((mon_port + 3)) (attempt $attempt); trying others"
  "$root/scripts/monitor.sh" down >/dev/null 2>&1 || true
  mon_port=$(pick_ports)
  [[ -n $mon_port ]] || fail "no free port pair for Prometheus and Alertmanager"
done
prom=http://127.0.0.1:$mon_port

query() {  # the JSON answer of an instant query
  curl -fsS --max-time 5 --get "$prom/api/v1/query" --data-urlencode "query=$1"
}

# Wait (bounded) until Prometheus has scraped the target successfully.
deadline=$((SECONDS + 60))
until query "up{job=\"imd\",instance=\"127.0.0.1:$imd_port\"} == 1" 2>/dev/null |
  python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["data"]["result"] else 1)'; do
  ((SECONDS < deadline)) || fail "Prometheus never reported the imd target up"
  sleep 0.5
done
echo "target up"

query 'imd_messages_stored_total{job="imd"}' |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if r else 1)' ||
  fail "imd_messages_stored_total not scraped"

# Every dashboard query parses and evaluates.
python3 - "$root/ops/grafana-dashboard.json" "$prom" <<'PY' || fail "a dashboard query failed"
import json, sys, urllib.parse, urllib.request
dash, prom = json.load(open(sys.argv[1])), sys.argv[2]
n = 0
for p in dash["panels"]:
    for t in p["targets"]:
        url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": t["expr"]})
        try:
            ans = json.load(urllib.request.urlopen(url, timeout=5))
        except Exception as e:
            sys.exit(f"{p['title']}: {t['expr']}: {e}")
        if ans.get("status") != "success":
            sys.exit(f"{p['title']}: {t['expr']}: {ans}")
        n += 1
print(f"{n} dashboard queries evaluate")
PY

# The alert rules are loaded, and ImdDown is not firing for a live target.
curl -fsS --max-time 5 "$prom/api/v1/rules" | python3 -c '
import json, sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
names = {r["name"] for r in rules}
for want in ("ImdDown", "ImdSendLatencyP99High", "ImdQueueBacklog", "ImdRedisUnreachable"):
    assert want in names, want
assert all(r["state"] == "inactive" for r in rules if r["name"] == "ImdDown"), "ImdDown fires"
print(len(rules), "alert rules loaded")' || fail "alert rules"

"$root/scripts/monitor.sh" status >/dev/null || fail "monitor.sh status"
pids=$(grep -E '_PID=' "$work/monitor/monitor.env" | cut -d= -f2)
"$root/scripts/monitor.sh" down || fail "monitor.sh down"
for p in $pids; do
  # Gone, or a zombie its (outside) parent has not reaped yet.
  state=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || echo gone)
  [[ $state == gone || $state == Z ]] || fail "pid $p still runs after down (state $state)"
done
if "$root/scripts/monitor.sh" status >/dev/null 2>&1; then fail "status says running after down"; fi
echo "PASS"
