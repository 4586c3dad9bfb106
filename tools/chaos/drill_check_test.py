#!/usr/bin/python3
"""Unit test of drill.check(), the chaos drill's history checker: a clean history passes, and
each kind of violation it exists for is reported (a lost ACKed message, a duplicate, a hole in
the seqs, a reordering on a connection, a recipient left incomplete). The server's history is
replaced by a list; the logs are real files. Run: tools/chaos/drill_check_test.py (CTest
chaos_checker)."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drill  # noqa: E402

SENDER, RECIPIENT = {"id": "1", "token": "s"}, {"id": "2", "token": "r"}


def run(hist, sent, received):
    with tempfile.TemporaryDirectory() as out:
        with open(os.path.join(out, "sender-0.jsonl"), "w") as f:
            for cid, seq in sent:
                f.write(json.dumps({"ev": "sent", "cid": cid, "id": "m" + cid, "seq": seq}) + "\n")
        with open(os.path.join(out, "recipient-0.jsonl"), "w") as f:
            for conn, seq in received:
                f.write(json.dumps({"ev": "msg", "conn": conn, "seq": seq, "id": "x"}) + "\n")
        drill.history = lambda base, viewer, peer: hist
        bad, _ = drill.check("http://unused", [(SENDER, RECIPIENT)], out)
        return bad


def msg(cid, seq):
    return {"cid": cid, "id": "m" + cid, "seq": seq}


clean_hist = [msg("a", 1), msg("b", 2), msg("c", 3)]
clean_sent = [("a", 1), ("b", 2), ("c", 3)]
clean_recv = [(1, 1), (1, 2), (2, 2), (2, 3)]  # a re-delivery on a new connection is fine

cases = {
    "clean": (clean_hist, clean_sent, clean_recv, None),
    "lost": ([msg("a", 1), msg("c", 2)], clean_sent, [(1, 1), (1, 2)], "LOST"),
    "duplicate": (clean_hist + [msg("c", 4)], clean_sent, clean_recv + [(2, 4)], "stored twice"),
    "hole": ([msg("a", 1), msg("c", 3)], [("a", 1), ("c", 3)], [(1, 1), (1, 3)], "not 1.."),
    "reordered": (clean_hist, clean_sent, [(1, 1), (1, 3), (1, 2)], "got seq 2 after 3"),
    "incomplete": (clean_hist, clean_sent, [(1, 1), (1, 2)], "never got seqs [3]"),
}
failed = 0
for name, (hist, sent, recv, want) in cases.items():
    bad = run(hist, sent, recv)
    ok = (not bad) if want is None else any(want in b for b in bad)
    print("%-10s %s %s" % (name, "ok" if ok else "FAIL", bad))
    failed += not ok
sys.exit(1 if failed else 0)
