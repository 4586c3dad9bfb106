#!/usr/bin/env bash
# Starts, stops and reports the outside services of the cluster mode, as real local processes
# for tests and development (no systemd, no containers):
#
#   scripts/services.sh start|stop|status mariadb
#
# mariadb: a private mariadbd on 127.0.0.1 with its data in a fresh temporary directory, a
# user `imd` (password IMD_MARIADB_PASSWORD) and a database `imd`. The user may also create and
# drop databases whose names start with `imd` (the tests use one database per test case).
#
# Environment:
#   IMD_SERVICES_DIR         where state files live (default /tmp/imd-services)
#   IMD_MARIADB_PORT         TCP port (default 33306; 0 picks a free one)
#   IMD_MARIADB_PASSWORD     password of the `imd` user (default imd-dev-password)
#   IMD_MARIADB_START_TIMEOUT_S, IMD_MARIADB_STOP_TIMEOUT_S   bounded waits (default 60, 30)
#   IMD_MARIADB_ARGS         extra mariadbd arguments (e.g. --innodb-flush-log-at-trx-commit=2)
#
# The state file ${IMD_SERVICES_DIR}/mariadb.env (shell syntax: MARIADB_PID, _PORT, _HOST,
# _SOCKET, _DATADIR, _BASEDIR, _USER, _PASSWORD, _DATABASE) says where the running server is. `start` when
# it is already running is a no-op; `stop` when it is not is one too. `status` exits 0 when
# running, 3 when not. Every wait is bounded and a failure says why (and shows the server log).
set -euo pipefail

services_dir=${IMD_SERVICES_DIR:-/tmp/imd-services}

die() {
  echo "services: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start|stop|status mariadb" >&2
  exit 2
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found; install the Debian package $2"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True when pid $1 is alive and its command line mentions $2 (so a recycled pid is not ours).
pid_matches() {
  local pid=$1 needle=$2
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$needle"
}

# --- mariadb

mariadb_state=$services_dir/mariadb.env

mariadb_load_state() {
  MARIADB_PID='' MARIADB_PORT='' MARIADB_HOST='' MARIADB_SOCKET='' MARIADB_DATADIR=''
  MARIADB_BASEDIR='' MARIADB_USER='' MARIADB_PASSWORD='' MARIADB_DATABASE=''
  [[ -f $mariadb_state ]] || return 1
  # shellcheck disable=SC1090
  source "$mariadb_state"
}

mariadb_running() {
  mariadb_load_state && pid_matches "$MARIADB_PID" "$MARIADB_DATADIR"
}

mariadb_ping() {
  mariadb-admin --no-defaults --socket="$1" --user=root --connect-timeout=2 ping >/dev/null 2>&1
}

mariadb_show_log() {
  local log=$1/error.log
  if [[ -f $log ]]; then
    echo "services: last lines of $log:" >&2
    tail -n 25 "$log" >&2
  fi
}

mariadb_pick_port() {
  local port=${IMD_MARIADB_PORT:-33306}
  [[ $port =~ ^[0-9]+$ ]] || die "IMD_MARIADB_PORT must be a number, got '$port'"
  if ((port == 0)); then
    for ((port = 33306; port < 33406; port++)); do
      port_in_use "$port" || { echo "$port"; return; }
    done
    die "no free port in 33306..33405"
  fi
  port_in_use "$port" && die "port $port is already in use (set IMD_MARIADB_PORT, or 0 for any)"
  echo "$port"
}

mariadb_start() {
  if mariadb_running; then
    if mariadb_ping "$MARIADB_SOCKET"; then
      if [[ -n ${IMD_MARIADB_PORT:-} && $IMD_MARIADB_PORT != 0 && $IMD_MARIADB_PORT != "$MARIADB_PORT" ]]; then
        die "mariadb already runs on port $MARIADB_PORT, not $IMD_MARIADB_PORT; stop it first"
      fi
      echo "mariadb: already running (pid $MARIADB_PID, port $MARIADB_PORT)"
      return 0
    fi
    die "mariadb pid $MARIADB_PID is alive but does not answer on $MARIADB_SOCKET; run '$0 stop mariadb'"
  fi
  [[ -f $mariadb_state ]] && mariadb_cleanup  # a stale state file from a crashed server

  need mariadbd mariadb-server
  need mariadb-install-db mariadb-server
  need mariadb mariadb-client
  need mariadb-admin mariadb-client

  local port password start_timeout base datadir socket run_as=()
  port=$(mariadb_pick_port)
  password=${IMD_MARIADB_PASSWORD:-imd-dev-password}
  start_timeout=${IMD_MARIADB_START_TIMEOUT_S:-60}
  base=$(mktemp -d "${TMPDIR:-/tmp}/imd-mariadb.XXXXXX")
  datadir=$base/data
  socket=$base/mariadbd.sock
  # mariadbd refuses to run as root unless told to; as anyone else it runs as that user.
  if [[ $(id -u) -eq 0 ]]; then run_as=(--user=root); fi

  # root logs in only through the socket, as the OS user running this script (unix_socket
  # authentication, Debian's default); the application uses the `imd` account below.
  if ! mariadb-install-db --no-defaults --datadir="$datadir" "${run_as[@]}" \
      --auth-root-authentication-method=socket --auth-root-socket-user="$(id -un)" \
      --skip-test-db --skip-name-resolve >"$base/install.log" 2>&1; then
    tail -n 25 "$base/install.log" >&2
    rm -rf "$base"
    die "mariadb-install-db failed"
  fi

  # setsid: the server outlives this script and is not hit by the caller's Ctrl-C.
  # shellcheck disable=SC2086
  setsid mariadbd --no-defaults --datadir="$datadir" "${run_as[@]}" \
    --socket="$socket" --port="$port" --bind-address=127.0.0.1 \
    --pid-file="$base/mariadbd.pid" --log-error="$base/error.log" \
    --skip-name-resolve --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --default-storage-engine=InnoDB --innodb-buffer-pool-size=128M --max-connections=400 \
    ${IMD_MARIADB_ARGS:-} </dev/null >/dev/null 2>&1 9>&- &
  local pid=$!

  mkdir -p "$services_dir"
  {
    printf 'MARIADB_PID=%q\n' "$pid"
    printf 'MARIADB_PORT=%q\n' "$port"
    printf 'MARIADB_HOST=%q\n' 127.0.0.1
    printf 'MARIADB_SOCKET=%q\n' "$socket"
    printf 'MARIADB_DATADIR=%q\n' "$datadir"
    printf 'MARIADB_BASEDIR=%q\n' "$base"
    printf 'MARIADB_USER=%q\n' imd
    printf 'MARIADB_PASSWORD=%q\n' "$password"
    printf 'MARIADB_DATABASE=%q\n' imd
  } >"$mariadb_state.tmp"
  mv "$mariadb_state.tmp" "$mariadb_state"
  mariadb_load_state

  local deadline=$((SECONDS + start_timeout))
  until mariadb_ping "$socket"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      mariadb_show_log "$base"
      mariadb_cleanup
      die "mariadbd exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      mariadb_show_log "$base"
      mariadb_stop >/dev/null
      die "mariadbd did not answer within ${start_timeout}s"
    fi
    sleep 0.2
  done

  # The account the adapter uses: password login over TCP (and the socket), no root.
  local sql_password=${password//\\/\\\\}
  sql_password=${sql_password//\'/\\\'}
  if ! mariadb --no-defaults --socket="$socket" --user=root --batch >"$base/setup.log" 2>&1 <<SQL
CREATE DATABASE IF NOT EXISTS imd CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'imd'@'127.0.0.1' IDENTIFIED BY '$sql_password';
CREATE USER IF NOT EXISTS 'imd'@'localhost' IDENTIFIED BY '$sql_password';
GRANT ALL PRIVILEGES ON \`imd%\`.* TO 'imd'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`imd%\`.* TO 'imd'@'localhost';
SQL
  then
    cat "$base/setup.log" >&2
    mariadb_stop >/dev/null
    die "creating the imd user and database failed"
  fi
  echo "mariadb: started (pid $pid, 127.0.0.1:$port, socket $socket, user imd, database imd)"
}

# Removes the temporary directory and the state file (the server must be gone).
mariadb_cleanup() {
  if [[ -n ${MARIADB_BASEDIR:-} && $MARIADB_BASEDIR == */imd-mariadb.* && -d $MARIADB_BASEDIR ]]; then
    rm -rf -- "$MARIADB_BASEDIR"
  fi
  rm -f -- "$mariadb_state"
}

mariadb_stop() {
  if ! mariadb_load_state; then
    echo "mariadb: not running"
    return 0
  fi
  if pid_matches "$MARIADB_PID" "$MARIADB_DATADIR"; then
    local stop_timeout=${IMD_MARIADB_STOP_TIMEOUT_S:-30}
    kill -TERM "$MARIADB_PID" 2>/dev/null || true
    local deadline=$((SECONDS + stop_timeout))
    while pid_matches "$MARIADB_PID" "$MARIADB_DATADIR"; do
      if ((SECONDS >= deadline)); then
        echo "services: mariadbd (pid $MARIADB_PID) did not stop within ${stop_timeout}s; killing it" >&2
        kill -KILL "$MARIADB_PID" 2>/dev/null || true
        sleep 0.5
        break
      fi
      sleep 0.2
    done
    echo "mariadb: stopped (pid $MARIADB_PID)"
  else
    echo "mariadb: not running (removing stale state)"
  fi
  mariadb_cleanup
}

mariadb_status() {
  if mariadb_running; then
    if mariadb_ping "$MARIADB_SOCKET"; then
      echo "mariadb: running (pid $MARIADB_PID, $MARIADB_HOST:$MARIADB_PORT, socket $MARIADB_SOCKET, datadir $MARIADB_DATADIR)"
      return 0
    fi
    echo "mariadb: process $MARIADB_PID is alive but does not answer"
    return 1
  fi
  echo "mariadb: not running"
  return 3
}

# --- dispatch

(($# == 2)) || usage
action=$1 service=$2
case $service in
  mariadb) ;;
  *) die "unknown service '$service' (known: mariadb)" ;;
esac
case $action in
  start | stop | status) ;;
  *) usage ;;
esac

mkdir -p "$services_dir"
# One start/stop at a time per services dir (concurrent test runs share it).
exec 9>"$services_dir/$service.lock"
flock -w 120 9 || die "another services.sh holds $services_dir/$service.lock for over 120s"
"${service}_${action}"
