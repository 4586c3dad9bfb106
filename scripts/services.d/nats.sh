# shellcheck shell=bash
# nats: one nats-server with JetStream on 127.0.0.1, its store in a fresh temporary directory
# (sourced by scripts/services.sh, which provides die, need, port_in_use, pid_matches and
# services_dir).
#
#   IMD_NATS_PORT            client port (default 24222; 0 picks a free one)
#   IMD_NATS_START_TIMEOUT_S, IMD_NATS_STOP_TIMEOUT_S   bounded waits (default 60, 30)
#   IMD_NATS_ARGS            extra nats-server arguments
#
# State file ${IMD_SERVICES_DIR}/nats.env: NATS_PID, NATS_PORT, NATS_HOST, NATS_URL,
# NATS_BASEDIR (the store is ${NATS_BASEDIR}/js, the log ${NATS_BASEDIR}/nats.log).

nats_state=$services_dir/nats.env

nats_load_state() {
  NATS_PID='' NATS_PORT='' NATS_HOST='' NATS_URL='' NATS_BASEDIR=''
  [[ -f $nats_state ]] || return 1
  # shellcheck disable=SC1090
  source "$nats_state"
}

# True when the server on port $1 greets with an INFO line that says JetStream is on.
nats_ping() {
  local line=''
  {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    IFS= read -r -t 2 line <&3 || true
    exec 3<&- 3>&-
  } 2>/dev/null
  [[ $line == INFO* && $line == *'"jetstream":true'* ]]
}

nats_running() {
  nats_load_state && [[ -n $NATS_BASEDIR ]] && pid_matches "$NATS_PID" "$NATS_BASEDIR/"
}

nats_cleanup() {
  if [[ -n ${NATS_BASEDIR:-} && $NATS_BASEDIR == */imd-nats.* && -d $NATS_BASEDIR ]]; then
    rm -rf -- "$NATS_BASEDIR"
  fi
  rm -f -- "$nats_state"
}

nats_start() {
  if nats_running; then
    if nats_ping "$NATS_PORT"; then
      if [[ -n ${IMD_NATS_PORT:-} && $IMD_NATS_PORT != 0 && $IMD_NATS_PORT != "$NATS_PORT" ]]; then
        die "nats already runs on port $NATS_PORT, not $IMD_NATS_PORT; stop it first"
      fi
      echo "nats: already running (pid $NATS_PID, port $NATS_PORT)"
      return 0
    fi
    die "nats pid $NATS_PID is alive but does not answer on port $NATS_PORT; run '$0 stop nats'"
  fi
  [[ -f $nats_state ]] && nats_cleanup  # a stale state file from a crashed server

  need nats-server nats-server

  local port start_timeout base pid
  port=$(pick_port "${IMD_NATS_PORT:-24222}" IMD_NATS_PORT 24222)
  start_timeout=${IMD_NATS_START_TIMEOUT_S:-60}
  base=$(mktemp -d "${TMPDIR:-/tmp}/imd-nats.XXXXXX")
  mkdir -p "$base/js"
  # setsid: the server outlives this script and is not hit by the caller's Ctrl-C. The store
  # directory on the command line lets pid_matches recognize the process.
  # shellcheck disable=SC2086
  setsid nats-server -js -sd "$base/js" -a 127.0.0.1 -p "$port" -l "$base/nats.log" \
    ${IMD_NATS_ARGS:-} </dev/null >/dev/null 2>&1 9>&- &
  pid=$!

  mkdir -p "$services_dir"
  {
    printf 'NATS_PID=%q\n' "$pid"
    printf 'NATS_PORT=%q\n' "$port"
    printf 'NATS_HOST=%q\n' 127.0.0.1
    printf 'NATS_URL=%q\n' "nats://127.0.0.1:$port"
    printf 'NATS_BASEDIR=%q\n' "$base"
  } >"$nats_state.tmp"
  mv "$nats_state.tmp" "$nats_state"
  nats_load_state

  local deadline=$((SECONDS + start_timeout))
  until nats_ping "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log "$base/nats.log"
      nats_cleanup
      die "nats-server exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      show_log "$base/nats.log"
      nats_stop >/dev/null
      die "nats-server did not answer within ${start_timeout}s"
    fi
    sleep 0.1
  done
  echo "nats: started (pid $pid, $NATS_URL, dir $base)"
}

nats_stop() {
  if ! nats_load_state; then
    echo "nats: not running"
    return 0
  fi
  if nats_running; then
    local stop_timeout=${IMD_NATS_STOP_TIMEOUT_S:-30}
    kill -TERM "$NATS_PID" 2>/dev/null || true
    local deadline=$((SECONDS + stop_timeout))
    while pid_matches "$NATS_PID" "$NATS_BASEDIR/"; do
      if ((SECONDS >= deadline)); then
        echo "services: nats-server (pid $NATS_PID) did not stop within ${stop_timeout}s; killing it" >&2
        kill -KILL "$NATS_PID" 2>/dev/null || true
        sleep 0.2
        break
      fi
      sleep 0.1
    done
    echo "nats: stopped (pid $NATS_PID, port $NATS_PORT)"
  else
    echo "nats: not running (removing stale state)"
  fi
  nats_cleanup
}

nats_status() {
  if nats_running; then
    if nats_ping "$NATS_PORT"; then
      echo "nats: running (pid $NATS_PID, $NATS_URL, dir $NATS_BASEDIR)"
      return 0
    fi
    echo "nats: process $NATS_PID is alive but does not answer"
    return 1
  fi
  echo "nats: not running"
  return 3
}
