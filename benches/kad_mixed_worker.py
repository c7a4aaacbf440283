"""rapidp2p worker for ``kad_mixed.py``: Kademlia nodes in one process, driven by JSON lines.

Commands (one JSON object per stdin line, each answered by one stdout line with the same id),
as ``go-peer bench-worker`` and ``rust-peer bench-worker`` answer them:
kad_start {count} -> {addrs}; kad_connect {dials: [[node, addr]]} -> {failed, table};
kad_refresh -> {table}; kad_lookups {keys: [hex], concurrency} -> {lat_ns, found, failed,
elapsed_ns} (each key looked up from a rotating local node, ``concurrency`` at a time); quit.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import Any

from rapidp2p.host import Host
from rapidp2p.kad import KadConfig, KadDHT


class Worker:
    def __init__(self) -> None:
        self.nodes: list[tuple[Host, KadDHT]] = []

    async def kad_start(self, count: int) -> dict[str, Any]:
        addrs = []
        for _ in range(count):
            h = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
            dht = KadDHT(h, KadConfig(mode="server"))
            await dht.start()
            self.nodes.append((h, dht))
            addrs.append(str(h.full_addrs[0]))
        return {"addrs": addrs}

    def _tables(self) -> list[int]:
        return [len(dht.routing) for _, dht in self.nodes]

    async def kad_connect(self, dials: list[list[Any]]) -> dict[str, Any]:
        res = await asyncio.gather(
            *(self.nodes[i][0].connect(addr) for i, addr in dials), return_exceptions=True
        )
        await asyncio.sleep(0.5)  # identify tells each side the other serves kad
        return {"failed": sum(isinstance(r, BaseException) for r in res), "table": self._tables()}

    async def kad_refresh(self) -> dict[str, Any]:
        await asyncio.gather(*(dht.refresh() for _, dht in self.nodes), return_exceptions=True)
        return {"table": self._tables()}

    async def kad_lookups(self, keys: list[str], concurrency: int) -> dict[str, Any]:
        n = len(keys)
        lat = [0] * n
        found = [0] * n
        failed = 0
        it = iter(range(n))

        async def runner() -> None:
            nonlocal failed
            for k in it:
                dht = self.nodes[k % len(self.nodes)][1]
                t = time.monotonic_ns()
                try:
                    found[k] = len(await dht.get_closest_peers(bytes.fromhex(keys[k])))
                except Exception:
                    failed += 1
                lat[k] = time.monotonic_ns() - t

        start = time.monotonic_ns()
        await asyncio.gather(*(runner() for _ in range(max(1, concurrency))))
        return {
            "lat_ns": lat,
            "found": found,
            "failed": failed,
            "elapsed_ns": time.monotonic_ns() - start,
        }

    async def quit(self) -> dict[str, Any]:
        for h, dht in self.nodes:
            await dht.close()
            await h.close()
        return {}


async def serve() -> None:
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=reader, daemon=True).start()
    w = Worker()
    while (line := await lines.get()) is not None:
        cmd = json.loads(line)
        rid, op = cmd.pop("id"), cmd.pop("op")
        try:
            rep = await getattr(w, op)(**cmd)
        except Exception as exc:
            rep = {"error": f"{op}: {type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps({"id": rid, **rep}) + "\n")
        sys.stdout.flush()
        if op == "quit":
            break


if __name__ == "__main__":
    from rapidp2p._aio.runner import run

    run(serve())
