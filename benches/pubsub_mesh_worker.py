"""rapidp2p worker for ``pubsub_mesh.py``: some nodes of the mesh, driven by JSON lines.

Commands (one JSON object per stdin line, each answered by one stdout line with the same id):
start {nodes, heartbeat, idontwant} -> {addrs}; dial {dials: [[node, addr]]}; subscribe;
mesh -> {sizes}; idontwant {on}; expect {run, count};
publish {run, size, count, interval} -> {t0_ns, t1_ns};
collect {run, count, idle, limit} -> {got, subscribers, lat_ns, last_ns}; bytes -> {bytes}; quit.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from typing import Any

from rapidp2p.host import Host
from rapidp2p.pubsub import GossipSub, GossipSubParams

TOPIC = "bench"


class Recorder:
    """Per run: messages each local subscriber got, their latencies, the last arrival."""

    def __init__(self) -> None:
        self.counts: dict[int, dict[int, int]] = {}
        self.lat: dict[int, list[int]] = {}
        self.last: dict[int, int] = {}
        self.progress = asyncio.Event()

    def record(self, node: int, data: bytes) -> None:
        now = time.monotonic_ns()
        run = int.from_bytes(data[0:4], "big")
        t = int.from_bytes(data[8:16], "big")
        c = self.counts.setdefault(run, {})
        c[node] = c.get(node, 0) + 1
        self.lat.setdefault(run, []).append(now - t)
        self.last[run] = now
        self.progress.set()


class Worker:
    def __init__(self) -> None:
        self.nodes: dict[int, tuple[Host, GossipSub]] = {}
        self.rec = Recorder()
        self.tasks: list[asyncio.Task[Any]] = []

    async def start(self, nodes: list[int], heartbeat: float, idontwant: bool) -> dict[str, Any]:
        params = GossipSubParams(
            heartbeat_interval=heartbeat, idontwant_threshold=1024 if idontwant else 1 << 30
        )
        addrs = {}
        for i in nodes:
            h = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
            self.nodes[i] = (h, await h.add_service(GossipSub(h, params=params)))
            addrs[str(i)] = str(h.full_addrs[0])
        return {"addrs": addrs}

    async def dial(self, dials: list[list[Any]]) -> dict[str, Any]:
        res = await asyncio.gather(
            *(self.nodes[i][0].connect(addr) for i, addr in dials), return_exceptions=True
        )
        return {"failed": sum(isinstance(r, BaseException) for r in res)}

    async def subscribe(self) -> dict[str, Any]:
        for i, (_, ps) in self.nodes.items():
            sub = await ps.subscribe(TOPIC)
            if i != 0:
                self.tasks.append(asyncio.ensure_future(self._consume(i, sub)))
        return {}

    async def _consume(self, node: int, sub: Any) -> None:
        rec = self.rec
        while True:
            msg = await sub.get()
            rec.record(node, msg.data)

    async def mesh(self) -> dict[str, Any]:
        return {"sizes": [len(ps.mesh_peers(TOPIC)) for _, ps in self.nodes.values()]}

    async def idontwant(self, on: bool) -> dict[str, Any]:
        for _, ps in self.nodes.values():
            ps.router.params.idontwant_threshold = 1024 if on else 1 << 30
        return {}

    async def expect(self, run: int, count: int) -> dict[str, Any]:
        self.rec.counts.setdefault(run, {})
        return {}

    async def publish(self, run: int, size: int, count: int, interval: float) -> dict[str, Any]:
        ps = self.nodes[0][1]
        pad = os.urandom(max(0, size - 16))
        links = ps._links
        t0 = time.monotonic_ns()
        for seq in range(count):
            if interval:
                delay = (t0 + int(seq * interval * 1e9) - time.monotonic_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
            head = run.to_bytes(4, "big") + seq.to_bytes(4, "big")
            await ps.publish(TOPIC, head + time.monotonic_ns().to_bytes(8, "big") + pad)
            # Backpressure: as fast as the publisher's own send queues drain, no faster.
            while any(len(lk.frames) > 8 for lk in links.values()):
                await asyncio.sleep(0.0005)
            await asyncio.sleep(0)  # an application loop yields between messages
        return {"t0_ns": t0, "t1_ns": time.monotonic_ns()}

    async def collect(self, run: int, count: int, idle: float, limit: float) -> dict[str, Any]:
        """Waits for ``count`` messages per subscriber; gives up after ``idle`` s without
        progress or ``limit`` s in all."""
        end = time.monotonic() + limit
        rec = self.rec
        subs = [i for i in self.nodes if i != 0]
        while True:
            c = rec.counts.get(run, {})
            if all(c.get(i, 0) >= count for i in subs):
                break
            rec.progress.clear()
            wait = min(idle, end - time.monotonic())
            if wait <= 0:
                break
            try:
                await asyncio.wait_for(rec.progress.wait(), wait)
            except asyncio.TimeoutError:
                break
        c = rec.counts.get(run, {})
        return {
            "got": sum(min(c.get(i, 0), count) for i in subs),
            "subscribers": len(subs),
            "lat_ns": rec.lat.pop(run, []),
            "last_ns": rec.last.get(run, 0),
        }

    async def bytes(self) -> dict[str, Any]:
        return {"bytes": sum(ps.bytes_sent for _, ps in self.nodes.values())}

    async def quit(self) -> dict[str, Any]:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*(h.close() for h, _ in self.nodes.values()), return_exceptions=True)
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
    done = asyncio.Event()

    async def handle(cmd: dict[str, Any]) -> None:
        rid = cmd.pop("id")
        op = cmd.pop("op")
        try:
            rep = await getattr(w, op)(**cmd)
        except Exception as exc:
            rep = {"error": f"{op}: {type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps({"id": rid, **rep}) + "\n")
        sys.stdout.flush()
        if op == "quit":
            done.set()

    pending = set()
    while not done.is_set():
        get = asyncio.ensure_future(lines.get())
        stop = asyncio.ensure_future(done.wait())
        await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not get.done():
            get.cancel()
            break
        line = get.result()
        if line is None:
            break
        t = asyncio.ensure_future(handle(json.loads(line)))
        pending.add(t)
        t.add_done_callback(pending.discard)


if __name__ == "__main__":
    from rapidp2p._aio.runner import run

    run(serve())
