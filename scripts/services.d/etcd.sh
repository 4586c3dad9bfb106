# shellcheck shell=bash
# etcd for scripts/services.sh (sourced; uses its helpers die, need, port_in_use, pid_matches):
#
#   scripts/services.sh start|stop|status etcd
#
# One etcd member named `imd` on 127.0.0.1, its data in a fresh temporary directory (removed by
# stop). Debian packages: etcd-server (3.4) and etcd-client (etcdctl).
#
# Environment:
#   IMD_ETCD_PORT        client port (default 24790; 0 picks a free one)
#   IMD_ETCD_PEER_PORT   peer port (default client port + 1; 0 or unset with a picked client
#                        port: a free one)
#   IMD_ETCD_START_TIMEOUT_S, IMD_ETCD_STOP_TIMEOUT_S   bounded waits (default 60, 30)
#   IMD_ETCD_ARGS        extra etcd arguments
#
# State file ${IMD_SERVICES_DIR}/etcd.env: ETCD_PID, ETCD_PORT, ETCD_PEER_PORT, ETCD_HOST,
# ETCD_ENDPOINT ("127.0.0.1:port", what gRPC clients dial), ETCD_BASEDIR (data in
# $ETCD_BASEDIR/data, log in $ETCD_BASEDIR/etcd.log).

etcd_state=$services_dir/etcd.env

etcd_load_state() {
  ETCD_PID='' ETCD_PORT='' ETCD_PEER_PORT='' ETCD_HOST='' ETCD_ENDPOINT='' ETCD_BASEDIR=''
  [[ -f $etcd_state ]] || return 1
  # shellcheck disable=SC1090
  source "$etcd_state"
}

etcd_running() {
  etcd_load_state && [[ -n $ETCD_BASEDIR ]] && pid_matches "$ETCD_PID" "$ETCD_BASEDIR/data"
}

etcd_healthy() {
  ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$1" --dial-timeout=2s \
    --command-timeout=3s endpoint health >/dev/null 2>&1
}

etcd_cleanup() {
  if [[ -n ${ETCD_BASEDIR:-} && $ETCD_BASEDIR == */imd-etcd.* && -d $ETCD_BASEDIR ]]; then
    rm -rf -- "$ETCD_BASEDIR"
  fi
  rm -f -- "$etcd_state"
}

etcd_start() {
  if etcd_running; then
    if etcd_healthy "$ETCD_PORT"; then
      if [[ -n ${IMD_ETCD_PORT:-} && $IMD_ETCD_PORT != 0 && $IMD_ETCD_PORT != "$ETCD_PORT" ]]; then
        die "etcd already runs on port $ETCD_PORT, not $IMD_ETCD_PORT; stop it first"
      fi
      echo "etcd: already running (pid $ETCD_PID, port $ETCD_PORT)"
      return 0
    fi
    die "etcd pid $ETCD_PID is alive but not healthy on port $ETCD_PORT; run '$0 stop etcd'"
  fi
  [[ -f $etcd_state ]] && etcd_cleanup  # a stale state file from a crashed server

  need etcd etcd-server
  need etcdctl etcd-client

  local port peer start_timeout base pid url peer_url
  port=$(pick_port "${IMD_ETCD_PORT:-24790}" IMD_ETCD_PORT 24790)
  peer=${IMD_ETCD_PEER_PORT:-}
  if [[ -z $peer ]]; then
    if [[ ${IMD_ETCD_PORT:-24790} == 0 ]]; then peer=0; else peer=$((port + 1)); fi
  fi
  peer=$(pick_port "$peer" IMD_ETCD_PEER_PORT $((port + 1)) "$port")
  start_timeout=${IMD_ETCD_START_TIMEOUT_S:-60}
  [[ $start_timeout =~ ^[0-9]+$ ]] || die "IMD_ETCD_START_TIMEOUT_S must be a number"
  base=$(mktemp -d "${TMPDIR:-/tmp}/imd-etcd.XXXXXX")
  url=http://127.0.0.1:$port
  peer_url=http://127.0.0.1:$peer
  # setsid: the server outlives this script and is not hit by the caller's Ctrl-C.
  # shellcheck disable=SC2086
  setsid etcd --name imd --data-dir "$base/data" \
    --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
    --initial-cluster "imd=$peer_url" --initial-cluster-state new \
    ${IMD_ETCD_ARGS:-} \
    </dev/null >>"$base/etcd.log" 2>&1 9>&- &
  pid=$!

  mkdir -p "$services_dir"
  {
    printf 'ETCD_PID=%q\n' "$pid"
    printf 'ETCD_PORT=%q\n' "$port"
    printf 'ETCD_PEER_PORT=%q\n' "$peer"
    printf 'ETCD_HOST=%q\n' 127.0.0.1
    printf 'ETCD_ENDPOINT=%q\n' "127.0.0.1:$port"
    printf 'ETCD_BASEDIR=%q\n' "$base"
  } >"$etcd_state.tmp"
  mv "$etcd_state.tmp" "$etcd_state"
  etcd_load_state

  local deadline=$((SECONDS + start_timeout))
  until etcd_healthy "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log "$base/etcd.log"
      etcd_cleanup
      die "etcd exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      show_log "$base/etcd.log"
      etcd_stop >/dev/null
      die "etcd was not healthy within ${start_timeout}s"
    fi
    sleep 0.2
  done
  echo "etcd: started (pid $pid, 127.0.0.1:$port, peer port $peer, dir $base)"
}

etcd_stop() {
  if ! etcd_load_state; then
    echo "etcd: not running"
    return 0
  fi
  if etcd_running; then
    local stop_timeout=${IMD_ETCD_STOP_TIMEOUT_S:-30}
    kill -TERM "$ETCD_PID" 2>/dev/null || true
    local deadline=$((SECONDS + stop_timeout))
    while pid_matches "$ETCD_PID" "$ETCD_BASEDIR/data"; do
      if ((SECONDS >= deadline)); then
        echo "services: etcd (pid $ETCD_PID) did not stop within ${stop_timeout}s; killing it" >&2
        kill -KILL "$ETCD_PID" 2>/dev/null || true
        sleep 0.2
        break
      fi
      sleep 0.1
    done
    echo "etcd: stopped (pid $ETCD_PID, port $ETCD_PORT)"
  else
    echo "etcd: not running (removing stale state)"
  fi
  etcd_cleanup
}

etcd_status() {
  if etcd_running; then
    if etcd_healthy "$ETCD_PORT"; then
      echo "etcd: running (pid $ETCD_PID, $ETCD_ENDPOINT, dir $ETCD_BASEDIR)"
      return 0
    fi
    echo "etcd: process $ETCD_PID is alive but not healthy"
    return 1
  fi
  echo "etcd: not running"
  return 3
}
