#!/usr/bin/python3
"""Chaos drill for imd: steady DM traffic from real WebSocket clients while faults are injected
one at a time, then an independent history check.

    drill.py --url http://127.0.0.1:PORT --out DIR [--pairs 4] [--rate 20] [--steady 4]
             --fault NAME INJECT_CMD RECOVER_CMD [--fault ...]

Each pair is a sender device and a recipient device (separate users). Senders send DMs at
`--rate` per second each, with cids unique per sender, keep every unacknowledged send and resend
it with the same cid after a reconnect or a refusal (as the web client does). Recipients ACK
what they receive and drop what they hold by seq. Both reconnect with a short backoff.
Every event goes to a JSON-lines log per client in --out.

For each fault, after --steady seconds of traffic: INJECT_CMD runs (e.g. kill -9), then
RECOVER_CMD (e.g. restart, waiting for /readyz), both through the shell. Recovery time is from
the injection until every sender got a `sent` for a send made after the injection.

Then sending stops, the outboxes drain, and check() reads only the logs and the server's REST
history (as each sender, so messages carry their cids) and verifies: no ACKed message lost
(every `sent` cid is stored with that id and seq), none duplicated (each cid and id once), none
out of order (seqs dense from 1 in history; each recipient connection got strictly increasing
seqs), every recipient complete (it received every stored seq). It prints a table per fault and
exits 1 on any violation. Uses the Python standard library and python3-websockets (Debian).
"""
import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request

import websockets


def now():
    return time.monotonic()


class Log:
    """One client's JSON-lines log; the checker reads these files back."""

    def __init__(self, path):
        self.f = open(path, "w", buffering=1)

    def write(self, **ev):
        ev["t"] = round(now(), 4)
        self.f.write(json.dumps(ev) + "\n")


def http(url, method="GET", body=None, token=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def account(base, name, tag):
    phone = "+1777%06d%04d" % (os.getpid() % 1000000, tag)
    pw = "chaos-password-%d" % tag
    st, _ = http(base + "/api/v1/auth/register", "POST",
                 {"name": name, "phone": phone, "password": pw})
    if st != 201:
        raise SystemExit("register %s: HTTP %d" % (name, st))
    st, s = http(base + "/api/v1/auth/login", "POST", {"phone": phone, "password": pw})
    if st != 200:
        raise SystemExit("login %s: HTTP %d" % (name, st))
    return {"id": s["user"]["id"], "token": s["access_token"], "name": name}


class Stats:
    def __init__(self):
        self.refused = 0       # error frames answering a send
        self.redelivered = 0   # msg frames of a seq the device already held
        self.reconnects = 0


class Device:
    """A WebSocket client that reconnects; subclasses handle frames."""

    def __init__(self, base, user, log, stats):
        self.ws_url = base.replace("http", "ws", 1) + "/ws?token=" + user["token"]
        self.user, self.log, self.stats = user, log, stats
        self.ws = None
        self.conn = 0
        self.stop = False
        self.synced = asyncio.Event()

    async def run(self):
        while not self.stop:
            try:
                async with websockets.connect(self.ws_url, open_timeout=5, close_timeout=1,
                                              ping_interval=None, max_size=2**22) as ws:
                    self.ws, self.conn = ws, self.conn + 1
                    self.log.write(ev="connect", conn=self.conn)
                    await self.on_open()
                    async for raw in ws:
                        f = json.loads(raw)
                        for fr in f["frames"] if f.get("op") == "batch" else [f]:
                            await self.on_frame(fr)
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as e:
                self.log.write(ev="disconnect", conn=self.conn, why=type(e).__name__)
            self.ws = None
            self.synced.clear()
            if not self.stop:
                self.stats.reconnects += 1
                await asyncio.sleep(0.2 + random.random() * 0.3)

    async def send(self, frame):
        ws = self.ws
        if ws is None:
            return False
        try:
            await ws.send(json.dumps(frame))
            return True
        except websockets.WebSocketException:
            return False

    async def close(self):
        self.stop = True
        if self.ws is not None:
            await self.ws.close()

    async def on_open(self):
        pass


class Sender(Device):
    def __init__(self, base, user, peer, log, stats, rate):
        super().__init__(base, user, log, stats)
        self.peer, self.rate = peer, rate
        self.next = 0
        self.outbox = {}        # cid -> body, not yet ACKed (in send order)
        self.last_try = {}      # cid -> when it was last sent
        self.acked = {}         # cid -> (id, seq)
        self.sending = True
        self.last_ack_at = 0.0  # monotonic time of the last `sent`
        self.first_ack_after = {}  # fault start -> time of the first ACK of a later send

    async def on_open(self):
        pass

    async def on_frame(self, f):
        op = f.get("op")
        if op == "hello":
            # Resend every unacknowledged send with its cid, oldest first.
            for cid in list(self.outbox):
                await self.resend(cid)
            self.synced.set()
        elif op == "sent":
            cid = f["cid"]
            self.outbox.pop(cid, None)
            self.last_try.pop(cid, None)
            self.acked[cid] = (f["id"], f["seq"])
            self.last_ack_at = now()
            self.log.write(ev="sent", cid=cid, id=f["id"], seq=f["seq"], conv=f["conversation"])
        elif op == "error" and f.get("cid"):
            self.stats.refused += 1
            self.log.write(ev="refused", cid=f["cid"], code=f.get("code"))
            cid = f["cid"]
            if cid in self.outbox:
                # Retry later with the same cid: safe (stored once).
                asyncio.get_running_loop().call_later(
                    0.5, lambda c=cid: asyncio.ensure_future(self.resend(c)))

    async def resend(self, cid):
        if cid in self.outbox and self.ws is not None:
            self.last_try[cid] = now()
            await self.send({"op": "send", "cid": cid, "to": self.peer["id"],
                             "body": self.outbox[cid]})

    async def sweep(self):
        """A send with no answer for 3 s goes again (a frame the server's rate limit refused
        is answered without its cid), at most 50 per second, oldest first."""
        while not self.stop:
            await asyncio.sleep(1)
            if self.ws is None or not self.synced.is_set():
                continue
            late = [c for c in self.outbox if now() - self.last_try.get(c, 0) > 3][:50]
            for cid in late:
                await self.resend(cid)

    async def traffic(self):
        period = 1.0 / self.rate
        while self.sending:
            # After `hello` (and its resends), like the web client: new sends follow old ones.
            if self.ws is not None and self.synced.is_set() and len(self.outbox) < 500:
                cid = "%s-%d" % (self.user["name"], self.next)
                body = "chaos %s %d" % (self.user["name"], self.next)
                self.next += 1
                self.outbox[cid] = body
                self.last_try[cid] = now()
                self.log.write(ev="send", cid=cid)
                await self.send({"op": "send", "cid": cid, "to": self.peer["id"], "body": body})
            await asyncio.sleep(period * (0.5 + random.random()))


class Recipient(Device):
    """ACKs only what it holds without a gap (the ACK is cumulative: ACKing past a hole would
    tell the server the hole was delivered); on a gap (a live push lost with a gateway) it asks
    for a sync from its contiguous cursor, as on every reconnect."""

    def __init__(self, base, user, log, stats):
        super().__init__(base, user, log, stats)
        self.held = {}   # conversation -> highest seq held with nothing missing below it
        self.seen = {}   # conversation -> set of seqs received (any connection)

    async def on_frame(self, f):
        op = f.get("op")
        if op == "msg":
            conv, seq = f["conversation"], f["seq"]
            got = self.seen.setdefault(conv, set())
            if seq in got:
                self.stats.redelivered += 1
            got.add(seq)
            self.log.write(ev="msg", conn=self.conn, conv=conv, seq=seq, id=f["id"],
                           sender=f["from"])
            before = held = self.held.get(conv, 0)
            while held + 1 in got:
                held += 1
            self.held[conv] = held
            if held > before:
                await self.send({"op": "ack", "conversation": conv, "seq": held})
            if seq > held + 1 and self.synced.is_set():
                # A hole: fetch it (one pending sync at a time per connection on the server).
                self.log.write(ev="gap", conn=self.conn, conv=conv, held=held, seq=seq)
                await self.send({"op": "sync", "cursors": {conv: held}})
        elif op == "hello":
            if self.held:
                await self.send({"op": "sync", "cursors": dict(self.held)})
        elif op == "synced":
            self.synced.set()


def history(base, viewer, peer):
    """Every stored message of the DM, as `viewer` sees it (with cids of its own sends)."""
    out, after = [], 0
    while True:
        st, r = http("%s/api/v1/dms/%s/messages?after_seq=%d&limit=100" % (base, peer["id"], after),
                     token=viewer["token"])
        if st != 200:
            raise SystemExit("history: HTTP %d %s" % (st, r))
        out += r["messages"]
        if len(r["messages"]) < 100:
            return out
        after = r["messages"][-1]["seq"]


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def check(base, pairs, out):
    """The independent check: logs and the store only. Returns a list of violations."""
    bad = []
    totals = {"acked": 0, "stored": 0, "delivered": 0}
    for i, (s, r) in enumerate(pairs):
        slog = read_log(os.path.join(out, "sender-%d.jsonl" % i))
        rlog = read_log(os.path.join(out, "recipient-%d.jsonl" % i))
        hist = history(base, s, r)
        totals["stored"] += len(hist)
        seqs = [m["seq"] for m in hist]
        if seqs != list(range(1, len(seqs) + 1)):
            bad.append("pair %d: history seqs are not 1..%d in order" % (i, len(seqs)))
        by_cid = {}
        for m in hist:
            if m.get("cid") in by_cid:
                bad.append("pair %d: cid %s stored twice" % (i, m.get("cid")))
            by_cid[m.get("cid")] = m
        if len({m["id"] for m in hist}) != len(hist):
            bad.append("pair %d: a message id stored twice" % i)
        acked = {}
        for e in slog:
            if e["ev"] == "sent":
                if e["cid"] in acked and acked[e["cid"]] != (e["id"], e["seq"]):
                    bad.append("pair %d: cid %s ACKed as two messages" % (i, e["cid"]))
                acked[e["cid"]] = (e["id"], e["seq"])
        totals["acked"] += len(acked)
        for cid, (mid, seq) in acked.items():
            m = by_cid.get(cid)
            if m is None:
                bad.append("pair %d: ACKed %s (seq %d) LOST" % (i, cid, seq))
            elif (m["id"], m["seq"]) != (mid, seq):
                bad.append("pair %d: ACKed %s as seq %d, stored as seq %d" % (i, cid, seq, m["seq"]))
        last = {}
        got = set()
        for e in rlog:
            if e["ev"] != "msg":
                continue
            got.add(e["seq"])
            if e["seq"] <= last.get(e["conn"], 0):
                bad.append("pair %d: recipient connection %d got seq %d after %d" %
                           (i, e["conn"], e["seq"], last[e["conn"]]))
            last[e["conn"]] = e["seq"]
        missing = set(seqs) - got
        if missing:
            bad.append("pair %d: recipient never got seqs %s" % (i, sorted(missing)[:10]))
        totals["delivered"] += len(got)
    return bad, totals


async def wait_for(pred, timeout):
    deadline = now() + timeout
    while now() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return pred()


async def drill(a):
    base = a.url.rstrip("/")
    os.makedirs(a.out, exist_ok=True)
    stats = Stats()
    tag = random.randrange(1000)
    users = [(account(base, "s%d" % i, tag * 20 + 2 * i), account(base, "r%d" % i, tag * 20 + 2 * i + 1))
             for i in range(a.pairs)]
    senders, recips = [], []
    for i, (s, r) in enumerate(users):
        senders.append(Sender(base, s, r, Log(os.path.join(a.out, "sender-%d.jsonl" % i)), stats,
                              a.rate))
        recips.append(Recipient(base, r, Log(os.path.join(a.out, "recipient-%d.jsonl" % i)), stats))
    tasks = [asyncio.create_task(d.run()) for d in senders + recips]
    tasks += [asyncio.create_task(s.sweep()) for s in senders]
    if not await wait_for(lambda: all(d.synced.is_set() for d in senders + recips), 30):
        raise SystemExit("clients did not connect within 30 s")
    traffic = [asyncio.create_task(s.traffic()) for s in senders]

    rows = []
    for name, inject, recover in a.fault:
        await asyncio.sleep(a.steady)
        refused0, redeliv0, rec0 = stats.refused, stats.redelivered, stats.reconnects
        t0 = now()
        print("chaos: %-12s inject: %s" % (name, inject), flush=True)
        await asyncio.to_thread(subprocess.run, inject, shell=True, check=False)
        # Sends from now on were made with the fault in place (the inject command returns once
        # the process is dead or paused): recovery is when each sender got one of them ACKed.
        sent_before = {id(s): s.next for s in senders}
        t_rec = now()
        r = await asyncio.to_thread(subprocess.run, recover, shell=True, check=False)
        if r.returncode != 0:
            print("chaos: %s: recover command failed (%d)" % (name, r.returncode), flush=True)

        def recovered():
            # Every sender got a `sent` for a send it made after the injection.
            for s in senders:
                if not any(int(c.rsplit("-", 1)[1]) >= sent_before[id(s)] for c in s.acked):
                    return False
            return True
        ok = await wait_for(recovered, a.recovery_timeout)
        rows.append({"fault": name, "recovered": ok,
                     "recovery_s": round(now() - t0, 2) if ok else None,
                     "restart_s": round(now() - t_rec, 2) if ok else None,
                     "refused": stats.refused - refused0,
                     "redelivered": stats.redelivered - redeliv0,
                     "reconnects": stats.reconnects - rec0})
        print("chaos: %-12s %s" % (name, "recovered in %.2f s" % (now() - t0) if ok else
                                   "NOT recovered within %d s" % a.recovery_timeout), flush=True)

    await asyncio.sleep(a.steady)
    for s in senders:
        s.sending = False
    for t in traffic:
        await t
    drained = await wait_for(lambda: all(not s.outbox for s in senders), a.recovery_timeout)
    # Every recipient holds everything its sender had ACKed.
    def delivered():
        for s, r in zip(senders, recips):
            top = max((seq for _, seq in s.acked.values()), default=0)
            if max(r.held.values(), default=0) < top:
                return False
        return True
    await wait_for(delivered, a.recovery_timeout)
    for d in senders + recips:
        await d.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    bad, totals = check(base, users, a.out)
    if not drained:
        bad.append("%d sends never ACKed" % sum(len(s.outbox) for s in senders))
    sent = sum(s.next for s in senders)
    print()
    print("%-20s %9s %12s %9s %12s %11s" % ("fault", "recovered", "recovery_s", "refused",
                                            "redelivered", "reconnects"))
    for row in rows:
        print("%-20s %9s %12s %9d %12d %11d" % (row["fault"], "yes" if row["recovered"] else "NO",
                                                 row["recovery_s"], row["refused"],
                                                 row["redelivered"], row["reconnects"]))
    print()
    print("sends %d, ACKed %d, stored %d, delivered %d; refused %d, re-delivered %d" %
          (sent, totals["acked"], totals["stored"], totals["delivered"], stats.refused,
           stats.redelivered))
    with open(os.path.join(a.out, "result.json"), "w") as f:
        json.dump({"faults": rows, "totals": totals, "violations": bad}, f, indent=1)
    if bad or not all(r["recovered"] for r in rows):
        for b in bad[:50]:
            print("VIOLATION: " + b)
        print("chaos: FAILED")
        return 1
    print("chaos: PASS: no ACKed message lost, none duplicated, none out of order, every "
          "recipient complete")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--rate", type=float, default=20, help="sends per second per sender")
    p.add_argument("--steady", type=float, default=4, help="seconds of traffic between faults")
    p.add_argument("--recovery-timeout", type=float, default=60)
    p.add_argument("--fault", nargs=3, action="append", default=[],
                   metavar=("NAME", "INJECT", "RECOVER"))
    a = p.parse_args()
    sys.exit(asyncio.run(drill(a)))


if __name__ == "__main__":
    main()
