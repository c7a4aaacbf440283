"""The simulator's own speed: how much virtual time and how many loop events one real (and
one CPU) second buys at N nodes, and what N nodes cost in memory.

Why a scenario of its own: the protocol scenarios mix setup (keys, hosts, handshakes) with
steady state, and their cost figures answer "what did this run cost", not "how fast is the
simulator". Here the workload is fixed and plain: N GossipSub nodes dialling ``connect``
random peers (setup), then ``duration`` virtual seconds of heartbeats and ``rate`` messages
a second (steady state), measured separately. An event is a callback the virtual loop
scheduled (``call_soon`` or a timer, a task step included).

``results.json`` holds what is deterministic (events, virtual seconds, deliveries, trace
digest); the speeds and memory are this machine's and go to the report's machine section.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from rapidp2p.sim.clock import CountingVirtualEventLoop
from rapidp2p.sim.gossip import GossipScenarioConfig, GossipSim
from rapidp2p.sim.kad import RunResult
from rapidp2p.sim.machine import rss_bytes
from rapidp2p.sim.report import _fmt

__all__ = ["SpeedConfig", "render_speed_report", "run_speed_scenario"]


@dataclass
class SpeedConfig:
    """What the speed run does (times in virtual seconds)."""

    nodes: int = 1000
    seed: int = 1
    security: str = "plaintext"
    connect: int = 8
    #: Seconds of steady state measured.
    duration: float = 20.0
    #: Messages per second, network-wide, during the steady state.
    rate: float = 1.0
    #: Seconds of heartbeats between the last dial and the measured steady state.
    warmup: float = 3.0
    #: Virtual seconds between two progress lines in the steady state.
    tick: float = 5.0


class _Phase:
    """Wall, CPU, virtual time and events between :meth:`start` and :meth:`stop`."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()
        self.virt0 = loop.time()
        self.ev0 = loop.events
        self.figures: dict[str, float] = {}

    def stop(self, name: str, nodes: int) -> dict[str, float]:
        wall = time.perf_counter() - self.wall0
        cpu = time.process_time() - self.cpu0
        virt = self.loop.time() - self.virt0
        ev = self.loop.events - self.ev0
        self.figures = {
            f"{name}_wall_s": wall,
            f"{name}_cpu_s": cpu,
            f"{name}_virtual_per_wall": virt / wall if wall > 0 else 0.0,
            f"{name}_virtual_per_cpu": virt / cpu if cpu > 0 else 0.0,
            f"{name}_events_per_wall_s": ev / wall if wall > 0 else 0.0,
            f"{name}_events_per_cpu_s": ev / cpu if cpu > 0 else 0.0,
            f"{name}_cpu_ms_per_node": 1000 * cpu / nodes if nodes else 0.0,
            f"{name}_rss_mb": rss_bytes() / 2**20,
        }
        return self.figures


async def run_speed_scenario(
    cfg: SpeedConfig, progress: Callable[[str], None] | None = None
) -> RunResult:
    """Setup, then the measured steady state; call inside
    ``rapidp2p.sim.clock.run(..., count_events=True)``."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, CountingVirtualEventLoop):
        raise RuntimeError("the speed scenario needs run(..., count_events=True)")
    rss0 = rss_bytes()
    gcfg = GossipScenarioConfig(
        nodes=cfg.nodes,
        seed=cfg.seed,
        security=cfg.security,
        connect=cfg.connect,
        rate=cfg.rate,
        duration=cfg.duration,
        warmup=cfg.warmup,
        drain=1.0 / cfg.rate,  # the last message's interval: ``duration`` measured in all
        sample_interval=1e9,
    )
    sim = GossipSim(gcfg)
    phase = _Phase(loop)
    ev0 = loop.events
    await sim.start(progress)
    setup = phase.stop("setup", cfg.nodes)
    setup_events = loop.events - ev0
    setup_virtual = loop.time()
    if progress is not None:
        progress(
            f"setup: {cfg.nodes} nodes in {setup['setup_wall_s']:.1f} s wall, "
            f"{setup['setup_cpu_s']:.1f} s CPU, {setup_events} events, "
            f"{setup['setup_rss_mb']:.0f} MiB"
        )
    phase = _Phase(loop)
    ev1 = loop.events
    ticker = asyncio.ensure_future(_ticker(loop, cfg.tick, progress)) if progress else None
    await sim.publish_all()
    if ticker is not None:
        ticker.cancel()
    steady = phase.stop("steady", cfg.nodes)
    steady_events = loop.events - ev1
    results: dict[str, Any] = {
        "config": asdict(cfg),
        "setup": {"events": setup_events, "virtual_seconds": round(setup_virtual, 6)},
        "steady": {
            "events": steady_events,
            "virtual_seconds": round(loop.time() - setup_virtual, 6),
            "messages": len(sim.messages),
            "delivered": sum(len(m.received) for m in sim.messages),
        },
        "deliveries": sim.net.deliveries,
        "bytes_delivered": sim.net.bytes_delivered,
        "trace_digest": sim.net.trace_digest,
    }
    machine = {
        **setup,
        **steady,
        "setup_kb_per_node": (setup["setup_rss_mb"] * 2**20 - rss0) / cfg.nodes / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    await sim.close()
    return RunResult(results, machine)


async def _ticker(loop: Any, tick: float, progress: Callable[[str], None] | None) -> None:
    """A progress line every ``tick`` virtual seconds: where the clock is, and how fast."""
    wall, virt, ev = time.perf_counter(), loop.time(), loop.events
    while True:
        await asyncio.sleep(tick)
        w = time.perf_counter()
        rate = (loop.time() - virt) / (w - wall) if w > wall else 0.0
        evs = (loop.events - ev) / (w - wall) if w > wall else 0.0
        if progress is not None:
            progress(f"t={loop.time():.0f} s virtual: {rate:.3f} sim-s/s, {evs:,.0f} events/s")
        wall, virt, ev = w, loop.time(), loop.events


def render_speed_report(results: dict[str, Any], machine: dict[str, float] | None = None) -> str:
    cfg = results["config"]
    st = results["steady"]
    lines = [
        f"# Simulator speed: {cfg['nodes']} nodes, seed {cfg['seed']}",
        "",
        f"GossipSub nodes (security `{cfg['security']}`), each dialling {cfg['connect']} random "
        f"peers; then {cfg['duration']} virtual seconds of heartbeats and {cfg['rate']} msg/s, "
        "measured apart from the setup. An event is a callback the virtual loop scheduled.",
        "",
        "| phase | events | virtual s |",
        "|---|---|---|",
        f"| setup | {results['setup']['events']} | {_fmt(results['setup']['virtual_seconds'])} |",
        f"| steady state | {st['events']} | {_fmt(st['virtual_seconds'])} |",
        "",
        f"Steady state: {st['messages']} messages, {st['delivered']} deliveries to "
        f"subscribers; {results['deliveries']} network deliveries in all; trace digest "
        f"`{results['trace_digest'][:16]}`.",
    ]
    if machine:
        lines += [
            "",
            "## This machine (varies from run to run; not part of `results.json`)",
            "",
            "| figure | value |",
            "|---|---|",
        ]
        for k, v in machine.items():
            lines.append(f"| {k} | {_fmt(v)} |")
    return "\n".join(lines) + "\n"
