#!/usr/bin/env bash
# A local imd cluster on loopback, as docs/architecture.md §4 draws it, for tests and development:
#
#   scripts/cluster.sh up|down|status
#   scripts/cluster.sh kill|start <node>     (kill: kill -9; start: start it again; <node> may
#                                            also be nginx: kill -9 of its master and workers)
#   scripts/cluster.sh canary PERCENT [ID,...] | canary off
#                                            route the allow-listed users and PERCENT% of the
#                                            others to gateway2, the rest to gateway1; off: both
#                                            gateways for everyone again (the rollback)
#   scripts/cluster.sh upgrade [node...]     rolling upgrade: one process at a time (default:
#                                            logic1 logic2 api gateway1 gateway2), SIGTERM (drain),
#                                            wait for it to exit, start it with IMD_NEW_BIN and
#                                            IMD_UPGRADE_ARGS, wait for its /readyz, next
#
# `up` starts MariaDB, a 3-master Redis Cluster, NATS with JetStream and etcd (through
# scripts/services.sh, data in temporary directories), then five imd processes:
#   api        roles=api        REST and the web client        127.0.0.1:PORT+1
#   gateway1   roles=gateway    WebSocket + gRPC Push           127.0.0.1:PORT+2 (Push PORT+12)
#   gateway2   roles=gateway                                    127.0.0.1:PORT+3 (Push PORT+13)
#   logic1     roles=logic      JetStream consumers             127.0.0.1:PORT+4 (/healthz only)
#   logic2     roles=logic                                      127.0.0.1:PORT+5
# and nginx on 127.0.0.1:PORT in front of them: /ws round robin over the gateways (WebSocket
# upgrade), everything else to the api process. Clients use http://127.0.0.1:PORT/ as they
# would use a standalone imd. `up` (and `start`) return once every process answers /readyz
# (its engines answer), before nginx routes to it.
#
# Environment:
#   IMD_CLUSTER_DIR    state, logs and configs (default /tmp/imd-cluster)
#   IMD_CLUSTER_PORT   nginx's port; imd processes use the next ports (default 25080)
#   IMD_BIN            the imd binary (default build/src/app/imd)
#   IMD_CLUSTER_ARGS   extra arguments for every imd process (e.g. --nats-ack-wait-s 2)
#   IMD_CLUSTER_START_TIMEOUT_S   bounded wait for each process (default 60)
#   IMD_NEW_BIN        upgrade: the new binary (default IMD_BIN); IMD_UPGRADE_ARGS: arguments it
#                      gets besides IMD_CLUSTER_ARGS (e.g. --version 0.2.0). Both are kept in
#                      <node>/imd.bin and <node>/imd.args: a later `start` of that node uses them.
# The services use PORT+6 (MariaDB), PORT+7 (NATS), PORT+8/9 (etcd); Redis Cluster picks
# free ports from 19001.
#
# State: ${IMD_CLUSTER_DIR}/cluster.env (shell syntax): CLUSTER_URL, CLUSTER_PORT, and for each
# node <NAME>_PID and <NAME>_URL (NAME upper case: API, GATEWAY1, ...). Each node logs to
# ${IMD_CLUSTER_DIR}/<node>/imd.log. Every wait is bounded; a failure says why and shows logs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/procs.sh
source "$root/scripts/lib/procs.sh"
dir=${IMD_CLUSTER_DIR:-/tmp/imd-cluster}
port=${IMD_CLUSTER_PORT:-25080}
bin=${IMD_BIN:-$root/build/src/app/imd}
start_timeout=${IMD_CLUSTER_START_TIMEOUT_S:-60}
services_dir=$dir/services
state=$dir/cluster.env
nodes=(api gateway1 gateway2 logic1 logic2)
services=(mariadb redis-cluster nats etcd)

die() {
  echo "cluster: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 up|down|status | kill|start api|gateway1|gateway2|logic1|logic2|nginx | upgrade [node...] | canary PERCENT [ID,...]|off" >&2
  exit 2
}

[[ $port =~ ^[0-9]+$ ]] && ((port > 1024 && port + 13 < 32768)) ||
  die "IMD_CLUSTER_PORT: '$port' is not a port in 1025..32754 (below the ephemeral range)"

# The services' ports come after the imd processes' (PORT+6..PORT+9), like them below the
# kernel's ephemeral range (32768+): there an outgoing connection may hold a port between
# a free-port check and the bind. Redis Cluster picks free ones from 19001 (bus ports +10000).
services() {
  IMD_SERVICES_DIR=$services_dir IMD_MARIADB_PORT=$((port + 6)) IMD_NATS_PORT=$((port + 7)) \
    IMD_ETCD_PORT=$((port + 8)) IMD_ETCD_PEER_PORT=$((port + 9)) IMD_REDIS_CLUSTER_PORT=0 \
    "$root/scripts/services.sh" "$@"
}

# Settings of node $1: "roles offset rpc_offset".
node_spec() {
  case $1 in
    api) echo "api 1 0" ;;
    gateway1) echo "gateway 2 12" ;;
    gateway2) echo "gateway 3 13" ;;
    logic1) echo "logic 4 0" ;;
    logic2) echo "logic 5 0" ;;
    *) usage ;;
  esac
}

node_port() {
  local spec
  read -r _ spec _ <<<"$(node_spec "$1")"
  echo $((port + spec))
}

upper() { echo "$1" | tr '[:lower:]' '[:upper:]'; }

healthy() {
  curl -fsS --max-time 2 "http://127.0.0.1:$1/healthz" >/dev/null 2>&1
}

# GET /readyz answers 200: the process's engines (MariaDB, Redis, NATS, etcd) answer and it is
# not draining. nginx OSS has no active health checks, so nothing is routed to a node before
# this passes (start_node waits on it) and nginx marks a refusing node failed (max_fails).
ready() {
  curl -fsS --max-time 3 "http://127.0.0.1:$1/readyz" >/dev/null 2>&1
}

show_log() {
  local log=$1
  if [[ -f $log ]]; then
    echo "cluster: last lines of $log:" >&2
    tail -n 30 "$log" >&2
  fi
}

node_pid() {
  local f=$dir/$1/imd.pid
  [[ -f $f ]] && cat "$f"
}

node_running() {
  pid_matches "$(node_pid "$1")" "$dir/$1/"
}

# The shared configuration of every imd process, from the services' state files.
write_config() {
  # shellcheck disable=SC1091
  source "$services_dir/mariadb.env"
  # shellcheck disable=SC1091
  source "$services_dir/redis-cluster.env"
  # shellcheck disable=SC1091
  source "$services_dir/nats.env"
  # shellcheck disable=SC1091
  source "$services_dir/etcd.env"
  # Every api and gateway process must accept the same tokens.
  if [[ ! -s $dir/jwt.secret ]]; then
    head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >"$dir/jwt.secret"
    chmod 600 "$dir/jwt.secret"
  fi
  umask 077
  cat >"$dir/cluster.toml" <<TOML
store = "mysql"
cache = "redis"
queue = "nats"
registry = "etcd"
log_level = "info"
# nginx: its X-Forwarded-For names the client (per-IP rate limits).
trusted_proxies = "127.0.0.1"

[auth]
jwt_secret = "$(cat "$dir/jwt.secret")"
password_hash = "min"

[mysql]
host = "$MARIADB_HOST"
port = $MARIADB_PORT
user = "$MARIADB_USER"
password = "$MARIADB_PASSWORD"
database = "$MARIADB_DATABASE"

[redis]
mode = "cluster"
addresses = "$REDIS_CLUSTER_ADDRESSES"
route_ttl_s = 15

[nats]
url = "$NATS_URL"

[etcd]
endpoints = "$ETCD_ENDPOINT"
lease_ttl_s = 5

[limits]
# Who may DM whom (docs/security.md): the suites run through this cluster DM fresh accounts
# that share no space. IMD_CLUSTER_DM_POLICY=shared_space gives the binary's default.
dm_policy = "${IMD_CLUSTER_DM_POLICY:-anyone}"
TOML
  umask 022
}

start_node() {
  local name=$1 roles offset rpc_offset
  read -r roles offset rpc_offset <<<"$(node_spec "$name")"
  if node_running "$name"; then
    echo "$name: already running (pid $(node_pid "$name"))"
    return 0
  fi
  local ndir=$dir/$name http=$((port + offset)) args=()
  mkdir -p "$ndir"
  args=(--config "$dir/cluster.toml" --roles "$roles" --listen "127.0.0.1:$http"
    --data-dir "$ndir/")
  if ((rpc_offset)); then args+=(--rpc-listen "127.0.0.1:$((port + rpc_offset))"); fi
  if [[ $roles == api && -f $root/web/dist/index.html ]]; then args+=(--web-root "$root/web/dist"); fi
  # After an upgrade the node keeps its new binary and arguments.
  local node_bin=$bin extra=''
  [[ -s $ndir/imd.bin ]] && node_bin=$(<"$ndir/imd.bin")
  [[ -f $ndir/imd.args ]] && extra=$(<"$ndir/imd.args")
  # shellcheck disable=SC2086
  setsid "$node_bin" "${args[@]}" ${IMD_CLUSTER_ARGS:-} $extra </dev/null >>"$ndir/imd.log" 2>&1 9>&- &
  echo $! >"$ndir/imd.pid"
  local pid=$! deadline=$((SECONDS + start_timeout))
  until ready "$http"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log "$ndir/imd.log"
      die "$name exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      show_log "$ndir/imd.log"
      curl -sS --max-time 3 "http://127.0.0.1:$http/readyz" >&2 || true
      die "$name was not ready within ${start_timeout}s"
    fi
    sleep 0.1
  done
  echo "$name: started (pid $pid, http 127.0.0.1:$http, roles $roles)"
}

stop_node() {
  local name=$1 pid
  pid=$(node_pid "$name") || true
  if pid_matches "$pid" "$dir/$name/"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while pid_matches "$pid" "$dir/$name/"; do
      if ((SECONDS >= deadline)); then
        echo "cluster: $name (pid $pid) did not stop within 15s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
    echo "$name: stopped"
  fi
  rm -f "$dir/$name/imd.pid"
}

# One process after the other: drain (SIGTERM: readiness fails, sends in hand stored and ACKed,
# WebSockets closed with 1001 so clients reconnect through nginx to the others), start the new
# binary, wait for /readyz, go on. A node that does not come back stops the upgrade (exit 1):
# the ones before run the new version, the rest the old one (docs/operations.md "Rolling upgrade").
upgrade() {
  local new=${IMD_NEW_BIN:-$bin} n
  [[ -x $new ]] || die "IMD_NEW_BIN: $new is not an executable"
  local order=("$@")
  ((${#order[@]})) || order=(logic1 logic2 api gateway1 gateway2)
  for n in "${order[@]}"; do node_spec "$n" >/dev/null; done
  for n in "${order[@]}"; do
    echo "upgrade: $n"
    stop_node "$n"
    printf '%s' "$new" >"$dir/$n/imd.bin"
    printf '%s' "${IMD_UPGRADE_ARGS:-}" >"$dir/$n/imd.args"
    start_node "$n"
    write_state
  done
  echo "upgrade: done (${order[*]})"
}

# The canary route (docs/operations.md "Canary release"): with $dir/nginx/canary present
# ("PERCENT USER_ID,USER_ID,..."), /ws asks the api whose connection it is
# (GET /api/v1/ws/route, nginx's auth_request), then sends the allow-listed users and PERCENT%
# of the others (split_clients: MurmurHash2 of the user id) to gateway2 (the canary) and
# everyone else to gateway1. Without the file both gateways share /ws (round robin).
canary_on() { [[ -s $dir/nginx/canary ]]; }

canary_http_conf() {
  canary_on || return 0
  local percent users
  read -r percent users <"$dir/nginx/canary"
  echo "  upstream imd_canary { server 127.0.0.1:$(node_port gateway2) max_fails=0; }"
  echo "  upstream imd_stable { server 127.0.0.1:$(node_port gateway1) max_fails=0; }"
  echo "  map \$request_uri \$imd_ws_credential {"
  echo "    \"~[?&](?<k>token|ticket)=(?<v>[^&]+)\" \"\$k=\$v\";"
  echo "    default \"\";"
  echo "  }"
  echo "  split_clients \"\${imd_user}\" \$imd_canary_share {"
  if ((percent > 0)); then echo "    $percent% imd_canary;"; fi
  echo "    * imd_stable;"
  echo "  }"
  echo "  map \$imd_user \$imd_pool {"
  local u
  for u in ${users//,/ }; do echo "    $u imd_canary;"; done
  echo "    default \$imd_canary_share;"
  echo "  }"
}

canary_ws_conf() {
  canary_on || return 0
  echo "    location = /_imd_ws_route {"
  echo "      internal;"
  echo "      proxy_pass http://imd_api/api/v1/ws/route?\$imd_ws_credential;"
  echo "      proxy_pass_request_body off;"
  echo "      proxy_set_header Content-Length \"\";"
  echo "      proxy_set_header X-Forwarded-For \$remote_addr;"
  echo "    }"
}

canary_ws_routing() {
  if canary_on; then
    echo "auth_request /_imd_ws_route;"
    echo "      auth_request_set \$imd_user \$upstream_http_x_imd_user;"
    echo "      proxy_pass http://\$imd_pool;"
  else
    echo "proxy_pass http://imd_gateways;"
  fi
}

# canary PERCENT [USER_ID,...] | canary off: writes the route and reloads nginx (open
# WebSockets stay where they are; new ones follow the new route).
canary() {
  case ${1:-} in
    off) rm -f "$dir/nginx/canary" ;;
    *)
      [[ ${1:-} =~ ^[0-9]+$ ]] && (($1 <= 100)) || die "canary: PERCENT must be 0..100, or off"
      [[ ${2:-} =~ ^[0-9,]*$ ]] || die "canary: the allow list is user ids separated by commas"
      mkdir -p "$dir/nginx"
      echo "$1 ${2:-}" >"$dir/nginx/canary"
      ;;
  esac
  local gen
  gen=$(date +%s%N)
  echo "$gen" >"$dir/nginx/generation"
  write_nginx_conf
  local pid
  pid=$(nginx_pid) || true
  pid_matches "$pid" nginx || die "nginx is not running"
  nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -t -q 2>&1 | tail -n 5 >&2 || true
  kill -HUP "$pid"
  # The reload is done once new connections reach workers of the new configuration only (the
  # old ones stop accepting once told to quit): wait for 10 answers in a row from it (bounded).
  local deadline=$((SECONDS + 15)) same=0
  while ((same < 10)); do
    ((SECONDS < deadline)) || die "nginx did not take the new configuration within 15s"
    if [[ $(curl -sS --max-time 2 "http://127.0.0.1:$port/_imd_nginx_generation" 2>/dev/null) == "$gen" ]]; then
      same=$((same + 1))
    else
      same=0
      sleep 0.05
    fi
  done
  if canary_on; then echo "canary: $(<"$dir/nginx/canary") (percent, allow list) -> gateway2"; else echo "canary: off"; fi
}

write_nginx_conf() {
  local user_line=''
  # As root, nginx's workers would switch to `nobody`, who may not use the temp dirs here.
  if [[ $(id -u) -eq 0 ]]; then user_line='user root;'; fi
  mkdir -p "$dir/nginx/tmp"
  cat >"$dir/nginx/nginx.conf" <<NGINX
$user_line
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/tmp/body;
  proxy_temp_path $dir/nginx/tmp/proxy;
  fastcgi_temp_path $dir/nginx/tmp/fastcgi;
  uwsgi_temp_path $dir/nginx/tmp/uwsgi;
  scgi_temp_path $dir/nginx/tmp/scgi;
  client_max_body_size 1m;

  map \$http_upgrade \$connection_upgrade {
    default upgrade;
    ''      close;
  }
  upstream imd_gateways {
    server 127.0.0.1:$(node_port gateway1) max_fails=0;
    server 127.0.0.1:$(node_port gateway2) max_fails=0;
  }
$(canary_http_conf)
  # Passive health checks (nginx OSS has no active ones); cluster.sh routes to a node only
  # once its /readyz passed. The api: a node that refuses or times out is skipped for
  # fail_timeout. The gateways: max_fails=0, because nginx clears a failure mark only when a
  # request through that server completes, and a WebSocket lasts for hours: one refused
  # connection would leave a restarted gateway with one trial connection per fail_timeout
  # ("no live upstreams" for tens of seconds). Instead a refused or timed-out connect (or a
  # 503 at the connection limit) goes to the next gateway at once (proxy_next_upstream).
  upstream imd_api {
    server 127.0.0.1:$(node_port api) max_fails=1 fail_timeout=5s;
    keepalive 16;
  }
  server {
    listen 127.0.0.1:$port;
    # Which configuration the workers run (a reload is done when new connections see the new one).
    location = /_imd_nginx_generation {
      return 200 "$(cat "$dir/nginx/generation" 2>/dev/null || echo 0)";
    }
$(canary_ws_conf)
    location = /ws {
      $(canary_ws_routing)
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_connect_timeout 2s;
      # Clients heartbeat every 30 s; an idle proxied socket lives a little longer.
      proxy_read_timeout 90s;
      proxy_send_timeout 90s;
      proxy_next_upstream error timeout http_503;
      proxy_next_upstream_tries 2;
    }
    location / {
      proxy_pass http://imd_api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_connect_timeout 2s;
    }
  }
}
NGINX
}

nginx_pid() {
  [[ -f $dir/nginx/nginx.pid ]] && cat "$dir/nginx/nginx.pid"
}

start_nginx() {
  if pid_matches "$(nginx_pid)" nginx; then
    echo "nginx: already running"
    return 0
  fi
  command -v nginx >/dev/null || die "nginx not found; install the Debian package nginx-light"
  write_nginx_conf
  nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" 9>&- \
    || { show_log "$dir/nginx/error.log"; die "nginx did not start"; }
  local deadline=$((SECONDS + 15))
  until healthy "$port"; do
    ((SECONDS < deadline)) || { show_log "$dir/nginx/error.log"; die "nginx on $port does not reach the api"; }
    sleep 0.1
  done
  echo "nginx: started (http://127.0.0.1:$port/)"
}

stop_nginx() {
  local pid
  pid=$(nginx_pid) || true
  if pid_matches "$pid" nginx; then
    kill -QUIT "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
      ((SECONDS < deadline)) || { kill -KILL "$pid" 2>/dev/null || true; break; }
      sleep 0.1
    done
    echo "nginx: stopped"
  fi
  rm -f "$dir/nginx/nginx.pid"
}

write_state() {
  {
    printf 'CLUSTER_URL=%q\n' "http://127.0.0.1:$port"
    printf 'CLUSTER_PORT=%q\n' "$port"
    printf 'CLUSTER_DIR=%q\n' "$dir"
    local n
    for n in "${nodes[@]}"; do
      printf '%s_PID=%q\n' "$(upper "$n")" "$(node_pid "$n" || true)"
      printf '%s_URL=%q\n' "$(upper "$n")" "http://127.0.0.1:$(node_port "$n")"
    done
  } >"$state.tmp"
  mv "$state.tmp" "$state"
}

up() {
  [[ -x $bin ]] || die "$bin not found: build it first (scripts/build.sh imd)"
  mkdir -p "$dir"
  local s
  for s in "${services[@]}"; do services start "$s"; done
  write_config
  # The api process first: it runs the schema migrations before anyone else connects.
  local n
  for n in "${nodes[@]}"; do start_node "$n"; done
  start_nginx
  write_state
  echo "cluster: up at http://127.0.0.1:$port/ (state in $state)"
}

down() {
  stop_nginx
  rm -f "$dir/nginx/canary"
  local i
  for ((i = ${#nodes[@]} - 1; i >= 0; i--)); do
    stop_node "${nodes[i]}"
    rm -f "$dir/${nodes[i]}/imd.bin" "$dir/${nodes[i]}/imd.args"  # the next `up` is the IMD_BIN one
  done
  for s in "${services[@]}"; do services stop "$s"; done
  rm -f "$state"
  echo "cluster: down"
}

status() {
  local rc=0 n s
  for s in "${services[@]}"; do services status "$s" || rc=3; done
  for n in "${nodes[@]}"; do
    if node_running "$n" && healthy "$(node_port "$n")"; then
      local readiness=ready version
      ready "$(node_port "$n")" || readiness="NOT READY"
      version=$(curl -sS --max-time 3 "http://127.0.0.1:$(node_port "$n")/readyz" 2>/dev/null |
        sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
      echo "$n: running (pid $(node_pid "$n"), http 127.0.0.1:$(node_port "$n"), $readiness, version ${version:-?})"
    else
      echo "$n: not running"
      rc=3
    fi
  done
  if pid_matches "$(nginx_pid)" nginx; then echo "nginx: running (127.0.0.1:$port)"; else
    echo "nginx: not running"
    rc=3
  fi
  return $rc
}

(($# >= 1)) || usage
mkdir -p "$dir"
exec 9>"$dir/cluster.lock"
flock -w 300 9 || die "another cluster.sh holds $dir/cluster.lock"
case $1 in
  up) up ;;
  down) down ;;
  status) status ;;
  upgrade)
    shift
    upgrade "$@"
    ;;
  canary)
    shift
    canary "$@"
    ;;
  kill)
    (($# == 2)) || usage
    if [[ $2 == nginx ]]; then
      # The master and its workers (one process group: nginx's master made it with setsid).
      pid=$(nginx_pid) || true
      pid_matches "$pid" nginx || die "nginx is not running"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
      rm -f "$dir/nginx/nginx.pid"
      echo "nginx: killed (pid $pid and its workers)"
      exit 0
    fi
    node_spec "$2" >/dev/null
    pid=$(node_pid "$2") || true
    pid_matches "$pid" "$dir/$2/" || die "$2 is not running"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$dir/$2/imd.pid"
    write_state
    echo "$2: killed (pid $pid)"
    ;;
  start)
    (($# == 2)) || usage
    if [[ $2 == nginx ]]; then
      start_nginx
      exit 0
    fi
    node_spec "$2" >/dev/null
    start_node "$2"
    write_state
    ;;
  *) usage ;;
esac
