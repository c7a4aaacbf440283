"""A TCP echo across the router, to measure what the router itself adds.

The harness gives two extra namespaces a configured delay of zero between them; the round
trip of a small message between them is then the router's own cost (two reads, two
timer-scheduled writes) plus two passes through the kernel's TCP stack, which is exactly
what the router adds to every one-way delay in the scenarios (halved: one way).

``python -m rapidp2p.sim.crosscheck.probe server ADDR PORT`` echoes until stdin closes;
``... client ADDR PORT COUNT INTERVAL`` prints one JSON line: the round-trip times in seconds.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time

__all__ = ["client", "server"]


async def server(addr: str, port: int) -> None:
    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := await r.read(4096):
            w.write(data)
        w.close()

    srv = await asyncio.start_server(echo, addr, port)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the harness closes stdin
    srv.close()


async def client(addr: str, port: int, count: int, interval: float) -> list[float]:
    """``count`` round trips of a 32-byte message, ``interval`` seconds apart."""
    for _ in range(100):
        try:
            r, w = await asyncio.open_connection(addr, port)
            break
        except OSError:
            await asyncio.sleep(0.05)
    else:
        raise OSError(f"probe server {addr}:{port} unreachable")
    w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts = []
    msg = b"x" * 32
    for _ in range(count):
        t0 = time.perf_counter()
        w.write(msg)
        await r.readexactly(len(msg))
        rtts.append(time.perf_counter() - t0)
        await asyncio.sleep(interval)
    w.close()
    return rtts


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(server(sys.argv[2], int(sys.argv[3])))
    else:
        out = asyncio.run(
            client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
        )
        print(json.dumps(out), flush=True)
