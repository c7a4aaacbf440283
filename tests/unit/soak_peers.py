"""The two sides of the connection soak (``test_soak_connections.py``); no tests here.

``python soak_peers.py listen``: a host serving echo, with the peer store forgetting a
disconnected peer after ``--grace`` seconds. It prints its address, then answers each
``stat`` line on stdin with one JSON line: its RSS (after a full collection, the same
procedure every time), live connections, peer-store size, peers still in their grace period.

``python soak_peers.py dial ADDR COUNT CONCURRENCY``: ``COUNT`` short connections, each from
a new identity (connect, echo 4 KiB, close); prints ``{"ok": n, "failed": n, "errors": [...]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys

from rapidp2p._aio.stream import Stream
from rapidp2p.host import Host, HostConfig
from rapidp2p.host.peer_gc import PeerGCConfig

ECHO = "/echo/1.0.0"
PAYLOAD = os.urandom(4096)


def _trim_heap() -> None:
    """Hands free heap pages back to the kernel (glibc): RSS then counts what is held, not
    the allocator's high-water mark, which depends on how frees happened to interleave."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    trim = getattr(libc, "malloc_trim", None)  # glibc only (not musl)
    if trim is not None:
        trim(0)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _echo(stream: Stream) -> None:
    async for chunk in stream:
        stream.write(chunk)
        await stream.drain()
    await stream.close()


async def listen(grace: float) -> None:
    config = HostConfig(peer_gc=PeerGCConfig(grace=grace), maintenance_interval=0.25)
    host = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=config)
    host.set_stream_handler(ECHO, _echo)
    print(host.full_addrs[0], flush=True)
    loop = asyncio.get_running_loop()
    async with host:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() == "quit":
                return
            gc.collect()
            _trim_heap()
            record = {
                "rss": rss_bytes(),
                "blocks": sys.getallocatedblocks(),
                "connections": len(host.connections()),
                "peerstore": len(host.peerstore),
                "in_grace": len(host.peer_gc._gone),
                "forgotten": host.peer_gc.forgotten,
                "peer_scopes": host.resource_manager.stat()["peers"]["count"],
            }
            print(json.dumps(record), flush=True)


async def dial(addr: str, count: int, concurrency: int) -> None:
    ok = failed = 0
    errors: list[str] = []
    todo = iter(range(count))

    async def worker() -> None:
        nonlocal ok, failed
        for _ in todo:
            host = await Host.create()
            try:
                s = await asyncio.wait_for(host.new_stream(addr, ECHO), 30)
                s.write(PAYLOAD)
                await s.close()
                got = await asyncio.wait_for(s.read(), 30)
                if got != PAYLOAD:
                    raise AssertionError(f"echoed {len(got)} bytes, not the 4 KiB sent")
                ok += 1
            except Exception as exc:
                failed += 1
                if len(errors) < 10:
                    errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                await host.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    print(json.dumps({"ok": ok, "failed": failed, "errors": errors}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    lp = sub.add_parser("listen")
    lp.add_argument("--grace", type=float, default=1.0)
    dp = sub.add_parser("dial")
    dp.add_argument("addr")
    dp.add_argument("count", type=int)
    dp.add_argument("concurrency", type=int)
    args = p.parse_args()
    if args.mode == "listen":
        asyncio.run(listen(args.grace))
    else:
        asyncio.run(dial(args.addr, args.count, args.concurrency))


if __name__ == "__main__":
    main()
