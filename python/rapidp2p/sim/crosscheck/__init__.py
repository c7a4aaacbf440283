"""Real processes as a cross-check of the simulator (issue 17).

``rapidp2p sim crosscheck kad|gossipsub|both --nodes 100 --seed S --out DIR`` runs a scenario
in the simulator, recording it (:mod:`.plan`), then replays it with one real OS process per
node, each in its own network namespace, behind a userspace router that applies the same
latency model (:mod:`.harness`, :mod:`.router`, :mod:`.netns`, :mod:`.node`), and writes a
report comparing the two against stated tolerances (:mod:`.compare`). Needs root (network
namespaces, TUN devices) and iproute2's ``ip``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CrosscheckConfig", "run_crosscheck"]


@dataclass
class CrosscheckConfig:
    """One cross-check run."""

    scenario: str = "both"
    nodes: int = 100
    seed: int = 1
    security: str = "noise"
    #: Kademlia: operations of each kind, and seconds between two.
    queries: int = 50
    op_interval: float = 1.0
    #: GossipSub: messages per second, seconds of publishing, warm-up and drain.
    rate: float = 1.0
    duration: float = 30.0
    warmup: float = 10.0
    drain: float = 10.0
    msg_size: int = 2048
    connect: int = 8
    #: Nice value of the node processes (0: as everything else; negative: ahead of the
    #: machine's other work, to see how much of a gap is CPU scheduling).
    node_nice: int = 0
    #: The command line that produced the run, for the report.
    commands: list[str] = field(default_factory=list)


def _median_one_way(nodes: list[Any]) -> float:
    from rapidp2p.sim.crosscheck.harness import base_matrix

    m = base_matrix(nodes)
    return statistics.median(m[i][j] for i in range(len(m)) for j in range(len(m)) if i != j)


def _overhead(real: dict[str, Any]) -> float:
    p50: float = real["router_under_load"]["one_way_s"].get("p50", 0.0)
    return p50


def _kad(cfg: CrosscheckConfig, say: Callable[[str], None], res: dict[str, Any]) -> None:
    from rapidp2p.sim.clock import run
    from rapidp2p.sim.crosscheck.compare import kad_checks, kad_figures
    from rapidp2p.sim.crosscheck.harness import run_kad_real, testbed
    from rapidp2p.sim.crosscheck.plan import record_kad
    from rapidp2p.sim.kad import KadScenarioConfig

    kcfg = KadScenarioConfig(
        nodes=cfg.nodes,
        seed=cfg.seed,
        queries=cfg.queries,
        op_interval=cfg.op_interval,
        security=cfg.security,
    )
    t = time.monotonic()
    say("kad: simulating")
    plan = run(record_kad(kcfg))
    res["wall_s"]["kad: simulator"] = time.monotonic() - t
    t = time.monotonic()
    with testbed(plan.nodes, plan.net, cfg.seed, say, cfg.node_nice) as bed:
        idle = bed.router_idle
        real = asyncio.run(run_kad_real(bed, plan, say))
    res["wall_s"]["kad: real processes (setup, run, teardown)"] = time.monotonic() - t
    res.setdefault("router_idle", idle)
    res.setdefault("median_one_way_s", _median_one_way(plan.nodes))
    sim_f = kad_figures(plan.ops)
    real_f = kad_figures(real["ops"])
    ratios: dict[str, float | None] = {}
    for kind in sim_f:
        pairs = [
            r["latency"] / s["latency"]
            for s, r in zip(plan.ops, real["ops"], strict=True)
            if s["op"] == kind and s["latency"] > 0
        ]
        ratios[kind] = statistics.median(pairs) if pairs else None
    res["kad"] = {
        "real_node_cpu_s": bed.node_cpu_s,
        "real_load_average": real["load_average"],
        "real_wall_s": res["wall_s"]["kad: real processes (setup, run, teardown)"],
        "config": plan.config,
        "sim": sim_f,
        "real": real_f,
        "checks": kad_checks(sim_f, real_f, _overhead(real), res["median_one_way_s"]),
        "paired_ratio_median": ratios,
        "sim_routing_mean": plan.summary["routing_table_size"]["mean"],
        "real_routing_mean": statistics.fmean(real["routing_table_size"]),
        "real_joins_ok": real["joins_ok"],
        "real_join_errors": real["join_errors"],
        "real_bootstrap_wall_s": real["bootstrap_wall_s"],
        "router": real["router"],
        "router_under_load": real["router_under_load"],
        "real_errors": sorted({o["error"] for o in real["ops"] if o["error"]}),
    }


def _gossip(cfg: CrosscheckConfig, say: Callable[[str], None], res: dict[str, Any]) -> None:
    from rapidp2p.sim.clock import run
    from rapidp2p.sim.crosscheck.compare import gossip_checks, gossip_figures
    from rapidp2p.sim.crosscheck.harness import run_gossip_real, testbed
    from rapidp2p.sim.crosscheck.plan import record_gossip
    from rapidp2p.sim.gossip import GossipScenarioConfig

    gcfg = GossipScenarioConfig(
        nodes=cfg.nodes,
        seed=cfg.seed,
        security=cfg.security,
        rate=cfg.rate,
        duration=cfg.duration,
        warmup=cfg.warmup,
        drain=cfg.drain,
        msg_size=cfg.msg_size,
        connect=cfg.connect,
    )
    t = time.monotonic()
    say("gossipsub: simulating")
    plan = run(record_gossip(gcfg))
    res["wall_s"]["gossipsub: simulator"] = time.monotonic() - t
    t = time.monotonic()
    with testbed(plan.nodes, plan.net, cfg.seed, say, cfg.node_nice) as bed:
        idle = bed.router_idle
        real = asyncio.run(run_gossip_real(bed, plan, say))
    res["wall_s"]["gossipsub: real processes (setup, run, teardown)"] = time.monotonic() - t
    res.setdefault("router_idle", idle)
    res.setdefault("median_one_way_s", _median_one_way(plan.nodes))
    sim_f = gossip_figures(plan.received, plan.counters, cfg.nodes)
    real_f = gossip_figures(real["received"], real["counters"], cfg.nodes)
    res["gossipsub"] = {
        "real_node_cpu_s": bed.node_cpu_s,
        "real_load_average": real["load_average"],
        "real_wall_s": res["wall_s"]["gossipsub: real processes (setup, run, teardown)"],
        "config": plan.config,
        "sim": sim_f,
        "real": real_f,
        "checks": gossip_checks(sim_f, real_f, _overhead(real), res["median_one_way_s"]),
        "sim_summary_delivery_ratio": plan.summary["delivery"]["ratio"],
        "real_publish_errors": real["publish_errors"],
        "router": real["router"],
        "router_under_load": real["router_under_load"],
    }


def run_crosscheck(
    cfg: CrosscheckConfig, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Runs the scenario(s) both ways; returns what ``results.json`` holds."""
    say = progress or (lambda _m: None)
    if cfg.scenario not in ("kad", "gossipsub", "both"):
        raise ValueError(f"unknown scenario {cfg.scenario!r}")
    res: dict[str, Any] = {
        "nodes": cfg.nodes,
        "seed": cfg.seed,
        "scenario": cfg.scenario,
        "node_nice": cfg.node_nice,
        "commands": cfg.commands,
        "wall_s": {},
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "python": platform.python_version(),
        },
    }
    t = time.monotonic()
    if cfg.scenario in ("kad", "both"):
        _kad(cfg, say, res)
    if cfg.scenario in ("gossipsub", "both"):
        _gossip(cfg, say, res)
    res["wall_s"]["total"] = time.monotonic() - t
    checks = [c for sc in ("kad", "gossipsub") if sc in res for c in res[sc]["checks"]]
    res["checks"] = len(checks)
    res["agree"] = sum(c["ok"] for c in checks)
    return res


def write_outputs(res: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``crosscheck[-<scenario>]-n<N>-seed<S>.md`` and ``.results.json`` in ``out_dir``."""
    from rapidp2p.sim.crosscheck.compare import render_report

    out_dir.mkdir(parents=True, exist_ok=True)
    sc = "" if res["scenario"] == "both" else f"-{res['scenario']}"
    nice = f"-nice{res['node_nice']}" if res.get("node_nice") else ""
    stem = f"crosscheck{sc}-n{res['nodes']}-seed{res['seed']}{nice}"
    md = out_dir / f"{stem}.md"
    js = out_dir / f"{stem}.results.json"
    md.write_text(render_report(res))
    js.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    return md, js
