#!/usr/bin/python3
"""What a client on an older gateway sees of the newer api (scripts/upgrade-drill.sh).

    mixed_probe.py --url http://127.0.0.1:PORT --gateway http://127.0.0.1:GATEWAY_PORT

Through --url (nginx: the new api) an owner makes a space with a channel and a member; the
member opens a WebSocket directly on --gateway (the old build) with the token the new api
issued (so the old gateway accepts new tokens), then the owner removes the member from the
channel only. The member must not be told it left the whole space: a `removed` frame without
its `conversation` (what a gateway from before channel removals makes of the new event) is a
failure. A `removed` naming the channel passes; so does no frame within 3 s (the gateway cannot
express it: the client learns at its next refused send or reload), as long as the member still
reads the space. Exits 1 with the reason on a failure. Standard library and python3-websockets.
"""
import argparse
import asyncio
import json
import os
import sys

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drill import account, http  # noqa: E402  (the drill's own REST helpers)


def must(status, body, want, what):
    if status != want:
        raise SystemExit("%s: HTTP %d %s" % (what, status, body))
    return body


async def probe(a):
    base = a.url.rstrip("/")
    tag = 900 + os.getpid() % 50
    owner = account(base, "probe-owner", 2 * tag)
    member = account(base, "probe-member", 2 * tag + 1)
    space = must(*http(base + "/api/v1/spaces", "POST", {"name": "upgrade probe"}, owner["token"]),
                 201, "create space")
    must(*http("%s/api/v1/spaces/%s/members" % (base, space["id"]), "POST",
               {"user_id": member["id"]}, owner["token"]), 204, "add member")
    channel = must(*http("%s/api/v1/spaces/%s/channels" % (base, space["id"]), "POST",
                         {"name": "probe"}, owner["token"]), 201, "create channel")
    must(*http("%s/api/v1/channels/%s/join" % (base, channel["id"]), "POST", {},
               member["token"]), 200, "join channel")
    ws_url = a.gateway.rstrip("/").replace("http", "ws", 1) + "/ws?token=" + member["token"]
    async with websockets.connect(ws_url, open_timeout=5) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if hello.get("op") != "hello":
            raise SystemExit("the gateway refused a token of the new api: %s" % hello)
        must(*http("%s/api/v1/channels/%s/members/%s" % (base, channel["id"], member["id"]),
                   "DELETE", None, owner["token"]), 204, "remove from channel")
        removed = None
        try:
            while removed is None:
                f = json.loads(await asyncio.wait_for(ws.recv(), 3))
                for fr in f["frames"] if f.get("op") == "batch" else [f]:
                    if fr.get("op") == "removed":
                        removed = fr
        except asyncio.TimeoutError:
            pass
    if removed is not None and removed.get("conversation") != "channel:%s" % channel["id"]:
        raise SystemExit("removed from channel %s, the gateway told the client it left space %s: %s"
                         % (channel["id"], space["id"], removed))
    must(*http("%s/api/v1/spaces/%s" % (base, space["id"]), token=member["token"]), 200,
         "the member reads the space")
    print("mixed probe: the old gateway took the new api's token; removal from a channel: %s" %
          ("frame %s" % json.dumps(removed) if removed else "no frame (not expressible there)"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--gateway", required=True)
    asyncio.run(probe(p.parse_args()))


if __name__ == "__main__":
    main()
