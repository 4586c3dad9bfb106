#!/usr/bin/env python3
"""A TCP relay that delays every chunk by --delay-ms in each direction, in order.

The chaos drill's slow link (scripts/chaos.sh, __netem_up) uses the kernel's netem qdisc on a
veth pair into a network namespace; where the kernel has no netem (sch_netem missing, as in
some VMs), this relay runs inside that namespace instead and adds the delay in user space.
Bounded: at most --max-conns connections, and each direction holds at most 256 chunks in flight
(reading stops until the writer catches up).
"""
import argparse
import asyncio


async def pipe(reader, writer, delay):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue(maxsize=256)

    async def take():
        while True:
            data = await reader.read(65536)
            await q.put((loop.time() + delay, data))
            if not data:
                return

    async def give():
        while True:
            due, data = await q.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(take(), give())
    except (ConnectionError, OSError):
        pass


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True, help="HOST:PORT")
    p.add_argument("--target", required=True, help="HOST:PORT")
    p.add_argument("--delay-ms", type=float, required=True)
    p.add_argument("--max-conns", type=int, default=256)
    a = p.parse_args()
    lhost, lport = a.listen.rsplit(":", 1)
    thost, tport = a.target.rsplit(":", 1)
    delay = a.delay_ms / 1000.0
    slots = asyncio.Semaphore(a.max_conns)

    async def serve(cr, cw):
        if slots.locked():
            cw.close()
            return
        async with slots:
            try:
                tr, tw = await asyncio.wait_for(asyncio.open_connection(thost, int(tport)), 5)
            except (OSError, asyncio.TimeoutError):
                cw.close()
                return
            await asyncio.gather(pipe(cr, tw, delay), pipe(tr, cw, delay))
            for w in (cw, tw):
                w.close()

    server = await asyncio.start_server(serve, lhost, int(lport), reuse_address=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
