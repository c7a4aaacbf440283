"""The benchmark workers the GossipSub and Kademlia rows of ``benches/e2e`` drive
(``go-peer bench-worker``, ``rust-peer bench-worker``, ``benches/kad_mixed_worker.py``), on a
tiny scale: every op answers, a 6-node mesh delivers what node 0 publishes (strictly signed)
with latencies, and a small mixed Kademlia network of all three answers lookups. No figure is
asserted (nothing here times anything); the benchmarks themselves run only in ``nox -s bench``.
Also the orchestrators' pure helpers: the mixed network's dial plan and the lookup summary.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from peers import build_peer

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benches import kad_mixed  # noqa: E402
from benches.pubsub_mesh import Worker, dial_plan, worker_argv  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

IMPLS = {"go-libp2p": "go-peer", "rust-libp2p": "rust-peer"}


@pytest.mark.peers("go-peer", "rust-peer")
@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_pubsub_bench_worker_mesh_delivers(impl: str) -> None:
    build_peer(IMPLS[impl])
    nodes = 6  # dial_plan: a ring plus 4 random chords per node
    w = Worker(worker_argv(impl), f"test-{impl}")
    try:
        addrs = w.call("start", timeout=60, nodes=list(range(nodes)), heartbeat=0.1,
                       idontwant=True)["addrs"]  # fmt: skip
        assert sorted(addrs) == [str(i) for i in range(nodes)]
        dials = [[i, addrs[str(j)]] for i, j in dial_plan(nodes)]
        assert w.call("dial", timeout=60, dials=dials)["failed"] == 0
        w.call("subscribe")
        sizes: list[int] = []
        for _ in range(100):  # the mesh forms over a few 0.1 s heartbeats
            sizes = w.call("mesh")["sizes"]
            if min(sizes) >= 1:
                break
            time.sleep(0.1)
        assert len(sizes) == nodes and min(sizes) >= 1, sizes
        w.call("expect", run=1, count=5)
        rid = w.send("collect", run=1, count=5, idle=10.0, limit=30.0)
        pub = w.call("publish", timeout=60, run=1, size=2048, count=5, interval=0.01)
        assert pub["t1_ns"] >= pub["t0_ns"] > 0
        got = w.wait(rid, 60)
        assert got["subscribers"] == nodes - 1
        assert got["got"] == 5 * (nodes - 1)  # every subscriber, every message
        assert len(got["lat_ns"]) == 5 * (nodes - 1)
        assert all(x > 0 for x in got["lat_ns"]) and got["last_ns"] > pub["t0_ns"]
        sent = w.call("bytes")["bytes"]
        assert sent is None or sent > 5 * 2048  # go counts its frames, rust does not
        assert "unsupported" in w.call("idontwant", on=False)
    finally:
        w.close()
    assert w.proc.returncode == 0


@pytest.mark.peers("go-peer", "rust-peer")
def test_mixed_kad_network_answers_lookups() -> None:
    for peer in IMPLS.values():
        build_peer(peer)
    out = kad_mixed.run(list(kad_mixed.STACKS), nodes=2, lookups=6, concurrency=2)
    assert out["network"] == {"nodes": 6, "per_stack": 2, "stacks": list(kad_mixed.STACKS)}
    for stack in kad_mixed.STACKS:
        r = out[stack]
        assert "error" not in r, r
        assert r["lookups"] == 6 and r["failed"] == 0, r
        # Six nodes, k=20: a lookup returns (nearly) every other node, its own table too.
        assert r["found_median"] >= 4, r
        assert r["table_median"] >= 4, r


def test_kad_dial_plan_spans_every_stack_once_per_pair() -> None:
    members = [(s, i) for s in kad_mixed.STACKS for i in range(5)]
    plan = kad_mixed.dial_plan(members)
    pairs = [frozenset(p) for p in plan]
    assert len(pairs) == len(set(pairs)) and all(len(p) == 2 for p in pairs)
    # Connected: the shuffled ring alone joins every node.
    reached, todo = {0}, [0]
    while todo:
        a = todo.pop()
        for p in pairs:
            if a in p:
                (b,) = p - {a}
                if b not in reached:
                    reached.add(b)
                    todo.append(b)
    assert reached == set(range(len(members)))
    # Some connections join different implementations.
    assert any(members[a][0] != members[b][0] for a, b in plan)
    assert kad_mixed.dial_plan(members) == plan  # seeded: every run builds the same graph


def test_kad_summary_figures() -> None:
    rep = {
        "lat_ns": [4_000_000, 1_000_000, 3_000_000, 2_000_000],
        "found": [20, 19, 20, 20],
        "failed": 1,
        "elapsed_ns": 2_000_000_000,
    }
    s = kad_mixed.summarise(rep, 4)
    assert s == {"lookups": 4, "lookups_per_s": 2.0, "p50_ms": 3.0, "p99_ms": 3.0,
                 "found_median": 20.0, "failed": 1}  # fmt: skip
