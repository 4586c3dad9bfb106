#!/usr/bin/env bash
# Starts, stops and reports the outside services of the cluster mode, as real local processes
# for tests and development (no systemd, no containers):
#
#   scripts/services.sh start|stop|status mariadb|redis|redis-cluster|nats|etcd
#
# mariadb: a private mariadbd on 127.0.0.1 with its data in a fresh temporary directory, a
# user `imd` (password IMD_MARIADB_PASSWORD) and a database `imd`. The user may also create and
# drop databases whose names start with `imd` (the tests use one database per test case).
#
# redis: one redis-server on 127.0.0.1, data in a fresh temporary directory, no persistence
# (--save '', no AOF).
#
# redis-cluster: three redis-server masters on 127.0.0.1 (ports BASE, BASE+1, BASE+2; their
# cluster bus ports are +10000), cluster-enabled, joined with `redis-cli --cluster create
# --cluster-replicas 0`; start returns once every node reports cluster_state:ok. No
# persistence either, but each node keeps its cluster identity (nodes.conf) in its directory
# ${REDIS_CLUSTER_BASEDIR}/<port>/ next to its redis.conf: a node killed by a test can be started
# again with `redis-server <that dir>/redis.conf` and rejoins as the same master. `stop` reads
# each node's pid from <dir>/redis.pid, so such a restarted node is stopped too.
#
# nats: one nats-server -js on 127.0.0.1 (scripts/services.d/nats.sh), its store in a fresh
# temporary directory; IMD_NATS_PORT (default 24222; 0 picks a free one); state nats.env
# (NATS_PID, _PORT, _HOST, _URL, _BASEDIR).
#
# etcd: one etcd member on 127.0.0.1 (scripts/services.d/etcd.sh), data in a fresh temporary
# directory; IMD_ETCD_PORT (default 24790; 0 picks a free one), peer port next to it; state
# etcd.env (ETCD_PID, _PORT, _PEER_PORT, _HOST, _ENDPOINT, _BASEDIR).
#
# Environment:
#   IMD_SERVICES_DIR         where state files live (default /tmp/imd-services)
#   IMD_MARIADB_PORT         TCP port (default 25306; 0 picks a free one below the ephemeral range)
#   IMD_MARIADB_PASSWORD     password of the `imd` user (default imd-dev-password)
#   IMD_MARIADB_START_TIMEOUT_S, IMD_MARIADB_STOP_TIMEOUT_S   bounded waits (default 60, 30)
#   IMD_MARIADB_ARGS         extra mariadbd arguments (e.g. --innodb-flush-log-at-trx-commit=2)
#   IMD_REDIS_PORT           redis TCP port (default 26400; 0 picks a free one)
#   IMD_REDIS_CLUSTER_PORT   first port of the cluster (default 19001; 0 picks free ones)
#   IMD_REDIS_CLUSTER_NODE_TIMEOUT_MS   cluster-node-timeout (default 2000)
#   IMD_REDIS_START_TIMEOUT_S, IMD_REDIS_STOP_TIMEOUT_S       bounded waits (default 60, 30)
#   IMD_REDIS_ARGS           extra redis-server arguments for every redis node
#
# The state file ${IMD_SERVICES_DIR}/mariadb.env (shell syntax: MARIADB_PID, _PORT, _HOST,
# _SOCKET, _DATADIR, _BASEDIR, _USER, _PASSWORD, _DATABASE) says where the running server is;
# redis.env (REDIS_PID, _PORT, _HOST, _BASEDIR, _ADDRESS) and redis-cluster.env
# (REDIS_CLUSTER_PIDS, _PORTS, _HOST, _BASEDIR, _ADDRESSES: "host:port,host:port,...") likewise.
# `start` when it is already running is a no-op; `stop` when it is not is one too. `status` exits
# 0 when running, 3 when not. Every wait is bounded and a failure says why (and shows the log).
set -euo pipefail
# shellcheck source=lib/procs.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/procs.sh"

services_dir=${IMD_SERVICES_DIR:-/tmp/imd-services}

die() {
  echo "services: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start|stop|status mariadb|redis|redis-cluster|<a service of services.d>" >&2
  exit 2
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found; install the Debian package $2"
}

# Prints the last lines of log file $1 to stderr, if it exists.
show_log() {
  if [[ -f $1 ]]; then
    echo "services: last lines of $1:" >&2
    tail -n 25 "$1" >&2
  fi
}

# A port from $1 (a variable's value) named $2, or the first free one of 200 from $3 when it
# is 0; never $4. Defaults stay below the kernel's ephemeral range (32768+).
pick_port() {
  local port=$1 name=$2 first=$3 avoid=${4:-}
  [[ $port =~ ^[0-9]+$ ]] || die "$name must be a number, got '$port'"
  if ((port == 0)); then
    for ((port = first; port < first + 200; port++)); do
      [[ $port == "$avoid" ]] && continue
      port_in_use "$port" || { echo "$port"; return; }
    done
    die "no free port in $first..$((first + 199))"
  fi
  ((port > 0 && port < 65536)) || die "$name=$port is not a port"
  [[ $port == "$avoid" ]] && die "$name=$port collides with port $avoid"
  port_in_use "$port" && die "port $port is already in use (set $name, or 0 for any)"
  echo "$port"
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
  # The search index's engine (migration 5): Debian's mariadb-plugin-mroonga.
  [[ -f /usr/lib/mysql/plugin/ha_mroonga.so ]] ||
    die "the Mroonga plugin is missing: run scripts/setup.sh (mariadb-plugin-mroonga)"

  local port password start_timeout base datadir socket run_as=()
  port=$(pick_port "${IMD_MARIADB_PORT:-25306}" IMD_MARIADB_PORT 25306)
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
    --plugin-load-add=ha_mroonga.so \
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
      show_log "$base/error.log"
      mariadb_cleanup
      die "mariadbd exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      show_log "$base/error.log"
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

# --- redis (shared by redis and redis-cluster)

redis_ping() {
  [[ $(redis-cli -h 127.0.0.1 -p "$1" --no-auth-warning ping 2>/dev/null) == PONG ]]
}

# Port number from $1 (the variable's value) and $2 (its name), or a free one from $3 when 0.
# $4: how many consecutive ports (with their cluster bus ports at +10000) must be free.
# Defaults stay below the kernel's ephemeral range (32768+), where an outgoing connection's
# local port could take a bus port between the check and the server's bind.
redis_pick_ports() {
  local port=$1 name=$2 first=$3 count=$4 i
  [[ $port =~ ^[0-9]+$ ]] || die "$name must be a number, got '$port'"
  if ((port == 0)); then
    for ((port = first; port < first + 300; port += count)); do
      local free=1
      for ((i = 0; i < count; i++)); do
        if port_in_use $((port + i)) || { ((count > 1)) && port_in_use $((port + i + 10000)); }; then
          free=0
          break
        fi
      done
      ((free)) && { echo "$port"; return; }
    done
    die "no $count free port(s) in $first..$((first + 299))"
  fi
  ((port + count - 1 <= 55535 || count == 1)) || die "$name=$port: cluster bus ports (+10000) would exceed 65535"
  for ((i = 0; i < count; i++)); do
    port_in_use $((port + i)) && die "port $((port + i)) is already in use (set $name, or 0 for any)"
    if ((count > 1)) && port_in_use $((port + i + 10000)); then
      die "cluster bus port $((port + i + 10000)) is already in use (set $name, or 0 for any)"
    fi
  done
  echo "$port"
}

# Stops the redis-server whose directory is $1 (pid from $1/redis.pid, else $2); bounded wait.
redis_stop_node() {
  local dir=$1 pid=$2 stop_timeout=${IMD_REDIS_STOP_TIMEOUT_S:-30}
  if [[ -f $dir/redis.pid ]]; then pid=$(<"$dir/redis.pid"); fi
  pid_matches "$pid" "$dir/" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + stop_timeout))
  while pid_matches "$pid" "$dir/"; do
    if ((SECONDS >= deadline)); then
      echo "services: redis-server (pid $pid) did not stop within ${stop_timeout}s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.1
  done
}

# Starts one redis-server from the config file $1 (in its own directory) and prints its pid.
redis_spawn() {
  # setsid: the server outlives this script and is not hit by the caller's Ctrl-C.
  # shellcheck disable=SC2086
  setsid redis-server "$1" ${IMD_REDIS_ARGS:-} </dev/null >/dev/null 2>&1 9>&- &
  echo $!
}

# Writes a redis.conf for a node in directory $1 on port $2; extra lines on stdin.
# set-proc-title no keeps the command line (which names the directory) for pid_matches.
redis_write_conf() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  {
    echo "port $port"
    echo "bind 127.0.0.1"
    echo "dir $dir"
    echo "pidfile $dir/redis.pid"
    echo "logfile $dir/redis.log"
    echo "daemonize no"
    echo "set-proc-title no"
    echo "save \"\""
    echo "appendonly no"
    cat
  } >"$dir/redis.conf"
}

redis_state=$services_dir/redis.env

redis_load_state() {
  REDIS_PID='' REDIS_PORT='' REDIS_HOST='' REDIS_BASEDIR='' REDIS_ADDRESS=''
  [[ -f $redis_state ]] || return 1
  # shellcheck disable=SC1090
  source "$redis_state"
}

redis_running() {
  redis_load_state && [[ -n $REDIS_BASEDIR ]] || return 1
  local pid=$REDIS_PID
  if [[ -f $REDIS_BASEDIR/redis.pid ]]; then pid=$(<"$REDIS_BASEDIR/redis.pid"); fi
  pid_matches "$pid" "$REDIS_BASEDIR/"
}

redis_cleanup() {
  if [[ -n ${REDIS_BASEDIR:-} && $REDIS_BASEDIR == */imd-redis.* && -d $REDIS_BASEDIR ]]; then
    rm -rf -- "$REDIS_BASEDIR"
  fi
  rm -f -- "$redis_state"
}

redis_start() {
  if redis_running; then
    if redis_ping "$REDIS_PORT"; then
      if [[ -n ${IMD_REDIS_PORT:-} && $IMD_REDIS_PORT != 0 && $IMD_REDIS_PORT != "$REDIS_PORT" ]]; then
        die "redis already runs on port $REDIS_PORT, not $IMD_REDIS_PORT; stop it first"
      fi
      echo "redis: already running (pid $REDIS_PID, port $REDIS_PORT)"
      return 0
    fi
    die "redis pid $REDIS_PID is alive but does not answer on port $REDIS_PORT; run '$0 stop redis'"
  fi
  [[ -f $redis_state ]] && redis_cleanup  # a stale state file from a crashed server

  need redis-server redis-server
  need redis-cli redis-tools

  local port start_timeout base pid
  port=$(redis_pick_ports "${IMD_REDIS_PORT:-26400}" IMD_REDIS_PORT 26400 1)
  start_timeout=${IMD_REDIS_START_TIMEOUT_S:-60}
  base=$(mktemp -d "${TMPDIR:-/tmp}/imd-redis.XXXXXX")
  redis_write_conf "$base" "$port" </dev/null
  pid=$(redis_spawn "$base/redis.conf")

  mkdir -p "$services_dir"
  {
    printf 'REDIS_PID=%q\n' "$pid"
    printf 'REDIS_PORT=%q\n' "$port"
    printf 'REDIS_HOST=%q\n' 127.0.0.1
    printf 'REDIS_BASEDIR=%q\n' "$base"
    printf 'REDIS_ADDRESS=%q\n' "127.0.0.1:$port"
  } >"$redis_state.tmp"
  mv "$redis_state.tmp" "$redis_state"
  redis_load_state

  local deadline=$((SECONDS + start_timeout))
  until redis_ping "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log "$base/redis.log"
      redis_cleanup
      die "redis-server exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      show_log "$base/redis.log"
      redis_stop >/dev/null
      die "redis-server did not answer within ${start_timeout}s"
    fi
    sleep 0.1
  done
  echo "redis: started (pid $pid, 127.0.0.1:$port, dir $base)"
}

redis_stop() {
  if ! redis_load_state; then
    echo "redis: not running"
    return 0
  fi
  if redis_running; then
    redis_stop_node "$REDIS_BASEDIR" "$REDIS_PID"
    echo "redis: stopped (port $REDIS_PORT)"
  else
    echo "redis: not running (removing stale state)"
  fi
  redis_cleanup
}

redis_status() {
  if redis_running; then
    if redis_ping "$REDIS_PORT"; then
      echo "redis: running (pid $REDIS_PID, $REDIS_ADDRESS, dir $REDIS_BASEDIR)"
      return 0
    fi
    echo "redis: process $REDIS_PID is alive but does not answer"
    return 1
  fi
  echo "redis: not running"
  return 3
}

# --- redis-cluster

redis_cluster_state=$services_dir/redis-cluster.env
redis_cluster_size=3

redis_cluster_load_state() {
  REDIS_CLUSTER_PIDS='' REDIS_CLUSTER_PORTS='' REDIS_CLUSTER_HOST='' REDIS_CLUSTER_BASEDIR=''
  REDIS_CLUSTER_ADDRESSES=''
  [[ -f $redis_cluster_state ]] || return 1
  # shellcheck disable=SC1090
  source "$redis_cluster_state"
}

# Number of cluster nodes whose process is alive.
redis_cluster_alive() {
  local alive=0 port pid
  for port in $REDIS_CLUSTER_PORTS; do
    pid=''
    [[ -f $REDIS_CLUSTER_BASEDIR/$port/redis.pid ]] && pid=$(<"$REDIS_CLUSTER_BASEDIR/$port/redis.pid")
    pid_matches "$pid" "$REDIS_CLUSTER_BASEDIR/$port/" && alive=$((alive + 1))
  done
  echo "$alive"
}

redis_cluster_running() {
  redis_cluster_load_state && [[ -n $REDIS_CLUSTER_BASEDIR ]] || return 1
  (($(redis_cluster_alive) > 0))
}

# True when every node answers and reports cluster_state:ok with all slots assigned.
redis_cluster_ok() {
  local port info
  for port in $REDIS_CLUSTER_PORTS; do
    info=$(redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | tr -d '\r') || return 1
    grep -qx 'cluster_state:ok' <<<"$info" || return 1
    grep -qx 'cluster_slots_assigned:16384' <<<"$info" || return 1
    grep -qx "cluster_known_nodes:$redis_cluster_size" <<<"$info" || return 1
  done
}

redis_cluster_cleanup() {
  if [[ -n ${REDIS_CLUSTER_BASEDIR:-} && $REDIS_CLUSTER_BASEDIR == */imd-redis-cluster.* && -d $REDIS_CLUSTER_BASEDIR ]]; then
    rm -rf -- "$REDIS_CLUSTER_BASEDIR"
  fi
  rm -f -- "$redis_cluster_state"
}

redis_cluster_start() {
  if redis_cluster_running; then
    if redis_cluster_ok; then
      if [[ -n ${IMD_REDIS_CLUSTER_PORT:-} && $IMD_REDIS_CLUSTER_PORT != 0 && $IMD_REDIS_CLUSTER_PORT != "${REDIS_CLUSTER_PORTS%% *}" ]]; then
        die "redis-cluster already runs on ports $REDIS_CLUSTER_PORTS; stop it first"
      fi
      echo "redis-cluster: already running (ports $REDIS_CLUSTER_PORTS)"
      return 0
    fi
    die "redis-cluster on ports $REDIS_CLUSTER_PORTS is not healthy; run '$0 stop redis-cluster'"
  fi
  [[ -f $redis_cluster_state ]] && redis_cluster_cleanup

  need redis-server redis-server
  need redis-cli redis-tools

  local first start_timeout node_timeout base i port pids=() ports=() addrs=()
  first=$(redis_pick_ports "${IMD_REDIS_CLUSTER_PORT:-19001}" IMD_REDIS_CLUSTER_PORT 19001 "$redis_cluster_size")
  start_timeout=${IMD_REDIS_START_TIMEOUT_S:-60}
  node_timeout=${IMD_REDIS_CLUSTER_NODE_TIMEOUT_MS:-2000}
  [[ $node_timeout =~ ^[0-9]+$ ]] || die "IMD_REDIS_CLUSTER_NODE_TIMEOUT_MS must be a number"
  base=$(mktemp -d "${TMPDIR:-/tmp}/imd-redis-cluster.XXXXXX")
  for ((i = 0; i < redis_cluster_size; i++)); do
    port=$((first + i))
    ports+=("$port")
    addrs+=("127.0.0.1:$port")
    redis_write_conf "$base/$port" "$port" <<CONF
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout $node_timeout
cluster-require-full-coverage yes
CONF
    pids+=("$(redis_spawn "$base/$port/redis.conf")")
  done

  mkdir -p "$services_dir"
  local joined
  joined=$(IFS=,; echo "${addrs[*]}")
  {
    printf 'REDIS_CLUSTER_PIDS=%q\n' "${pids[*]}"
    printf 'REDIS_CLUSTER_PORTS=%q\n' "${ports[*]}"
    printf 'REDIS_CLUSTER_HOST=%q\n' 127.0.0.1
    printf 'REDIS_CLUSTER_BASEDIR=%q\n' "$base"
    printf 'REDIS_CLUSTER_ADDRESSES=%q\n' "$joined"
  } >"$redis_cluster_state.tmp"
  mv "$redis_cluster_state.tmp" "$redis_cluster_state"
  redis_cluster_load_state

  local deadline=$((SECONDS + start_timeout))
  for ((i = 0; i < redis_cluster_size; i++)); do
    until redis_ping "${ports[i]}"; do
      if ! kill -0 "${pids[i]}" 2>/dev/null || ((SECONDS >= deadline)); then
        show_log "$base/${ports[i]}/redis.log"
        redis_cluster_stop >/dev/null
        die "redis-server on port ${ports[i]} did not start"
      fi
      sleep 0.1
    done
  done

  if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
      >"$base/create.log" 2>&1; then
    tail -n 25 "$base/create.log" >&2
    redis_cluster_stop >/dev/null
    die "redis-cli --cluster create failed"
  fi
  until redis_cluster_ok; do
    if ((SECONDS >= deadline)); then
      for port in "${ports[@]}"; do show_log "$base/$port/redis.log"; done
      redis_cluster_stop >/dev/null
      die "the cluster did not reach cluster_state:ok within ${start_timeout}s"
    fi
    sleep 0.2
  done
  echo "redis-cluster: started (pids ${pids[*]}, $joined, dir $base)"
}

redis_cluster_stop() {
  if ! redis_cluster_load_state; then
    echo "redis-cluster: not running"
    return 0
  fi
  local i=0 port pids=($REDIS_CLUSTER_PIDS)
  for port in $REDIS_CLUSTER_PORTS; do
    redis_stop_node "$REDIS_CLUSTER_BASEDIR/$port" "${pids[i]:-}"
    i=$((i + 1))
  done
  echo "redis-cluster: stopped (ports $REDIS_CLUSTER_PORTS)"
  redis_cluster_cleanup
}

redis_cluster_status() {
  if redis_cluster_running; then
    if redis_cluster_ok; then
      echo "redis-cluster: running ($REDIS_CLUSTER_ADDRESSES, dir $REDIS_CLUSTER_BASEDIR)"
      return 0
    fi
    echo "redis-cluster: $(redis_cluster_alive) of $redis_cluster_size nodes alive, cluster_state not ok"
    return 1
  fi
  echo "redis-cluster: not running"
  return 3
}

# --- dispatch

(($# == 2)) || usage
action=$1 service=$2
# More services live one file each in scripts/services.d/<name>.sh, defining <name>_start,
# <name>_stop and <name>_status (dashes in the name become underscores) with the helpers above.
services_d=$(dirname "${BASH_SOURCE[0]}")/services.d
known="mariadb redis redis-cluster"
for f in "$services_d"/*.sh; do
  [[ -e $f ]] && known+=" $(basename "$f" .sh)"
done
case " $known " in
  *" $service "*) ;;
  *) die "unknown service '$service' (known: ${known// /, })" ;;
esac
if [[ -f $services_d/$service.sh ]]; then
  # shellcheck disable=SC1090
  source "$services_d/$service.sh"
fi
case $action in
  start | stop | status) ;;
  *) usage ;;
esac

mkdir -p "$services_dir"
# One start/stop at a time per services dir (concurrent test runs share it).
exec 9>"$services_dir/$service.lock"
flock -w 120 9 || die "another services.sh holds $services_dir/$service.lock for over 120s"
"${service//-/_}_${action}"
