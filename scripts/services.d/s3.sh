# shellcheck shell=bash
# s3: s3rver (an S3-compatible server from npm, pinned in tools/s3rver/package-lock.json) on
# 127.0.0.1, its data in a fresh temporary directory (sourced by scripts/services.sh, which
# provides die, need, pick_port, pid_matches, show_log and services_dir). It knows the access
# key S3RVER (secret S3RVER) and refuses others, but does not verify V4 signatures. The bucket
# `imd` exists from the start (for a server run with files.blob = s3). What it does
# not cover is in docs/operations.md "Files".
#
#   IMD_S3_PORT              port (default 24569; 0 picks a free one)
#   IMD_S3_START_TIMEOUT_S, IMD_S3_STOP_TIMEOUT_S   bounded waits (default 60, 30)
#
# State file ${IMD_SERVICES_DIR}/s3.env: S3_PID, S3_PORT, S3_HOST, S3_ENDPOINT, S3_BASEDIR
# (the data ${S3_BASEDIR}/data, the log ${S3_BASEDIR}/s3rver.log).

s3_state=$services_dir/s3.env
s3_tool_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tools/s3rver" && pwd)

s3_load_state() {
  S3_PID='' S3_PORT='' S3_HOST='' S3_ENDPOINT='' S3_BASEDIR=''
  [[ -f $s3_state ]] || return 1
  # shellcheck disable=SC1090
  source "$s3_state"
}

# True when something answers HTTP on port $1.
s3_ping() {
  local line=''
  {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    IFS= read -r -t 2 line <&3 || true
    exec 3<&- 3>&-
  } 2>/dev/null
  [[ $line == HTTP/* ]]
}

s3_running() {
  s3_load_state && [[ -n $S3_BASEDIR ]] && pid_matches "$S3_PID" "$S3_BASEDIR/"
}

s3_cleanup() {
  if [[ -n ${S3_BASEDIR:-} && $S3_BASEDIR == */imd-s3.* && -d $S3_BASEDIR ]]; then
    rm -rf -- "$S3_BASEDIR"
  fi
  rm -f -- "$s3_state"
}

s3_start() {
  if s3_running; then
    if s3_ping "$S3_PORT"; then
      echo "s3: already running (pid $S3_PID, port $S3_PORT)"
      return 0
    fi
    die "s3rver pid $S3_PID is alive but does not answer on port $S3_PORT; run '$0 stop s3'"
  fi
  [[ -f $s3_state ]] && s3_cleanup
  need node nodejs
  need npm npm
  if [[ ! -f $s3_tool_dir/node_modules/.package-lock.json ||
        $s3_tool_dir/package-lock.json -nt $s3_tool_dir/node_modules/.package-lock.json ]]; then
    (cd "$s3_tool_dir" && npm ci --no-audit --no-fund >/dev/null) || die "npm ci in $s3_tool_dir failed"
  fi

  local port start_timeout base pid
  port=$(pick_port "${IMD_S3_PORT:-24569}" IMD_S3_PORT 24569)
  start_timeout=${IMD_S3_START_TIMEOUT_S:-60}
  base=$(mktemp -d "${TMPDIR:-/tmp}/imd-s3.XXXXXX")
  mkdir -p "$base/data"
  # The data directory on the command line lets pid_matches recognize the process.
  setsid node "$s3_tool_dir/node_modules/s3rver/bin/s3rver.js" -d "$base/data" -a 127.0.0.1 \
    -p "$port" --no-vhost-buckets --configure-bucket imd </dev/null >"$base/s3rver.log" 2>&1 9>&- &
  pid=$!

  mkdir -p "$services_dir"
  {
    printf 'S3_PID=%q\n' "$pid"
    printf 'S3_PORT=%q\n' "$port"
    printf 'S3_HOST=%q\n' 127.0.0.1
    printf 'S3_ENDPOINT=%q\n' "http://127.0.0.1:$port"
    printf 'S3_BASEDIR=%q\n' "$base"
  } >"$s3_state.tmp"
  mv "$s3_state.tmp" "$s3_state"
  s3_load_state

  local deadline=$((SECONDS + start_timeout))
  until s3_ping "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log "$base/s3rver.log"
      s3_cleanup
      die "s3rver exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      show_log "$base/s3rver.log"
      s3_stop >/dev/null
      die "s3rver did not answer within ${start_timeout}s"
    fi
    sleep 0.1
  done
  echo "s3: started (pid $pid, $S3_ENDPOINT, dir $base)"
}

s3_stop() {
  if ! s3_load_state; then
    echo "s3: not running"
    return 0
  fi
  if s3_running; then
    local stop_timeout=${IMD_S3_STOP_TIMEOUT_S:-30}
    kill -TERM "$S3_PID" 2>/dev/null || true
    local deadline=$((SECONDS + stop_timeout))
    while pid_matches "$S3_PID" "$S3_BASEDIR/"; do
      if ((SECONDS >= deadline)); then
        echo "services: s3rver (pid $S3_PID) did not stop within ${stop_timeout}s; killing it" >&2
        kill -KILL "$S3_PID" 2>/dev/null || true
        sleep 0.2
        break
      fi
      sleep 0.1
    done
    echo "s3: stopped (pid $S3_PID, port $S3_PORT)"
  else
    echo "s3: not running (removing stale state)"
  fi
  s3_cleanup
}

s3_status() {
  if s3_running; then
    if s3_ping "$S3_PORT"; then
      echo "s3: running (pid $S3_PID, $S3_ENDPOINT, dir $S3_BASEDIR)"
      return 0
    fi
    echo "s3: process $S3_PID is alive but does not answer"
    return 1
  fi
  echo "s3: not running"
  return 3
}
