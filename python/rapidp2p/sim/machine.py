"""This machine's cost of a run: wall-clock time, virtual/wall ratio, resident memory.

Kept apart from the deterministic results: these figures change from run to run.
"""

from __future__ import annotations

import resource
import sys
import time

__all__ = ["MachineMeter", "rss_bytes"]


def rss_bytes() -> int:
    """Current resident set size (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize()
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class MachineMeter:
    """Marks phases: wall seconds, virtual seconds and RSS at each mark."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._cpu0 = time.process_time()
        self._rss0 = rss_bytes()
        self._marks: list[tuple[str, float, float, int, int]] = []

    def mark(self, name: str, virtual_now: float, nodes: int) -> None:
        self._marks.append((name, time.perf_counter() - self._t0, virtual_now, rss_bytes(), nodes))

    def figures(self) -> dict[str, float]:
        out: dict[str, float] = {"rss_start_mb": self._rss0 / 2**20}
        prev_wall, prev_virt = 0.0, 0.0
        for name, wall, virt, rss, nodes in self._marks:
            out[f"{name}_wall_s"] = wall - prev_wall
            out[f"{name}_virtual_s"] = virt - prev_virt
            out[f"{name}_rss_mb"] = rss / 2**20
            if name == "bootstrap" and nodes:
                out["memory_per_node_kb"] = (rss - self._rss0) / nodes / 1024
            prev_wall, prev_virt = wall, virt
        if self._marks:
            _, wall, virt, _, _ = self._marks[-1]
            out["wall_s"] = wall
            out["virtual_s"] = virt
            out["virtual_per_wall"] = virt / wall if wall > 0 else float("inf")
            cpu = time.process_time() - self._cpu0
            out["cpu_s"] = cpu
            out["virtual_per_cpu"] = virt / cpu if cpu > 0 else float("inf")
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return out
