"""Kademlia: ``closest()`` of the Rust table against a pure-Python sort by XOR distance, and
lookups per second / median hops in a 200-node in-memory network.

py-libp2p's ``RoutingTable.find_local_closest_peers`` sorts the whole table the same way as
the pure-Python baseline here (it needs a host to fill, so it is not run directly).
Run: ``pytest benches/test_bench_kad.py -s``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

import pytest

from rapidp2p import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

N_CANDIDATES = 10_000


def _ids(n: int, seed: int = 1) -> list[bytes]:
    return [hashlib.sha256(b"%d-%d" % (seed, i)).digest()[:20] + b"peer" for i in range(n)]


def _py_closest(keys: list[tuple[int, bytes]], target: bytes, n: int) -> list[bytes]:
    t = int.from_bytes(target, "big")
    return [p for _, p in sorted(keys, key=lambda kp: kp[0] ^ t)[:n]]


def _tables(k: int) -> tuple[_core.KadRoutingTable, list[tuple[int, bytes]]]:
    rt = _core.KadRoutingTable(b"local", k)
    for p in _ids(N_CANDIDATES):
        rt.update(p, 0.0)
    held = [(int.from_bytes(_core.kad_key(p), "big"), p) for p in rt.peers()]
    return rt, held


TARGET = hashlib.sha256(b"target").digest()


@pytest.mark.benchmark(group="kad-closest-full-table")
def test_closest_full_table_rust(benchmark) -> None:  # type: ignore[no-untyped-def]
    rt, held = _tables(20)
    out = benchmark(rt.closest, TARGET, 20)
    assert out == _py_closest(held, TARGET, 20)
    benchmark.extra_info["peers"] = len(rt)


@pytest.mark.benchmark(group="kad-closest-full-table")
def test_closest_full_table_python_sort(benchmark) -> None:  # type: ignore[no-untyped-def]
    _, held = _tables(20)
    benchmark(_py_closest, held, TARGET, 20)
    benchmark.extra_info["peers"] = len(held)


@pytest.mark.benchmark(group="kad-closest-10k")
def test_closest_10k_rust(benchmark) -> None:  # type: ignore[no-untyped-def]
    rt, held = _tables(N_CANDIDATES)  # k large enough to hold every candidate
    assert len(rt) == N_CANDIDATES
    out = benchmark(rt.closest, TARGET, 20)
    assert out == _py_closest(held, TARGET, 20)


@pytest.mark.benchmark(group="kad-closest-10k")
def test_closest_10k_python_sort(benchmark) -> None:  # type: ignore[no-untyped-def]
    _, held = _tables(N_CANDIDATES)
    benchmark(_py_closest, held, TARGET, 20)


@pytest.mark.skipif(os.environ.get("KAD_BENCH_NODES") == "0", reason="network bench disabled")
def test_lookups_in_200_node_network() -> None:
    from test_kad_util import network

    n = int(os.environ.get("KAD_BENCH_NODES", "200"))

    async def main() -> None:
        t0 = time.perf_counter()
        async with network(n) as nodes:
            build = time.perf_counter() - t0
            for d in nodes:
                d.lookup_hops.clear()
            lookups = 100
            t = time.perf_counter()
            for i in range(lookups):
                await nodes[i % n].get_closest_peers(b"bench-%d" % i)
            dt = time.perf_counter() - t
            hops = [h for d in nodes for h in d.lookup_hops]
            print(
                f"\n{n} nodes: built in {build:.1f} s; {lookups} sequential lookups in {dt:.2f} s"
                f" = {lookups / dt:.1f} lookups/s; median hops {statistics.median(hops)}"
                f" (max {max(hops)})"
            )

    asyncio.run(main())
