"""CPU per delivered GossipSub message: a before/after figure that the machine's load does not
swing the way wall-clock rates do.

    python benches/pubsub_mesh_cpu.py [--rounds 2] rapidp2p rapidp2p@/other/venv/bin/python ...

For each implementation in turn (``rounds`` times, alternating), a fresh 20-node mesh of
``pubsub_mesh.py`` (setup "multi"): 200 x 1 KiB at 20 msg/s, then 40 x 64 KiB at 4 msg/s;
prints the CPU time of all its worker processes (``/proc/<pid>/stat``, user + system) per
message delivered to a subscriber, in microseconds.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benches.pubsub_mesh import Mesh  # noqa: E402

#: (label, size, count, rate): paced, far below every implementation's sustained rate.
LOADS = (("1KiB", 1024, 200, 20.0), ("64KiB", 65536, 40, 4.0))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def measure(impl: str, nodes: int) -> dict[str, float]:
    """CPU microseconds per delivered message, per load, on a fresh mesh of ``impl``."""
    mesh = Mesh(impl, nodes, "multi", 2, {"heartbeat": 0.5, "idontwant": True})
    out: dict[str, float] = {}
    try:
        pids = [w.proc.pid for w in mesh.workers]
        for label, size, count, rate in LOADS:
            before = cpu_seconds(pids)
            r = mesh.measure(size, count, 1.0 / rate)
            used = cpu_seconds(pids) - before
            delivered = r["delivered"] * count * (nodes - 1)
            out[label] = round(used / delivered * 1e6, 1) if delivered else float("nan")
    finally:
        mesh.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("impls", nargs="+")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--nodes", type=int, default=20)
    a = ap.parse_args()
    for _ in range(a.rounds):
        for impl in a.impls:
            res = measure(impl, a.nodes)
            load = os.getloadavg()[0]
            print(f"{impl}: CPU us per delivered message {res} (load {load:.1f})", flush=True)


if __name__ == "__main__":
    main()
