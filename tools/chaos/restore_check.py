#!/usr/bin/env python3
"""Checks a restored MariaDB against the chaos drill's client logs (scripts/backup.sh, the
CTest cluster_mysql_backup): every send ACKed before the backup started is in the restored
database with the id and seq its `sent` named; no conversation has a gap or a repeated seq
(dense seqs 1..n); no (sender, cid) is stored twice. Reads the database with the mariadb
client over the restored server's socket (root, unix_socket authentication).

  restore_check.py --logs DIR --socket SOCK --before MONOTONIC_SECONDS
"""
import argparse
import glob
import json
import subprocess
import sys


def query(socket, sql):
    out = subprocess.run(["mariadb", "--no-defaults", "--socket=" + socket, "--user=root",
                          "--batch", "--skip-column-names", "imd", "-e", sql],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--logs", required=True)
    p.add_argument("--socket", required=True)
    p.add_argument("--before", type=float, required=True)
    a = p.parse_args()

    acked, later = {}, 0
    for path in sorted(glob.glob(a.logs + "/sender-*.jsonl")):
        with open(path) as f:
            for line in f:
                e = json.loads(line)
                if e.get("ev") != "sent":
                    continue
                if e["t"] < a.before:
                    acked[int(e["id"])] = (e["cid"], int(e["seq"]))
                else:
                    later += 1
    bad = []
    if not acked:
        bad.append("no send was ACKed before the backup started: nothing to check")
    stored = {}
    ids = sorted(acked)
    for i in range(0, len(ids), 500):
        chunk = ",".join(str(x) for x in ids[i:i + 500])
        for mid, seq, cid in query(a.socket, "SELECT id, seq, cid FROM message WHERE id IN (%s)" % chunk):
            stored[int(mid)] = (cid, int(seq))
    for mid, (cid, seq) in acked.items():
        if mid not in stored:
            bad.append("ACKed %s (id %d, seq %d) is not in the restored database" % (cid, mid, seq))
        elif stored[mid] != (cid, seq):
            bad.append("ACKed %s as seq %d, restored as %s" % (cid, seq, stored[mid]))
    for a_, b_, n, top in query(a.socket, "SELECT user_a, user_b, COUNT(*), MAX(seq) FROM message "
                                          "GROUP BY user_a, user_b"):
        if n != top:
            bad.append("conversation %s-%s: %s messages but seq up to %s" % (a_, b_, n, top))
    for row in query(a.socket, "SELECT `from`, cid, COUNT(*) FROM message WHERE cid IS NOT NULL "
                               "GROUP BY `from`, cid HAVING COUNT(*) > 1"):
        bad.append("sender %s cid %s stored %s times" % tuple(row))
    total = query(a.socket, "SELECT COUNT(*) FROM message")[0][0]
    print("restore check: %d sends ACKed before the backup, all in the restored database with "
          "their seq: %s; %s messages restored; %d ACKed during or after the backup (not required)"
          % (len(acked), "yes" if not bad else "NO", total, later))
    for b in bad[:50]:
        print("VIOLATION: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
