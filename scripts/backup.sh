#!/usr/bin/env bash
# Online backup and restore of the cluster's MariaDB with mariadb-backup (Debian package
# mariadb-backup); the standalone store has `imd backup` / `imd restore` (docs/operations.md).
#
#   scripts/backup.sh mysql backup DIR            a hot backup of the server into DIR (new or
#                                                  empty), prepared (consistent, ready to copy back)
#   scripts/backup.sh mysql restore DIR DATADIR   copies the prepared backup into DATADIR (new or
#                                                  empty): a datadir for mariadbd
#   scripts/backup.sh mysql serve DATADIR         starts mariadbd on DATADIR (loopback, a free
#                                                  port, socket DATADIR/../mariadbd.sock); prints
#                                                  PID, PORT and SOCKET lines; stop it with kill PID
#
# The server to back up is the one scripts/services.sh started (its state file, as
# scripts/cluster.sh uses it), or MARIADB_SOCKET / MARIADB_USER (default root, unix_socket
# authentication) from the environment. The backup is taken while imd keeps writing: InnoDB
# pages are copied with their redo log, and the non-InnoDB files (the Mroonga search index)
# under BACKUP STAGE locks that block commits only for the last moment; `--prepare` then
# applies the log, so the copy is the database as of the end of the backup.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/procs.sh
source "$root/scripts/lib/procs.sh"

die() {
  echo "backup: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 mysql backup DIR | mysql restore DIR DATADIR | mysql serve DATADIR" >&2
  exit 2
}

need() {
  command -v "$1" >/dev/null || die "$1 not found: install the Debian package $2 (scripts/setup.sh)"
}

empty_dir() {  # creates $1 if needed; fails unless it is empty
  mkdir -p "$1"
  [[ -z $(ls -A "$1") ]] || die "$1 is not empty"
}

server_socket() {
  if [[ -z ${MARIADB_SOCKET:-} ]]; then
    local state=${IMD_SERVICES_DIR:-${IMD_CLUSTER_DIR:-/tmp/imd-cluster}/services}/mariadb.env
    [[ -f $state ]] || die "no MARIADB_SOCKET and no $state (scripts/services.sh start mariadb)"
    # shellcheck disable=SC1090
    source "$state"
  fi
  [[ -S $MARIADB_SOCKET ]] || die "$MARIADB_SOCKET is not a socket: is MariaDB running?"
  echo "$MARIADB_SOCKET"
}

backup() {
  local dir=$1 socket log
  need mariadb-backup mariadb-backup
  socket=$(server_socket)
  empty_dir "$dir"
  log=$dir/../$(basename "$dir").log
  # --no-defaults: nothing from /etc/mysql; the server's own datadir is asked over the socket.
  if ! timeout "${IMD_BACKUP_TIMEOUT_S:-600}" mariadb-backup --no-defaults --backup \
    --socket="$socket" --user="${MARIADB_USER_ADMIN:-root}" --target-dir="$dir" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "mariadb-backup --backup failed (log $log)"
  fi
  if ! timeout "${IMD_BACKUP_TIMEOUT_S:-600}" mariadb-backup --no-defaults --prepare \
    --target-dir="$dir" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "mariadb-backup --prepare failed (log $log)"
  fi
  echo "backup: $dir ($(du -sh "$dir" | cut -f1), prepared)"
}

restore() {
  local dir=$1 datadir=$2
  need mariadb-backup mariadb-backup
  [[ -f $dir/xtrabackup_checkpoints ]] || die "$dir is not a mariadb-backup backup"
  grep -q '^backup_type = log-applied' "$dir/xtrabackup_checkpoints" ||
    die "$dir is not prepared (scripts/backup.sh mysql backup prepares it)"
  empty_dir "$datadir"
  if ! mariadb-backup --no-defaults --copy-back --target-dir="$dir" --datadir="$datadir" \
    >"$datadir.restore.log" 2>&1; then
    tail -n 20 "$datadir.restore.log" >&2
    die "mariadb-backup --copy-back failed"
  fi
  echo "restore: $datadir"
}

serve() {
  local datadir=$1 base port pid run_as=()
  need mariadbd mariadb-server-core
  [[ -d $datadir/mysql ]] || die "$datadir holds no restored database"
  base=$(cd "$datadir/.." && pwd)
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  if [[ $(id -u) -eq 0 ]]; then run_as=(--user=root); fi
  setsid mariadbd --no-defaults --datadir="$datadir" "${run_as[@]}" --socket="$base/mariadbd.sock" \
    --port="$port" --bind-address=127.0.0.1 --pid-file="$base/mariadbd.pid" \
    --log-error="$base/mariadbd.err" --skip-name-resolve --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_unicode_ci --innodb-buffer-pool-size=64M \
    --plugin-load-add=ha_mroonga.so </dev/null >/dev/null 2>&1 9>&- &
  pid=$!
  local deadline=$((SECONDS + 60))
  until mariadb-admin --no-defaults --socket="$base/mariadbd.sock" --user=root \
    --connect-timeout=2 ping >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      tail -n 20 "$base/mariadbd.err" >&2 || true
      kill "$pid" 2>/dev/null || true
      die "mariadbd on the restored datadir did not start"
    fi
    sleep 0.2
  done
  echo "PID=$pid"
  echo "PORT=$port"
  echo "SOCKET=$base/mariadbd.sock"
}

(($# >= 2)) && [[ $1 == mysql ]] || usage
case $2 in
  backup) (($# == 3)) || usage; backup "$3" ;;
  restore) (($# == 4)) || usage; restore "$3" "$4" ;;
  serve) (($# == 3)) || usage; serve "$3" ;;
  *) usage ;;
esac
