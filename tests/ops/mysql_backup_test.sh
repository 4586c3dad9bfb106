#!/usr/bin/env bash
# MariaDB backup under load, restored and checked (CTest cluster_mysql_backup, in the cluster
# group): the chaos drill's traffic runs against the local cluster while `scripts/backup.sh
# mysql backup` takes a hot backup; the drill's own history check must pass on the live
# cluster; then the backup is restored into a fresh datadir, a second mariadbd serves it on a
# free loopback port, and tools/chaos/restore_check.py verifies that every send ACKed before
# the backup started is there with its seq, no conversation has a gap and no cid is stored
# twice. Everything in a temporary directory, removed at the end (kept on failure).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${IMD_CLUSTER_DIR:?the cluster fixture sets IMD_CLUSTER_DIR}"
# shellcheck disable=SC1091
source "$IMD_CLUSTER_DIR/cluster.env"
command -v mariadb-backup >/dev/null || {
  echo "mariadb-backup is not installed (scripts/setup.sh): skipped"
  exit 77
}
work=$(mktemp -d /tmp/imd-mysql-backup.XXXXXX)
served_pid=''
finish() {
  local rc=$?
  [[ -n $served_pid ]] && kill "$served_pid" 2>/dev/null && while kill -0 "$served_pid" 2>/dev/null; do sleep 0.1; done
  if ((rc == 0)); then rm -rf "$work"; else echo "kept $work for a look"; fi
}
trap finish EXIT

mono='/usr/bin/python3 -c "import time; print(time.monotonic())"'
/usr/bin/python3 "$root/tools/chaos/drill.py" --url "$CLUSTER_URL" --out "$work/logs" \
  --pairs "${IMD_CHAOS_PAIRS:-3}" --rate "${IMD_CHAOS_RATE:-20}" --steady 2 --recovery-timeout 60 \
  --fault mysql-backup "$mono >'$work/backup.start' && '$root/scripts/backup.sh' mysql backup '$work/backup'" \
  "test -s '$work/backup/xtrabackup_checkpoints'"

"$root/scripts/backup.sh" mysql restore "$work/backup" "$work/restored/data"
served=$("$root/scripts/backup.sh" mysql serve "$work/restored/data")
served_pid=$(sed -n 's/^PID=//p' <<<"$served")
socket=$(sed -n 's/^SOCKET=//p' <<<"$served")
/usr/bin/python3 "$root/tools/chaos/restore_check.py" --logs "$work/logs" --socket "$socket" \
  --before "$(<"$work/backup.start")"
