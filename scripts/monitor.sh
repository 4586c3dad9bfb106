#!/usr/bin/env bash
# A monitoring stack for imd on loopback: Debian's prometheus and prometheus-alertmanager,
# with ops/alerts.yml loaded, data in a state directory.
#
#   scripts/monitor.sh up [HOST:PORT ...]   start, scraping these imd processes
#   scripts/monitor.sh up --cluster         start, scraping every process of scripts/cluster.sh
#   scripts/monitor.sh down | status
#
# With no target, `up` scrapes the local cluster when ${IMD_CLUSTER_DIR}/cluster.env exists,
# else a standalone imd on 127.0.0.1:8080 (its default `listen`). Every target is one target
# of the scrape job `imd` (labels `node` and `role` for the cluster's processes). `up` returns
# once both answer their readiness endpoints; it does not wait for the first scrape.
#
# Environment:
#   IMD_MONITOR_DIR     state: configs, TSDB, logs, pids (default /tmp/imd-monitor)
#   IMD_MONITOR_PORT    Prometheus on 127.0.0.1:PORT, Alertmanager on PORT+3 (default 29090)
#   IMD_MONITOR_SCRAPE_S  scrape and rule evaluation interval (default 5)
#   IMD_CLUSTER_DIR     where scripts/cluster.sh keeps cluster.env (default /tmp/imd-cluster)
# State: ${IMD_MONITOR_DIR}/monitor.env: PROMETHEUS_URL, ALERTMANAGER_URL, PROMETHEUS_PID,
# ALERTMANAGER_PID. Prometheus's own pages: PROMETHEUS_URL/targets, /alerts, /graph
# (docs/operations.md lists queries to paste).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/procs.sh
source "$root/scripts/lib/procs.sh"
dir=${IMD_MONITOR_DIR:-/tmp/imd-monitor}
port=${IMD_MONITOR_PORT:-29090}
am_port=$((port + 3))
scrape_s=${IMD_MONITOR_SCRAPE_S:-5}
cluster_dir=${IMD_CLUSTER_DIR:-/tmp/imd-cluster}
state=$dir/monitor.env
start_timeout=60

die() {
  echo "monitor: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 up [--cluster | HOST:PORT ...] | down | status" >&2
  exit 2
}

[[ $port =~ ^[0-9]+$ ]] && ((port > 1024 && port + 4 < 65536)) || die "IMD_MONITOR_PORT: '$port'"
[[ $scrape_s =~ ^[0-9]+$ ]] && ((scrape_s > 0)) || die "IMD_MONITOR_SCRAPE_S: '$scrape_s'"

# One YAML static_configs entry: target $1, labels "k=v ..." in $2.
target_yaml() {
  echo "      - targets: ['$1']"
  if [[ -n ${2:-} ]]; then
    echo "        labels:"
    local kv
    for kv in $2; do echo "          ${kv%%=*}: '${kv#*=}'"; done
  fi
}

# The targets, one "host:port labels" per line.
cluster_targets() {
  [[ -f $cluster_dir/cluster.env ]] || die "no $cluster_dir/cluster.env: is scripts/cluster.sh up?"
  local n url role
  for n in api gateway1 gateway2 logic1 logic2; do
    url=$(grep -E "^$(echo "$n" | tr '[:lower:]' '[:upper:]')_URL=" "$cluster_dir/cluster.env" |
      cut -d= -f2-) || die "cluster.env has no URL for $n"
    role=${n%%[0-9]*}
    echo "${url#http://} node=$n role=$role"
  done
}

write_configs() {
  local targets=$1
  mkdir -p "$dir/prometheus-data" "$dir/alertmanager-data"
  cp "$root/ops/alerts.yml" "$dir/alerts.yml"
  {
    echo "global:"
    echo "  scrape_interval: ${scrape_s}s"
    echo "  evaluation_interval: ${scrape_s}s"
    echo "  scrape_timeout: ${scrape_s}s"
    echo "rule_files: ['$dir/alerts.yml']"
    echo "alerting:"
    echo "  alertmanagers:"
    echo "    - static_configs:"
    echo "        - targets: ['127.0.0.1:$am_port']"
    echo "scrape_configs:"
    echo "  - job_name: imd"
    echo "    metrics_path: /metrics"
    echo "    static_configs:"
    local t labels
    while read -r t labels; do
      [[ -n $t ]] && target_yaml "$t" "$labels"
    done <<<"$targets"
    echo "  - job_name: prometheus"
    echo "    static_configs:"
    echo "      - targets: ['127.0.0.1:$port']"
  } >"$dir/prometheus.yml"
  # Alerts are kept and shown by Alertmanager (its UI and API); add a receiver (e-mail,
  # webhook) here to be told.
  cat >"$dir/alertmanager.yml" <<YAML
route:
  receiver: imd-operators
  group_by: [alertname, instance]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: imd-operators
YAML
}

pid_of() {
  [[ -f $dir/$1.pid ]] && cat "$dir/$1.pid"
}

running() {
  pid_matches "$(pid_of "$1")" "$dir/"
}

wait_ready() {
  local name=$1 url=$2 deadline=$((SECONDS + start_timeout))
  until curl -fsS --max-time 2 "$url" >/dev/null 2>&1; do
    if ! running "$name"; then
      tail -n 20 "$dir/$name.log" >&2 || true
      die "$name exited during start-up (log: $dir/$name.log)"
    fi
    ((SECONDS < deadline)) || die "$name did not become ready within ${start_timeout}s"
    sleep 0.2
  done
}

start_one() {
  local name=$1
  shift
  if running "$name"; then
    echo "monitor: $name already runs (pid $(pid_of "$name"))"
    return
  fi
  setsid "$@" >"$dir/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
}

up() {
  local targets=""
  if [[ ${1:-} == --cluster ]]; then
    targets=$(cluster_targets)
  elif (($#)); then
    local t
    for t in "$@"; do
      [[ $t =~ ^[A-Za-z0-9.-]+:[0-9]+$ ]] || die "target '$t' is not HOST:PORT"
      targets+="$t"$'\n'
    done
  elif [[ -f $cluster_dir/cluster.env ]]; then
    targets=$(cluster_targets)
  else
    targets="127.0.0.1:8080"
  fi
  command -v prometheus >/dev/null || die "prometheus is not installed (scripts/setup.sh)"
  command -v prometheus-alertmanager >/dev/null || die "prometheus-alertmanager is not installed"
  mkdir -p "$dir"
  chmod 700 "$dir"
  write_configs "$targets"
  for p in "$port" "$am_port"; do
    if port_in_use "$p" && ! running prometheus && ! running alertmanager; then
      die "port $p is in use (set IMD_MONITOR_PORT)"
    fi
  done
  start_one alertmanager prometheus-alertmanager --config.file="$dir/alertmanager.yml" \
    --storage.path="$dir/alertmanager-data" --web.listen-address="127.0.0.1:$am_port" \
    --cluster.listen-address=
  start_one prometheus prometheus --config.file="$dir/prometheus.yml" \
    --storage.tsdb.path="$dir/prometheus-data" --web.listen-address="127.0.0.1:$port" \
    --web.console.templates=/etc/prometheus/consoles \
    --web.console.libraries=/etc/prometheus/console_libraries --web.enable-lifecycle
  wait_ready alertmanager "http://127.0.0.1:$am_port/-/ready"
  wait_ready prometheus "http://127.0.0.1:$port/-/ready"
  # Already running: load the targets and rules just written.
  curl -fsS --max-time 5 -X POST "http://127.0.0.1:$port/-/reload" >/dev/null ||
    die "Prometheus did not reload its configuration"
  curl -fsS --max-time 5 -X POST "http://127.0.0.1:$am_port/-/reload" >/dev/null ||
    die "Alertmanager did not reload its configuration"
  {
    printf 'PROMETHEUS_URL=%q\n' "http://127.0.0.1:$port"
    printf 'ALERTMANAGER_URL=%q\n' "http://127.0.0.1:$am_port"
    printf 'PROMETHEUS_PID=%q\n' "$(pid_of prometheus)"
    printf 'ALERTMANAGER_PID=%q\n' "$(pid_of alertmanager)"
  } >"$state"
  echo "monitor: Prometheus http://127.0.0.1:$port (targets: $(echo "$targets" | awk 'NF{print $1}' | paste -sd' ')),"
  echo "monitor: Alertmanager http://127.0.0.1:$am_port; state in $dir"
}

stop_one() {
  local name=$1 pid
  pid=$(pid_of "$name") || return 0
  if pid_matches "$pid" "$dir/"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while pid_matches "$pid" "$dir/" && ((SECONDS < deadline)); do sleep 0.1; done
    if pid_matches "$pid" "$dir/"; then
      echo "monitor: $name did not stop in 15 s: kill -9" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/$name.pid"
}

down() {
  stop_one prometheus
  stop_one alertmanager
  rm -f "$state"
  echo "monitor: stopped (data kept in $dir)"
}

status() {
  local rc=0 name
  for name in prometheus alertmanager; do
    if running "$name"; then
      echo "$name: running (pid $(pid_of "$name"))"
    else
      echo "$name: stopped"
      rc=1
    fi
  done
  if running prometheus; then
    curl -fsS --max-time 2 "http://127.0.0.1:$port/api/v1/targets?state=active" |
      python3 -c 'import json,sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    print("target %-22s %-5s %s" % (t["scrapeUrl"], t["health"], t.get("lastError","")))' || rc=1
  fi
  return $rc
}

case ${1:-} in
  up)
    shift
    up "$@"
    ;;
  down) down ;;
  status) status ;;
  *) usage ;;
esac
