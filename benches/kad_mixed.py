"""A mixed Kademlia network on loopback TCP: rapidp2p, go-libp2p-kad-dht and rust-libp2p kad
nodes in one DHT; lookups per second and lookup latency of each implementation's nodes.

    python benches/kad_mixed.py [--nodes 17] [--lookups 300] [--concurrency 8]
                                [--stacks rapidp2p,go-libp2p,rust-libp2p] [--json]

Every implementation runs ``--nodes`` server-mode nodes (/ipfs/kad/1.0.0, k=20, Noise + yamux)
in one worker process (``kad_mixed_worker.py``; ``go-peer bench-worker``; ``rust-peer
bench-worker``), driven over JSON lines. The dial graph spans all of them: each node dials
its successor in one shuffled list of every node and 3 random others, then every node
refreshes its table (twice). Then, one implementation at a time (the others' nodes stay up
and answer), ``--lookups`` GetClosestPeers lookups of random 32-byte keys from its nodes in
turn, ``--concurrency`` at a time: lookups/s over the whole batch, latency p50/p99, how many
peers each lookup returned (median) and how many failed. The same keys for every
implementation, so every one walks the same network to the same targets.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benches.pubsub_mesh import Worker, bench_worker_argv, rapidp2p_python  # noqa: E402

STACKS = ("rapidp2p", "go-libp2p", "rust-libp2p")


def kad_worker_argv(stack: str) -> list[str]:
    python = rapidp2p_python(stack)  # rapidp2p, or rapidp2p@PYTHON: another build of it
    if python is not None:
        return [python, str(Path(__file__).resolve().parent / "kad_mixed_worker.py")]
    return bench_worker_argv(stack)


def dial_plan(members: list[tuple[str, int]], seed: int = 2) -> list[tuple[int, int]]:
    """(dialer, target) indices into ``members``: a ring over a shuffled order plus 3 random
    chords per node, one connection per pair, so every implementation meets the others."""
    rng = random.Random(seed)
    order = list(range(len(members)))
    rng.shuffle(order)
    n = len(order)
    seen: set[frozenset[int]] = set()
    plan = []
    for pos, i in enumerate(order):
        others = [k for k in range(n) if k != i]
        for j in [order[(pos + 1) % n], *rng.sample(others, min(3, len(others)))]:
            pair = frozenset((i, j))
            if pair not in seen:
                seen.add(pair)
                plan.append((i, j))
    return plan


def summarise(rep: dict[str, Any], lookups: int) -> dict[str, Any]:
    """One implementation's figures from its worker's ``kad_lookups`` reply."""
    lat = sorted(rep["lat_ns"])
    elapsed = rep["elapsed_ns"] / 1e9
    return {
        "lookups": lookups,
        "lookups_per_s": round(lookups / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(lat[len(lat) // 2] / 1e6, 2),
        "p99_ms": round(lat[int(0.99 * (len(lat) - 1))] / 1e6, 2),
        "found_median": statistics.median(rep["found"]),
        "failed": rep["failed"],
    }


def run(
    stacks: list[str], nodes: int, lookups: int, concurrency: int, log: Any = sys.stderr
) -> dict[str, Any]:
    """Builds the mixed network, measures each implementation's lookups; figures per stack
    (an implementation whose worker failed gets ``{"error": ...}``)."""
    workers: dict[str, Worker] = {}
    out: dict[str, Any] = {}
    try:
        members: list[tuple[str, int]] = []
        addrs: list[str] = []
        for stack in stacks:
            try:
                w = Worker(kad_worker_argv(stack), f"kad-{stack}")
                rep = w.call("kad_start", timeout=300, count=nodes)
            except Exception as exc:
                out[stack] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            workers[stack] = w
            members += [(stack, i) for i in range(nodes)]
            addrs += rep["addrs"]
        plan = dial_plan(members)
        rids = []
        for stack, w in workers.items():
            dials = [[members[i][1], addrs[j]] for i, j in plan if members[i][0] == stack]
            rids.append((stack, w.send("kad_connect", dials=dials)))
        for stack, rid in rids:
            rep = workers[stack].wait(rid, 300)
            print(f"kad {stack}: {rep['failed']} dials failed", file=log)
        tables: dict[str, list[int]] = {}
        for _ in range(2):
            rids = [(s, w.send("kad_refresh")) for s, w in workers.items()]
            for s, rid in rids:
                tables[s] = workers[s].wait(rid, 600)["table"]
        rng = random.Random(3)
        keys = [rng.randbytes(32).hex() for _ in range(lookups)]
        for stack, w in workers.items():
            time.sleep(1.0)
            rep = w.call("kad_lookups", timeout=1200, keys=keys, concurrency=concurrency)
            out[stack] = summarise(rep, lookups)
            out[stack]["table_median"] = statistics.median(tables[stack])
            print(f"kad {stack}: {out[stack]}", file=log)
    finally:
        for w in workers.values():
            w.close()
    out["network"] = {"nodes": nodes * len(workers), "per_stack": nodes, "stacks": list(workers)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=17, help="nodes per implementation")
    ap.add_argument("--lookups", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--stacks", default=",".join(STACKS))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    load0 = os.getloadavg()
    stacks = [s for s in a.stacks.split(",") if s]
    res = run(stacks, a.nodes, a.lookups, a.concurrency)
    res["machine"] = {
        "cpus": os.cpu_count(),
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
    }
    if a.json:
        print(json.dumps(res))
        return
    print(f"{'stack':14} {'lookups/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'found':>6} {'failed':>6}")
    for s in stacks:
        r = res.get(s)
        if r is None:
            continue
        if "error" in r:
            print(f"{s:14} {r['error']}")
            continue
        print(f"{s:14} {r['lookups_per_s']:>10} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['found_median']:>6} {r['failed']:>6}")  # fmt: skip
    print(json.dumps(res["network"]), json.dumps(res["machine"]))


if __name__ == "__main__":
    main()
