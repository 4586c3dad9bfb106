#!/usr/bin/env bash
# The mixed-version drill: a real old build and the current one in one cluster.
#
#   scripts/upgrade-drill.sh [--from REV] [--short] [--build-only | --no-build]
#
# 1. Builds the `imd` target of REV (default: the last commit of main before 2026-12-07 08:00,
#    about a day older than the branch this script came with, with older schema migrations)
#    from `git archive` into ${IMD_OLD_DIR:-/tmp/imd-old-<rev>} (CMake + Ninja -j2, ccache
#    when present; a finished build of the same REV is reused).
# 2. Starts the local cluster (scripts/cluster.sh up: MariaDB, Redis Cluster, NATS, etcd, two
#    gateways, two logic workers, one api process, nginx) on the OLD binary.
# 3. Runs the chaos drill's steady DM traffic and history checker (tools/chaos/drill.py, as
#    scripts/chaos.sh does) while `scripts/cluster.sh upgrade NODE` replaces one process at a
#    time with IMD_NEW_BIN (default build/src/app/imd; `--version new-<HEAD>`): logic1, logic2,
#    api, gateway1, gateway2 (the first new process applies the new schema migrations while
#    the old ones serve); then the rollback leg: gateway2 back to the old binary, gateway1
#    drained and restarted so that its clients move to the old gateway2.
# 4. Checks: no ACKed message lost, none duplicated, none out of order per conversation, every
#    recipient complete after resync (the drill's checker); every upgraded node reports the
#    new version, the rolled-back one none (the old build has no version); clients reached the
#    old gateway2; a token the new api issued opens a WebSocket there, and a removal from one
#    channel is not told there as a removal from the space (tools/chaos/mixed_probe.py).
#    Prints a table per step: time from SIGTERM to /readyz of the replacement, the drill's
#    recovery time, refused sends, re-deliveries, reconnects, ERROR and WARN lines in every
#    process's log during the step.
#
# --short: 3 pairs and 2 s of traffic between steps (default 6 pairs, 5 s). --build-only: step 1
# alone (to build outside the lock the cluster run is wrapped in). --no-build: no step 1, and
# without a finished build of REV the drill is skipped (exit 0, saying so), as scripts/test.sh
# runs it. Exit status 0 when every step recovered and every check passed. The cluster is this
# script's own (a temporary IMD_CLUSTER_DIR, IMD_CLUSTER_PORT default 27080), down at the end.
#
# Environment: IMD_NEW_BIN, IMD_OLD_DIR, IMD_CLUSTER_PORT, IMD_UPGRADE_DRILL_DIR (logs; default
# a new /tmp/imd-upgrade.XXXXXX), IMD_CHAOS_PAIRS, IMD_CHAOS_RATE, IMD_CHAOS_STEADY_S.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=/usr/bin/python3
# The commit about a day before this drill was written (docs/operations.md "Mixed-version drill").
default_from_date='2026-12-07 08:00'

die() {
  echo "upgrade-drill: $*" >&2
  exit 1
}

nodes=(api gateway1 gateway2 logic1 logic2)

# The version node $1's /readyz reports (empty: none, as builds from before versions).
version_of() {
  local var
  var=$(echo "$1" | tr '[:lower:]' '[:upper:]')_URL
  # shellcheck disable=SC1091
  [[ -n ${!var:-} ]] || source "$IMD_CLUSTER_DIR/cluster.env"
  curl -sS --max-time 3 "${!var}/readyz" | sed -n 's/.*"version":"\([^"]*\)".*/\1/p'
}

# The byte size of every process log before step $2 (in $1/sizes-STEP): the report counts
# the lines each step added.
sizes() {
  local n
  for n in "${nodes[@]}"; do
    echo "$n $(stat -c %s "$IMD_CLUSTER_DIR/$n/imd.log" 2>/dev/null || echo 0)"
  done >"$1/sizes-$2"
}

# The MariaDB schema migrations applied (the first new process applies the newer ones).
schema_versions() {
  (
    # shellcheck disable=SC1091
    source "$IMD_CLUSTER_DIR/services/mariadb.env"
    MYSQL_PWD=$MARIADB_PASSWORD mariadb --protocol=tcp -h "$MARIADB_HOST" -P "$MARIADB_PORT" \
      -u "$MARIADB_USER" -N -e 'SELECT GROUP_CONCAT(version ORDER BY version) FROM schema_version' \
      "$MARIADB_DATABASE"
  )
}

# __step DIR STEP NODE BIN ARGS (the drill's inject command): replaces NODE with BIN and ARGS
# through `cluster.sh upgrade`, timed from the SIGTERM to the new process's /readyz.
step() {
  local d=$1 name=$2 node=$3 t0 rc=0
  sizes "$d" "$name"
  t0=$(date +%s%N)
  IMD_NEW_BIN=$4 IMD_UPGRADE_ARGS=$5 "$root/scripts/cluster.sh" upgrade "$node" >>"$d/$name.log" 2>&1 || rc=$?
  awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f\n", (b - a) / 1e9 }' >"$d/$name.ready_s"
  schema_versions >"$d/$name.schema" || true
  if ((rc != 0)); then
    tail -n 20 "$d/$name.log" >&2
    # The old build on the new schema: what an operator must know before relying on a rollback.
    [[ $name == rollback-* ]] && echo "upgrade-drill: ROLLBACK NOT POSSIBLE: the old $node did" \
      "not come back on the migrated schema (docs/operations.md \"Mixed-version drill\")" >&2
    exit "$rc"
  fi
}

case ${1:-} in
  __step)
    step "$2" "$3" "$4" "$5" "$6"
    exit 0
    ;;
  __version)
    version_of "$2"
    exit 0
    ;;
esac

from='' short=0 build_only=0 no_build=0
while (($#)); do
  case $1 in
    --from)
      (($# >= 2)) || die "--from needs a revision"
      from=$2
      shift
      ;;
    --short) short=1 ;;
    --build-only) build_only=1 ;;
    --no-build) no_build=1 ;;
    *) die "usage: $0 [--from REV] [--short] [--build-only | --no-build]" ;;
  esac
  shift
done
[[ -n $from ]] || from=$(git -C "$root" rev-list -1 --before="$default_from_date" main)
rev=$(git -C "$root" rev-parse --verify --quiet "$from^{commit}") || die "--from: '$from' is not a commit"
new_bin=${IMD_NEW_BIN:-$root/build/src/app/imd}
[[ -x $new_bin ]] || die "$new_bin not found: build it first (scripts/build.sh imd)"
"$py" -c 'import websockets' 2>/dev/null || die "python3-websockets is missing (scripts/setup.sh)"
head_rev=$(git -C "$root" rev-parse --short=12 HEAD)
new_version=${IMD_UPGRADE_VERSION:-new-$head_rev}

# --- the old build ---------------------------------------------------------------------------
old_dir=${IMD_OLD_DIR:-/tmp/imd-old-${rev:0:12}}
old_bin=$old_dir/tree/build/src/app/imd
build_old() {
  if ((no_build)) && [[ ! -x $old_bin || $(cat "$old_dir/built" 2>/dev/null) != "$rev" ]]; then
    echo "upgrade-drill: SKIPPED: no build of ${rev:0:12} in $old_dir ($0 --build-only makes one)"
    exit 0
  fi
  if [[ -x $old_bin && $(cat "$old_dir/built" 2>/dev/null) == "$rev" ]]; then
    echo "upgrade-drill: old build of ${rev:0:12} reused ($old_bin)"
    return 0
  fi
  local t0=$SECONDS launcher=()
  rm -rf "$old_dir/tree" "$old_dir/built"
  mkdir -p "$old_dir/tree"
  git -C "$root" archive "$rev" | tar -x -C "$old_dir/tree"
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # The tree and its build directory lie as in a worktree (build/ inside it): with the base
  # directory at the tree, ccache sees the same relative paths and hits what a worktree of REV
  # compiled before.
  export CCACHE_BASEDIR=$old_dir/tree CCACHE_NOHASHDIR=1
  cmake -G Ninja -S "$old_dir/tree" -B "$old_dir/tree/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "${launcher[@]}" >"$old_dir/cmake.log" 2>&1 || { tail -n 30 "$old_dir/cmake.log" >&2; die "cmake of ${rev:0:12} failed"; }
  (cd "$old_dir/tree/build" && ninja -j "${IMD_JOBS:-2}" imd) >"$old_dir/ninja.log" 2>&1 ||
    { tail -n 30 "$old_dir/ninja.log" >&2; die "the build of ${rev:0:12} failed"; }
  echo "$rev" >"$old_dir/built"
  echo "upgrade-drill: built ${rev:0:12} in $((SECONDS - t0)) s ($old_bin)"
}
build_old
((build_only == 0)) || exit 0

# --- the cluster on the old binary -----------------------------------------------------------
dir=${IMD_UPGRADE_DRILL_DIR:-$(mktemp -d /tmp/imd-upgrade.XXXXXX)}
mkdir -p "$dir"
export IMD_CLUSTER_DIR=$dir/cluster IMD_CLUSTER_PORT=${IMD_CLUSTER_PORT:-27080} IMD_BIN=$old_bin
# Flags both builds know (the old one refuses what it does not know: --version, for one).
export IMD_CLUSTER_ARGS="--nats-ack-wait-s 3 --limits-ws-rate-per-s 100000 --limits-ws-burst 100000 --limits-http-rate-per-s 100000 --limits-http-burst 100000 --limits-auth-rate-per-min 1000000"
cs=$root/scripts/cluster.sh
"$cs" status >/dev/null 2>&1 && die "a cluster already runs in $IMD_CLUSTER_DIR"
trap '"$cs" down >/dev/null 2>&1 || true' EXIT
t_up=$SECONDS
"$cs" up >"$dir/cluster-up.log" 2>&1 || { tail -n 40 "$dir/cluster-up.log" >&2; die "the cluster did not start on ${rev:0:12}"; }
echo "upgrade-drill: cluster up on ${rev:0:12} in $((SECONDS - t_up)) s ($IMD_CLUSTER_DIR)"
# shellcheck disable=SC1091
source "$IMD_CLUSTER_DIR/cluster.env"
echo "upgrade-drill: schema versions on the old build: $(schema_versions)"
self=$root/scripts/upgrade-drill.sh
step_cmd() {  # step name, node, binary, args
  printf "'%s' __step '%s' '%s' '%s' '%s' '%s'" "$self" "$dir" "$1" "$2" "$3" "$4"
}

steps=() faults=()
for n in logic1 logic2 api gateway1 gateway2; do
  steps+=("upgrade-$n")
  faults+=(--fault "upgrade-$n" "$(step_cmd "upgrade-$n" "$n" "$new_bin" "--version $new_version")"
    "[ \"\$('$self' __version $n)\" = '$new_version' ]")
done
# The rollback leg: gateway2 back to the old binary (the schema stays migrated), then gateway1
# drained and started again (same new binary), so its clients reconnect to the old gateway2
# and the rest of the traffic goes through it; how many sockets it then holds is kept.
steps+=(rollback-gateway2 drain-gateway1)
faults+=(--fault rollback-gateway2 "$(step_cmd rollback-gateway2 gateway2 "$old_bin" '')"
  "[ -z \"\$('$self' __version gateway2)\" ]")
faults+=(--fault drain-gateway1 "$(step_cmd drain-gateway1 gateway1 "$new_bin" "--version $new_version")"
  "curl -sS --max-time 3 '$GATEWAY2_URL/metrics' | awk '/^imd_ws_connections / { print \$2 }' >'$dir/old-gateway2-sockets'")

pairs=${IMD_CHAOS_PAIRS:-$((short ? 3 : 6))}
steady=${IMD_CHAOS_STEADY_S:-$((short ? 2 : 5))}
echo "upgrade-drill: ${rev:0:12} (old) -> $new_version ($new_bin), $pairs pairs at ${IMD_CHAOS_RATE:-20} sends/s, logs in $dir"
rc=0
"$py" "$root/tools/chaos/drill.py" --url "$CLUSTER_URL" --out "$dir/logs" --pairs "$pairs" \
  --rate "${IMD_CHAOS_RATE:-20}" --steady "$steady" --recovery-timeout 120 "${faults[@]}" || rc=$?
sizes "$dir" end

# Versions after the drill: the four upgraded nodes new, gateway2 old again.
for n in api gateway1 logic1 logic2 gateway2; do
  want=$new_version
  [[ $n == gateway2 ]] && want=''
  got=$(version_of "$n")
  if [[ $got != "$want" ]]; then
    echo "upgrade-drill: FAILED: $n reports version '${got}', expected '${want}'"
    rc=1
  fi
done

sockets=$(cat "$dir/old-gateway2-sockets" 2>/dev/null || true)
echo "upgrade-drill: WebSockets on the old gateway2 after gateway1's drain: ${sockets:-?}"
if ! [[ $sockets =~ ^[0-9]+$ ]] || ((sockets == 0)); then
  echo "upgrade-drill: FAILED: no client went to the rolled-back gateway2"
  rc=1
fi
echo "upgrade-drill: schema versions after the drill: $(schema_versions)"

# A client of the old gateway2 with a token of the new api, removed from a channel by the new
# api: not told it left the whole space (tools/chaos/mixed_probe.py).
"$py" "$root/tools/chaos/mixed_probe.py" --url "$CLUSTER_URL" --gateway "$GATEWAY2_URL" || {
  echo "upgrade-drill: FAILED: the old gateway and the new api disagree (above)"
  rc=1
}

# The table per step, from the drill's result and the log lines each step added.
"$py" - "$dir" "${steps[@]}" <<'PY' || rc=1
import json, os, sys
d, steps = sys.argv[1], sys.argv[2:]
rows = {r["fault"]: r for r in json.load(open(os.path.join(d, "logs", "result.json")))["faults"]}
def sizes(name):
    with open(os.path.join(d, "sizes-" + name)) as f:
        return {n: int(s) for n, s in (line.split() for line in f)}
def count(node, a, b, level):
    with open(os.path.join(d, "cluster", node, "imd.log"), "rb") as f:
        f.seek(a)
        return sum(1 for line in f.read(b - a).decode(errors="replace").splitlines()
                   if " %s " % level in line)
print()
print("%-18s %8s %9s %8s %12s %11s %7s %6s  %s" % ("step", "ready_s", "recovery_s", "refused",
      "redelivered", "reconnects", "errors", "warns", "schema after"))
for i, s in enumerate(steps):
    a, b = sizes(s), sizes(steps[i + 1] if i + 1 < len(steps) else "end")
    errs = sum(count(n, a[n], b[n], "ERROR") for n in a)
    warns = sum(count(n, a[n], b[n], "WARN") for n in a)
    ready = open(os.path.join(d, s + ".ready_s")).read().strip()
    r = rows.get(s, {})
    schema = open(os.path.join(d, s + ".schema")).read().strip()
    print("%-18s %8s %9s %8s %12s %11s %7d %6d  %s" % (s, ready, r.get("recovery_s"),
          r.get("refused"), r.get("redelivered"), r.get("reconnects"), errs, warns, schema))
PY
echo "upgrade-drill: logs in $dir (ERROR/WARN lines: grep -h -e ' ERROR ' -e ' WARN ' $IMD_CLUSTER_DIR/*/imd.log)"
if ((rc == 0)); then echo "upgrade-drill: PASS"; else echo "upgrade-drill: FAILED"; fi
exit $rc
