"""Markdown report (and optional PNG plots) of a GossipSub run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rapidp2p.sim.published import gossip_published_section
from rapidp2p.sim.report import _fmt, keepalive_note

__all__ = ["render_gossip_report", "write_gossip_plots"]


def render_gossip_report(
    results: dict[str, Any],
    machine: dict[str, float] | None = None,
    plots: list[str] | None = None,
) -> str:
    """The report text. Without ``machine`` it depends on ``results`` alone (deterministic);
    ``plots`` are image file names (next to the report) shown at the end of the figures."""
    cfg = results["config"]
    d = results["delivery"]
    lat = results["latency"]
    amp = results["amplification"]
    mesh = results["mesh_degree"]
    # Numeric order: after a JSON round trip the keys are strings sorted as text ("10" < "4").
    degrees = sorted(mesh["histogram"], key=int)
    idw = "on (production threshold, 1 KiB)" if cfg["idontwant"] else "off"
    lines = [
        f"# GossipSub on the simulated network: {cfg['nodes']} nodes, seed {cfg['seed']}",
        "",
        "Production `Host` + `GossipSub` (v1.2, default scoring) on a virtual clock, one topic "
        "that every node subscribes to.",
        f"Security: `{cfg['security']}`; each node dials {cfg['connect']} random peers; "
        f"D={cfg['d']} (D_lo {cfg['d_lo']}, D_hi {cfg['d_hi']}), heartbeat "
        f"{cfg['heartbeat_interval']} s; IDONTWANT {idw}.",
        f"{results['messages_published']} messages of {cfg['msg_size']} bytes, {cfg['rate']} "
        f"msg/s for {cfg['duration']} s after a {cfg['warmup']} s warm-up, each from a random "
        f"node; churn {cfg['churn_per_hour']}/node/h; NAT share {cfg['nat_share']}; segment "
        f"loss {cfg['loss']}{keepalive_note(cfg)}.",
        "",
        "## Network",
        "",
        "| figure | value |",
        "|---|---|",
        f"| nodes created / online at the end / departed | {results['nodes_created']} / "
        f"{results['nodes_online']} / {results['nodes_departed']} |",
        f"| nodes behind NAT | {results['nat_nodes']} |",
        f"| virtual seconds simulated | {_fmt(results['virtual_seconds'])} |",
        f"| deliveries / bytes delivered (all protocols) | {results['deliveries']} / "
        f"{results['bytes_delivered']} |",
        f"| pubsub bytes sent | {results['pubsub_bytes_sent']} |",
        f"| trace digest | `{results['trace_digest'][:16]}` |",
        "",
        "## Delivery",
        "",
        f"A node is expected to receive a message when it was online {cfg['settle']} s before "
        f"the publish and still online {cfg['drain']} s after it (the publisher excluded). "
        "Latency is from the publish call to the first delivery to the node's subscription, "
        "in virtual seconds.",
        "",
        "| expected | delivered | ratio | messages reaching every expected node | worst message |",
        "|---|---|---|---|---|",
        f"| {d['expected']} | {d['delivered']} | {_fmt(d['ratio'])} | "
        f"{d['messages_fully_delivered']} / {results['messages_published']} | "
        f"{_fmt(d['worst_message_ratio'])} |",
        "",
        "| latency p50 | p90 | p99 | max | mean |",
        "|---|---|---|---|---|",
        f"| {_fmt(lat['p50'], ' s')} | {_fmt(lat['p90'], ' s')} | {_fmt(lat['p99'], ' s')} | "
        f"{_fmt(lat['max'], ' s')} | {_fmt(lat['mean'], ' s')} |",
        "",
        "## Amplification",
        "",
        "Every copy of a message that reached a node's router, counted against the messages "
        "it accepted: 1 would be a perfect spanning tree. Flood publishing (the publisher "
        "sends to every peer in the topic) and the mesh (each node forwards to its D mesh "
        "peers but the sender) cost the rest; IDONTWANT lets a node tell its mesh peers that "
        "it already has a large message.",
        "",
        "| copies received | duplicates | accepted | copies per accepted | duplicates per "
        "accepted |",
        "|---|---|---|---|---|",
        f"| {amp['copies_received']} | {amp['duplicates']} | {amp['accepted']} | "
        f"{_fmt(amp['copies_per_accepted'])} | {_fmt(amp['duplicates_per_accepted'])} |",
        "",
        "## Mesh degree",
        "",
        f"At the end: mean {_fmt(mesh['mean'])}, min {_fmt(mesh['min'])}, max "
        f"{_fmt(mesh['max'])} (target D={cfg['d']}, kept within [{cfg['d_lo']}, "
        f"{cfg['d_hi']}] by the heartbeat).",
        "",
        "| degree | " + " | ".join(str(k) for k in degrees) + " |",
        "|---|" + "---|" * len(degrees),
        "| nodes | " + " | ".join(str(mesh["histogram"][k]) for k in degrees) + " |",
        "",
        "| virtual time | mean degree | min degree |",
        "|---|---|---|",
    ]
    for t, mean, low in mesh["samples"]:
        lines.append(f"| {t:.1f} s | {mean:.2f} | {low} |")
    for name in plots or []:
        lines += ["", f"![{name}]({name})"]
    lines += ["", *gossip_published_section(results)]
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


def write_gossip_plots(results: dict[str, Any], out_dir: Path, prefix: str) -> list[Path]:
    """``<prefix>-latency.png`` (delivery latency CDF) and ``<prefix>-mesh.png`` (final
    mesh degree histogram) when matplotlib is installed; never required."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return []
    paths = []
    cdf = results["latency_cdf"]
    fig, ax = plt.subplots(figsize=(6, 4))
    if cdf:
        ax.plot([p[0] * 1000 for p in cdf], [p[1] for p in cdf], marker=".")
    ax.set_xlabel("delivery latency (ms, virtual)")
    ax.set_ylabel("share of deliveries")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"GossipSub, {results['config']['nodes']} nodes: latency CDF")
    paths.append(out_dir / f"{prefix}-latency.png")
    fig.savefig(paths[-1])
    plt.close(fig)
    hist = results["mesh_degree"]["histogram"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([int(k) for k in hist], list(hist.values()))
    cfg = results["config"]
    ax.axvline(cfg["d"], linestyle="--", color="k", label=f"D={cfg['d']}")
    ax.set_xlabel("mesh degree")
    ax.set_ylabel("nodes")
    ax.legend()
    ax.set_title("mesh degree at the end of the run")
    paths.append(out_dir / f"{prefix}-mesh.png")
    fig.savefig(paths[-1])
    plt.close(fig)
    return paths
