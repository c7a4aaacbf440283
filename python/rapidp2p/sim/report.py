"""Markdown report (and optional PNG plots) of a Kademlia run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rapidp2p.sim.published import kad_published_section

__all__ = ["render_kad_report", "write_plots"]

_OPS = ("get_closest_peers", "find_peer", "provide", "find_providers")


def _fmt(v: Any, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}{unit}"
    return f"{v}{unit}"


def render_kad_report(
    results: dict[str, Any],
    machine: dict[str, float] | None = None,
    plots: list[str] | None = None,
) -> str:
    """The report text. Without ``machine`` it depends on ``results`` alone (deterministic);
    ``plots`` are image file names (next to the report) shown under the hop table."""
    cfg = results["config"]
    n = cfg["nodes"]
    lines = [
        f"# Kademlia on the simulated network: {n} nodes, seed {cfg['seed']}",
        "",
        "Production `Host` + `KadDHT` (server mode; NAT'd nodes as clients) on a virtual clock.",
        f"Security: `{cfg['security']}`; NAT share {cfg['nat_share']}; segment loss "
        f"{cfg['loss']}; churn {cfg['churn_per_hour']}/node/h; k={cfg['k']}, "
        f"alpha={cfg['alpha']}{keepalive_note(cfg)}.",
        "",
        "## Network",
        "",
        "| figure | value |",
        "|---|---|",
        f"| nodes created / online / departed | {results['nodes_created']} / "
        f"{results['nodes_online']} / {results['nodes_departed']} |",
        f"| nodes behind NAT | {results['nat_nodes']} |",
        f"| routing table size mean (min-max) | {_fmt(results['routing_table_size']['mean'])} "
        f"({results['routing_table_size']['min']}-{results['routing_table_size']['max']}) |",
        f"| virtual seconds simulated | {_fmt(results['virtual_seconds'])} |",
        f"| deliveries / bytes delivered | {results['deliveries']} / "
        f"{results['bytes_delivered']} |",
        f"| trace digest | `{results['trace_digest'][:16]}` |",
        "",
        "Regions: " + ", ".join(f"{r} {c}" for r, c in sorted(results["regions"].items())),
        "",
        "## Operations",
        "",
        "Latency in virtual seconds. `get_closest_peers` succeeds when the true closest "
        "server (by XOR over SHA-256) is in the answer; `find_peer` when addresses come back; "
        "`provide` when at least one peer took the record; `find_providers` when another "
        "random node finds the provider.",
        "",
        "| operation | count | success | p50 | p90 | p99 | hops mean | hops max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op in _OPS:
        o = results["ops"][op]
        lines.append(
            f"| {op} | {o['count']} | {_fmt(o['success_rate'])} | {_fmt(o['latency_p50'], ' s')}"
            f" | {_fmt(o['latency_p90'], ' s')} | {_fmt(o['latency_p99'], ' s')} | "
            f"{_fmt(o['hops_mean'])} | {_fmt(o['hops_max'])} |"
        )
    log2n = results["log2_n"]
    b = 2 ** max(1, int(math.log2(max(cfg["k"], 2))))
    lines += [
        "",
        "## Hop counts against the expectation",
        "",
        f"log2(N) = {log2n:.2f} is the textbook bound for one-bit-per-hop routing; with "
        f"k-buckets of {cfg['k']} peers a lookup gains about log2(k) bits on its first hops, "
        f"so log_{b}(N) = {math.log(max(n, 2), b):.2f} is the tighter expectation. Hops are "
        "counted as `KadDHT` counts them (the depth of the peer that gave the closest "
        "answer in the lookup's tree, the first round being 1).",
        "",
        "| operation | hops mean | log2(N) | mean / log2(N) | histogram |",
        "|---|---|---|---|---|",
    ]
    for op in _OPS:
        o = results["ops"][op]
        ratio = o["hops_mean"] / log2n if o["hops_mean"] is not None and log2n else None
        hist = ", ".join(f"{h}: {c}" for h, c in o["hops_hist"].items()) or "-"
        lines.append(f"| {op} | {_fmt(o['hops_mean'])} | {log2n:.2f} | {_fmt(ratio)} | {hist} |")
    for name in plots or []:
        lines += ["", f"![{name}]({name})"]
    lines += ["", *kad_published_section(results)]
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


def keepalive_note(cfg: dict[str, Any]) -> str:
    """The yamux keep-alive of a run, for a report's set-up line (runs from before the knob
    existed have no ``keepalive`` key and pinged every 10 s)."""
    if "keepalive" not in cfg:
        return ""
    ka = cfg["keepalive"]
    return "; yamux keep-alive off" if ka is None else f"; yamux keep-alive every {ka} s"


def write_plots(results: dict[str, Any], out_dir: Path, prefix: str = "kad") -> list[Path]:
    """Hop histograms as ``<prefix>-hops.png`` when matplotlib is installed; never required
    (the prefix keeps several reports in one directory apart)."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    for op in _OPS:
        hist = results["ops"][op]["hops_hist"]
        if hist:
            ax.plot([int(h) for h in hist], list(hist.values()), marker="o", label=op)
    ax.axvline(results["log2_n"], linestyle="--", label="log2(N)")
    ax.set_xlabel("hops")
    ax.set_ylabel("lookups")
    ax.legend()
    path = out_dir / f"{prefix}-hops.png"
    fig.savefig(path)
    plt.close(fig)
    return [path]
