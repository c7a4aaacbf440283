"""A 20-node GossipSub mesh on loopback TCP in one process: throughput, latency, overhead.

    python benches/pubsub_mesh.py [--nodes 20] [--json]

Measures (one publisher, every other node subscribed):
* messages/s the publisher can push until every subscriber has every message (1 KiB, 64 KiB);
* delivery latency p50/p99 (publish -> subscriber iterator) at a paced rate;
* pubsub bytes sent by all nodes per byte published, with IDONTWANT on and off (64 KiB).
All nodes share one event loop and one core, so figures are for the whole mesh's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import time
from typing import Any

from rapidp2p.host import Host
from rapidp2p.pubsub import GossipSub, GossipSubParams

TOPIC = "bench"


async def build(n: int, params: GossipSubParams) -> list[tuple[Host, GossipSub]]:
    rng = random.Random(1)
    nodes = []
    for _ in range(n):
        h = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
        nodes.append((h, GossipSub(h, params=params)))
    dials = []
    for i in range(n):
        for j in {(i + 1) % n, *rng.sample([k for k in range(n) if k != i], 4)}:
            dials.append(nodes[i][0].connect(str(nodes[j][0].full_addrs[0])))
    await asyncio.gather(*dials)
    for _, ps in nodes:
        await ps.subscribe(TOPIC)
    await asyncio.sleep(params.heartbeat_interval * 4)
    return nodes


async def close(nodes: list[tuple[Host, GossipSub]]) -> None:
    await asyncio.gather(*(h.close() for h, _ in nodes), return_exceptions=True)


async def throughput(nodes: list[tuple[Host, GossipSub]], size: int, count: int) -> dict[str, Any]:
    pub = nodes[0][1]
    subs = [ps._subs[TOPIC] for _, ps in nodes[1:]]
    queues = [next(iter(s)) for s in subs]
    for q in queues:
        while not q._queue.empty():
            q._queue.get_nowait()
    payload = random.randbytes(size - 8)
    done = asyncio.Event()
    want = count * len(queues)
    got = 0

    async def consume(q: Any) -> None:
        nonlocal got
        for _ in range(count):
            await q.get()
            got += 1
            if got == want:
                done.set()

    tasks = [asyncio.ensure_future(consume(q)) for q in queues]
    start = time.perf_counter()
    for i in range(count):
        await pub.publish(TOPIC, i.to_bytes(8, "big") + payload)
        await asyncio.sleep(0)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - start
    for t in tasks:
        t.cancel()
    return {
        "size": size,
        "messages": count,
        "delivered_fraction": got / want,
        "msgs_per_s": count / elapsed,
        "MiB_per_s_published": count * size / elapsed / (1 << 20),
    }


async def latency(nodes: list[tuple[Host, GossipSub]], count: int) -> dict[str, float]:
    pub = nodes[0][1]
    sent: dict[bytes, float] = {}
    lat: list[float] = []
    queues = [next(iter(ps._subs[TOPIC])) for _, ps in nodes[1:]]

    async def consume(q: Any) -> None:
        while True:
            msg = await q.get()
            t = sent.get(msg.data[:8])
            if t is not None:
                lat.append(time.perf_counter() - t)

    tasks = [asyncio.ensure_future(consume(q)) for q in queues]
    for i in range(count):
        key = (10**9 + i).to_bytes(8, "big")
        sent[key] = time.perf_counter()
        await pub.publish(TOPIC, key + b"x" * 1016)
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)
    for t in tasks:
        t.cancel()
    lat.sort()
    return {
        "samples": len(lat),
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
    }


async def overhead(n: int, idontwant: bool, size: int, count: int) -> dict[str, Any]:
    params = GossipSubParams(
        heartbeat_interval=0.2, idontwant_threshold=1024 if idontwant else 1 << 30
    )
    nodes = await build(n, params)
    try:
        before = sum(ps.bytes_sent for _, ps in nodes)
        res = await throughput(nodes, size, count)
        await asyncio.sleep(0.5)
        sent = sum(ps.bytes_sent for _, ps in nodes) - before
        return {
            "idontwant": idontwant,
            "bytes_sent_per_byte_published": sent / (count * size),
            "delivered_fraction": res["delivered_fraction"],
        }
    finally:
        await close(nodes)


async def main(n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"nodes": n}
    nodes = await build(n, GossipSubParams(heartbeat_interval=0.2))
    try:
        out["throughput_1KiB"] = await throughput(nodes, 1024, 2000)
        out["throughput_64KiB"] = await throughput(nodes, 65536, 200)
        out["latency_1KiB"] = await latency(nodes, 200)
    finally:
        await close(nodes)
    out["overhead_64KiB_idontwant_on"] = await overhead(n, True, 65536, 100)
    out["overhead_64KiB_idontwant_off"] = await overhead(n, False, 65536, 100)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from rapidp2p._aio.runner import run

    result = run(main(a.nodes))
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
