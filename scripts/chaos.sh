#!/usr/bin/env bash
# Chaos drills: steady DM traffic from real WebSocket clients while processes are killed,
# paused and restarted one at a time, then an independent history check
# (tools/chaos/drill.py: no ACKed message lost, none duplicated, none out of order per
# conversation, every recipient complete; a table per fault with the recovery time, refused
# sends and re-deliveries).
#
#   scripts/chaos.sh [standalone] [--short]   a standalone imd (started here, temp data dir):
#                                             kill -9 + restart, SIGSTOP 3 s, SIGTERM + restart;
#                                             as root also a full disk (the data on a 64 MiB
#                                             tmpfs filled for 8 s; --short: 32 MiB for 5 s)
#   scripts/chaos.sh cluster                  the local cluster (scripts/cluster.sh, started
#                                             here unless IMD_CLUSTER_DIR has one up): kill -9
#                                             and restart each gateway, logic worker and the api
#                                             process, a Redis master, NATS, etcd, MariaDB;
#                                             SIGSTOP a gateway for 3 s; kill -9 nginx (master and
#                                             workers) and start it again
#   scripts/chaos.sh upgrade                  the local cluster under the same traffic while
#                                             `scripts/cluster.sh upgrade` replaces every process
#                                             one by one (IMD_NEW_BIN, default IMD_BIN; the new
#                                             processes report version IMD_UPGRADE_VERSION, default
#                                             "<old>-next"), then the same history check and a
#                                             check that every process reports the new version
#
# --short (the one scripts/test.sh runs, well under 2 minutes): 2 s of steady traffic between
# faults, fewer clients and a shorter full disk. Exit status 0 when every fault recovered and the check passed.
#
# Environment:
#   IMD_BIN            the imd binary (default build/src/app/imd)
#   IMD_CHAOS_DIR      logs and the standalone data (default: a new /tmp/imd-chaos.XXXXXX)
#   IMD_CHAOS_PAIRS, IMD_CHAOS_RATE, IMD_CHAOS_STEADY_S   clients, sends/s each, seconds between
#   IMD_CHAOS_ONLY     cluster: run only the faults whose names match this extended regex
#   IMD_CLUSTER_DIR, IMD_CLUSTER_PORT   as for scripts/cluster.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/procs.sh
source "$root/scripts/lib/procs.sh"
bin=${IMD_BIN:-$root/build/src/app/imd}
py=/usr/bin/python3

die() {
  echo "chaos: $*" >&2
  exit 1
}

free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_ready() {  # url, seconds
  local deadline=$((SECONDS + $2))
  until curl -fsS --max-time 2 "$1/readyz" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# --- internal commands the drill runs as fault injection and recovery ----------------------

# __start DIR PORT: (re)starts the standalone imd on DIR/data, waits for /readyz.
start_standalone() {
  local d=$1 p=$2
  local extra=()
  [[ -f $d/imd.args ]] && read -ra extra <"$d/imd.args"
  # The drill's senders DM recipients they share no space with: DMs to anyone are allowed
  # (limits.dm_policy; the default, shared_space, is access_test's).
  setsid "$bin" --listen "127.0.0.1:$p" --data-dir "$d/data" --auth-password-hash min \
    --limits-http-rate-per-s 100000 --limits-http-burst 100000 \
    --limits-auth-rate-per-min 100000 --limits-dm-policy anyone "${extra[@]}" \
    </dev/null >>"$d/imd.log" 2>&1 &
  echo $! >"$d/imd.pid"
  disown  # killing it is the drill: no "Killed" notice from this shell
  wait_ready "http://127.0.0.1:$p" 60 || { tail -n 20 "$d/imd.log" >&2; die "imd not ready"; }
}

# __kill9 NAME PID_FILE_OR_PID STATE_DIR: kill -9, remembering the command line and directory
# so that __respawn NAME STATE_DIR starts the same process again (same data, same ports).
kill9_remember() {
  local name=$1 pid=$2 st=$3
  [[ -f $pid ]] && pid=$(<"$pid")
  [[ -r /proc/$pid/cmdline ]] || die "$name: no process $pid"
  cp "/proc/$pid/cmdline" "$st/$name.cmdline"
  readlink "/proc/$pid/cwd" >"$st/$name.cwd"
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

# __respawn NAME STATE_DIR [ENV_FILE VAR]: starts what __kill9 NAME killed; with ENV_FILE, the
# new pid replaces VAR's value there (so scripts/services.sh stop finds the new process).
respawn() {
  local name=$1 st=$2 env=${3:-} var=${4:-} cmd pid
  mapfile -d '' -t cmd <"$st/$name.cmdline"
  cd "$(<"$st/$name.cwd")"
  setsid "${cmd[@]}" </dev/null >>"$st/$name.respawn.log" 2>&1 9>&- &
  pid=$!
  if [[ -n $env ]]; then sed -i "s/^$var=.*/$var=$pid/" "$env"; fi
}

# __netem_up STATE_DIR PORT DELAY_MS: a network namespace with a veth pair to this one, netem
# delaying every packet that leaves either end by DELAY_MS, and socat relays so that
# ADDR:PORT (ADDR written to STATE_DIR/netem.addr, inside the namespace) reaches
# 127.0.0.1:PORT here through it: a process told to use ADDR:PORT talks to that service over
# the slow link, everything else stays fast. __netem_down STATE_DIR removes it all.
netem_up() {
  local st=$1 p=$2 delay=$3 ns
  ns=imdc$$
  local sub=$((200 + $$ % 50)).$(($$ % 250))
  local host=${ns}h peer=${ns}n hip=10.$sub.1 nip=10.$sub.2
  echo "$ns" >"$st/netem.ns"
  ip netns add "$ns"
  ip link add "$host" type veth peer name "$peer"
  ip link set "$peer" netns "$ns"
  ip addr add "$hip/30" dev "$host"
  ip link set "$host" up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip addr add "$nip/30" dev "$peer"
  ip netns exec "$ns" ip link set "$peer" up
  setsid socat "TCP-LISTEN:$p,bind=$hip,fork,reuseaddr" "TCP:127.0.0.1:$p" </dev/null >/dev/null 2>&1 &
  echo $! >"$st/netem.relay1"
  if tc qdisc add dev "$host" root netem delay "${delay}ms" 2>/dev/null &&
    ip netns exec "$ns" tc qdisc add dev "$peer" root netem delay "${delay}ms"; then
    echo "netem: ${delay} ms each way on the veth pair of $ns"
    setsid ip netns exec "$ns" socat "TCP-LISTEN:$p,bind=$nip,fork,reuseaddr" "TCP:$hip:$p" \
      </dev/null >/dev/null 2>&1 &
  else
    # No sch_netem in this kernel: the relay in the namespace delays instead (both veth
    # crossings' worth, so the round trip is the same).
    echo "netem: no netem qdisc here; $((2 * delay)) ms each way in a relay inside $ns"
    setsid ip netns exec "$ns" "$py" "$root/tools/chaos/slow_relay.py" --listen "$nip:$p" \
      --target "$hip:$p" --delay-ms $((2 * delay)) </dev/null >/dev/null 2>&1 &
  fi
  echo $! >"$st/netem.relay2"
  echo "$nip" >"$st/netem.addr"
  local deadline=$((SECONDS + 10))
  until (exec 3<>"/dev/tcp/$nip/$p") 2>/dev/null; do
    ((SECONDS < deadline)) || die "netem: $nip:$p does not answer"
    sleep 0.1
  done
}

netem_down() {
  local st=$1 f
  for f in "$st/netem.relay1" "$st/netem.relay2"; do
    [[ -f $f ]] && kill "$(<"$f")" 2>/dev/null || true
    rm -f "$f"
  done
  if [[ -f $st/netem.ns ]]; then
    ip netns del "$(<"$st/netem.ns")" 2>/dev/null || true
    ip link del "$(<"$st/netem.ns")h" 2>/dev/null || true
    rm -f "$st/netem.ns" "$st/netem.addr"
  fi
}

case ${1:-} in
  __start) start_standalone "$2" "$3"; exit 0 ;;
  __netem_up) netem_up "$2" "$3" "$4"; exit 0 ;;
  __netem_down) netem_down "$2"; exit 0 ;;
  __kill9) kill9_remember "$2" "$3" "$4"; exit 0 ;;
  __respawn) respawn "$2" "$3" "${4:-}" "${5:-}"; exit 0 ;;
esac

mode=standalone short=0
for a in "$@"; do
  case $a in
    standalone | cluster | upgrade) mode=$a ;;
    --short) short=1 ;;
    *) die "usage: $0 [standalone|cluster|upgrade] [--short]" ;;
  esac
done
[[ -x $bin ]] || die "$bin not found: build it first (scripts/build.sh imd)"
"$py" -c 'import websockets' 2>/dev/null || die "python3-websockets is missing (scripts/setup.sh)"

dir=${IMD_CHAOS_DIR:-$(mktemp -d /tmp/imd-chaos.XXXXXX)}
mkdir -p "$dir"
self=$root/scripts/chaos.sh
pairs=${IMD_CHAOS_PAIRS:-$((short ? 3 : 6))}
rate=${IMD_CHAOS_RATE:-20}
steady=${IMD_CHAOS_STEADY_S:-$((short ? 2 : 5))}
drill=("$py" "$root/tools/chaos/drill.py" --out "$dir/logs" --pairs "$pairs" --rate "$rate"
  --steady "$steady")

if [[ $mode == standalone ]]; then
  port=$(free_port)
  cleanup() {
    local pid
    pid=$(cat "$dir/imd.pid" 2>/dev/null) || return 0
    kill -CONT "$pid" 2>/dev/null || true
    if pid_matches "$pid" "$dir/data"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  }
  trap 'cleanup; umount "$dir/data" 2>/dev/null || true' EXIT
  pidof_imd="\$(cat '$dir/imd.pid')"
  restart="'$self' __start '$dir' $port"
  faults=(--fault kill9 "kill -KILL $pidof_imd; while kill -0 $pidof_imd 2>/dev/null; do sleep 0.05; done" "$restart"
    --fault sigstop-3s "kill -STOP $pidof_imd" "sleep 3; kill -CONT $pidof_imd"
    --fault sigterm "kill -TERM $pidof_imd; while kill -0 $pidof_imd 2>/dev/null; do sleep 0.05; done" "$restart")
  # Disk full (as root: a small tmpfs holds the data): a file fills the rest for a while, then
  # goes. Sends meanwhile are answered unavailable and retried; nothing ACKed is lost (the
  # history check), the server serves again once the space is back (the fault's recovery),
  # and the disk really was full (some sends were refused). A small WAL (checkpoint restart at
  # 1 MiB) makes the store need new space soon. --short: 32 MiB filled for 5 s.
  disk_fault='' disk_mib=$((short ? 32 : 64)) full_s=$((short ? 5 : 8))
  if [[ $(id -u) -eq 0 ]] && mkdir -p "$dir/data" &&
    mount -t tmpfs -o "size=${disk_mib}m,mode=0700" imd-chaos "$dir/data" 2>/dev/null; then
    echo "--sqlite-checkpoint-restart-bytes 1048576" >"$dir/imd.args"
    disk_fault=disk-full-${full_s}s
    faults+=(--fault "$disk_fault"
      "dd if=/dev/zero of='$dir/data/fill' bs=64k 2>/dev/null; sleep $full_s"
      "rm -f '$dir/data/fill'")
  else
    echo "chaos: no disk-full fault (needs root to mount a small tmpfs)"
  fi
  start_standalone "$dir" "$port"
  echo "chaos: standalone imd on 127.0.0.1:$port, logs in $dir"
  rc=0
  "${drill[@]}" --url "http://127.0.0.1:$port" "${faults[@]}" || rc=$?
  if [[ -n $disk_fault ]] && ((rc == 0)) &&
    ! "$py" -c 'import json, sys
rows = json.load(open(sys.argv[1]))["faults"]
sys.exit(0 if any(r["fault"] == sys.argv[2] and r["refused"] > 0 for r in rows) else 1)' \
      "$dir/logs/result.json" "$disk_fault"; then
    echo "chaos: FAILED: $disk_fault refused no send: the disk was never full"
    rc=1
  fi
  exit $rc
fi

# --- cluster ---------------------------------------------------------------------------------
cdir=${IMD_CLUSTER_DIR:-/tmp/imd-cluster}
export IMD_CLUSTER_DIR=$cdir
started_cluster=0
if ! "$root/scripts/cluster.sh" status >/dev/null 2>&1; then
  "$root/scripts/cluster.sh" up
  started_cluster=1
fi
cleanup_cluster() {
  # A paused process must not outlive the drill.
  local f
  for f in "$cdir"/*/imd.pid; do [[ -f $f ]] && kill -CONT "$(<"$f")" 2>/dev/null || true; done
  netem_down "$dir"
  if ((started_cluster)); then "$root/scripts/cluster.sh" down || true; fi
}
trap cleanup_cluster EXIT
# shellcheck disable=SC1091
source "$cdir/cluster.env"
sdir=$cdir/services
# shellcheck disable=SC1091
source "$sdir/redis-cluster.env"
redis_port=${REDIS_CLUSTER_PORTS%%[, ]*}
cs="'$root/scripts/cluster.sh'"
faults=()
if [[ $mode == upgrade ]]; then
  old=$(curl -sS --max-time 3 "$API_URL/readyz" | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
  new_version=${IMD_UPGRADE_VERSION:-${old:-unknown}-next}
  urls="$API_URL $GATEWAY1_URL $GATEWAY2_URL $LOGIC1_URL $LOGIC2_URL"
  check_versions="for u in $urls; do curl -sS --max-time 3 \$u/readyz | grep -q '\"version\":\"$new_version\"' || { echo \"\$u does not report $new_version\"; exit 1; }; done"
  echo "chaos: rolling upgrade of the cluster at $CLUSTER_URL from ${old:-?} to $new_version"
  set +e
  IMD_NEW_BIN=${IMD_NEW_BIN:-$bin} IMD_UPGRADE_ARGS="--version $new_version" \
    "${drill[@]}" --url "$CLUSTER_URL" --recovery-timeout 120 \
    --fault rolling-upgrade "$cs upgrade" "$check_versions"
  rc=$?
  # Every process runs the new version now (the drill only reports a failed recover command).
  bash -c "$check_versions" || rc=1
  set -e
  # Leave the cluster as it was found: every process back on IMD_BIN and its own version.
  IMD_NEW_BIN=$bin IMD_UPGRADE_ARGS='' "$root/scripts/cluster.sh" upgrade >/dev/null || rc=1
  exit $rc
fi
for n in gateway1 gateway2 logic1 logic2 api; do
  faults+=(--fault "kill9-$n" "$cs kill $n" "$cs start $n")
done
# Paused for less than the etcd lease TTL (5 s in cluster.sh's config): a longer pause makes
# the gateway stop itself (its lease is lost), which kill -9 above already covers; `start`
# brings it back should it have stopped.
faults+=(--fault sigstop-gateway1 "kill -STOP \$(cat '$cdir/gateway1/imd.pid')"
  "sleep 3; kill -CONT \$(cat '$cdir/gateway1/imd.pid'); sleep 2; $cs start gateway1")
# redis-server rewrites its process title: it is started again from its redis.conf, as
# scripts/services.sh documents, and rejoins as the same master (nodes.conf).
rconf=$REDIS_CLUSTER_BASEDIR/$redis_port/redis.conf
faults+=(--fault kill9-redis-master
  "kill -KILL \$(cat '$REDIS_CLUSTER_BASEDIR/$redis_port/redis.pid')"
  "setsid redis-server '$rconf' </dev/null >/dev/null 2>&1 & until redis-cli -p $redis_port cluster info 2>/dev/null | grep -q cluster_state:ok; do sleep 0.2; done")
faults+=(--fault kill9-nats "'$self' __kill9 nats \$(. '$sdir/nats.env'; echo \$NATS_PID) '$dir'"
  "'$self' __respawn nats '$dir' '$sdir/nats.env' NATS_PID")
faults+=(--fault kill9-etcd "'$self' __kill9 etcd \$(. '$sdir/etcd.env'; echo \$ETCD_PID) '$dir'"
  "'$self' __respawn etcd '$dir' '$sdir/etcd.env' ETCD_PID")
faults+=(--fault kill9-nginx "$cs kill nginx" "$cs start nginx")
# A slow network (root, iproute2 and socat: scripts/setup.sh): logic2 restarted (drained) to
# reach MariaDB through a namespace whose veth delays each packet 25 ms each way (about 100 ms
# per round trip), kept so for 8 s of traffic, then restarted on the direct path.
if [[ $(id -u) -eq 0 ]] && command -v ip >/dev/null && command -v tc >/dev/null &&
  command -v socat >/dev/null; then
  # shellcheck disable=SC1091
  mport=$(. "$sdir/mariadb.env"; echo "$MARIADB_PORT")
  faults+=(--fault netem-logic2-mariadb
    "'$self' __netem_up '$dir' $mport 25 && IMD_UPGRADE_ARGS=\"--mysql-host \$(cat '$dir/netem.addr')\" $cs upgrade logic2 && sleep 8"
    "IMD_UPGRADE_ARGS= $cs upgrade logic2; '$self' __netem_down '$dir'")
else
  echo "chaos: no netem fault (needs root, iproute2 and socat: scripts/setup.sh)"
fi
faults+=(--fault kill9-mariadb
  "'$self' __kill9 mariadb \$(. '$sdir/mariadb.env'; echo \$MARIADB_PID) '$dir'"
  "'$self' __respawn mariadb '$dir' '$sdir/mariadb.env' MARIADB_PID")
# IMD_CHAOS_ONLY (an extended regex): only the faults whose names match (e.g. 'nginx|netem').
if [[ -n ${IMD_CHAOS_ONLY:-} ]]; then
  kept=()
  for ((i = 0; i < ${#faults[@]}; i += 4)); do
    [[ ${faults[i + 1]} =~ $IMD_CHAOS_ONLY ]] && kept+=("${faults[@]:i:4}")
  done
  faults=("${kept[@]}")
  ((${#faults[@]})) || die "IMD_CHAOS_ONLY='$IMD_CHAOS_ONLY' matches no fault"
fi
echo "chaos: cluster at $CLUSTER_URL, logs in $dir"
"${drill[@]}" --url "$CLUSTER_URL" --recovery-timeout 120 "${faults[@]}"
