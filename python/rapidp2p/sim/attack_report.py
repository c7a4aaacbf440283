"""Markdown report (and optional PNG plots) of a GossipSub attack run, with the GossipSub
paper's (Vyzovitis et al. 2020) evaluation plan for the same attack beside it
(`rapidp2p.sim.published`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rapidp2p.sim.published import attack_published_section
from rapidp2p.sim.report import _fmt, keepalive_note

__all__ = ["render_attack_report", "write_attack_plots"]


def _lat_row(label: str, d: dict[str, Any]) -> str:
    lat = d["latency"]
    return (
        f"| {label} | {d['messages']} | {d['expected']} | {d['delivered']} | "
        f"{_fmt(d['ratio'])} | {_fmt(lat['p50'], ' s')} | {_fmt(lat['p90'], ' s')} | "
        f"{_fmt(lat['p99'], ' s')} | {_fmt(lat['max'], ' s')} |"
    )


def render_attack_report(
    results: dict[str, Any],
    machine: dict[str, float] | None = None,
    plots: list[str] | None = None,
) -> str:
    """The report text; without ``machine`` it depends on ``results`` alone."""
    cfg = results["config"]
    attack = cfg["attack"]
    scoring = "on" if cfg["scoring"] else "off"
    ss = results["sybil_scores"]
    hs = results["honest_scores"]
    lines = [
        f"# GossipSub under a {attack} attack: {results['honest_nodes']} honest nodes, "
        f"{results['sybil_nodes']} Sybils, scoring {scoring}, seed {cfg['seed']}",
        "",
        "Production `Host` + `GossipSub` on a virtual clock; the Sybils run the production "
        "router with an attacker's choices (`rapidp2p.sim.sybil`). "
        f"Security `{cfg['security']}`; honest nodes dial {cfg['connect']} honest peers, "
        f"each Sybil {cfg['attack_degree']} honest nodes"
        + (" (all: the target)" if attack == "eclipse" else "")
        + f"; D={cfg['d']} ({cfg['d_lo']}-{cfg['d_hi']}); {results['messages_published']} "
        f"messages of {cfg['msg_size']} bytes at {cfg['rate']} msg/s from random honest nodes; "
        f"attack from {_fmt(results['attack_at'], ' s')} (virtual){keepalive_note(cfg)}.",
        "",
        "## Delivery to honest nodes",
        "",
        "Receivers: honest nodes online since "
        f"{cfg['settle']} s before the publish (the publisher excluded).",
        "",
        "| messages | count | expected | delivered | ratio | p50 | p90 | p99 | max |",
        "|---|---|---|---|---|---|---|---|---|",
        _lat_row("all", results["delivery"]),
    ]
    if "delivery_after_defection" in results:
        lines.append(_lat_row("after the defection", results["delivery_after_defection"]))
    if "target" in results:
        lines.append(
            _lat_row(f"to the target (node {results['target']['node']})", results["target"])
        )
    lines += [
        "",
        "| publishing window | messages | delivery ratio | p50 |"
        + (" target ratio | target p50 |" if "target" in results else ""),
        "|---|---|---|---|" + ("---|---|" if "target" in results else ""),
    ]
    tw = results.get("target", {}).get("windows", [])
    for i, (t, n, ratio, p50) in enumerate(results["delivery_windows"]):
        row = f"| {t:.0f}-{t + 10:.0f} s | {n} | {_fmt(ratio)} | {_fmt(p50, ' s')} |"
        if "target" in results:
            tr = tw[i] if i < len(tw) else [t, 0, None, None]
            row += f" {_fmt(tr[2])} | {_fmt(tr[3], ' s')} |"
        lines.append(row)
    lines += [
        "",
        "## Scores and meshes",
        "",
        "Scores the honest nodes give their connected peers at the end of the run "
        f"(graylist threshold {ss['graylist_threshold']}).",
        "",
        "| peers | pairs | below 0 | below graylist | min | median | max |",
        "|---|---|---|---|---|---|---|",
        f"| Sybils | {ss['pairs']} | {ss['below_zero']} | {ss['below_graylist']} | "
        f"{_fmt(ss['min'])} | {_fmt(ss['median'])} | {_fmt(ss['max'])} |",
        f"| honest | {hs['pairs']} | {hs['below_zero']} | - | {_fmt(hs['min'])} | "
        f"{_fmt(hs['median'])} | - |",
        "",
        "Share of the honest nodes' mesh slots held by Sybils (mean over honest nodes"
        + ("; the target's own share" if "target" in results else "")
        + "):",
        "",
        "| virtual time | Sybil share" + (" | target |" if "target" in results else " |"),
        "|---|---|" + ("---|" if "target" in results else ""),
    ]
    for t, share, tshare in results["mesh_sybil_share"]:
        row = f"| {t:.1f} s | {share:.3f} |"
        if "target" in results:
            row += f" {_fmt(tshare)} |"
        lines.append(row)
    lines += ["", *attack_published_section(results)]
    for name in plots or []:
        lines += ["", f"![{name}]({name})"]
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


def write_attack_plots(results: dict[str, Any], out_dir: Path, prefix: str) -> list[Path]:
    """``<prefix>-mesh.png`` (Sybil share of the meshes over time) and
    ``<prefix>-latency.png`` (honest delivery latency CDF) when matplotlib is installed."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return []
    cfg = results["config"]
    title = f"{cfg['attack']} attack, scoring {'on' if cfg['scoring'] else 'off'}"
    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    samples = results["mesh_sybil_share"]
    ax.plot([s[0] for s in samples], [s[1] for s in samples], marker=".", label="honest mean")
    if "target" in results:
        pts = [(s[0], s[2]) for s in samples if s[2] is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="x", label="target")
    if results["attack_at"] is not None:
        ax.axvline(results["attack_at"], linestyle="--", color="k", label="attack")
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("share of mesh slots held by Sybils")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    ax.set_title(title)
    paths.append(out_dir / f"{prefix}-mesh.png")
    fig.savefig(paths[-1])
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    cdf = results["delivery"]["latency_cdf"]
    if cdf:
        ax.plot([p[0] * 1000 for p in cdf], [p[1] for p in cdf], marker=".", label="honest")
    tcdf = results.get("target", {}).get("latency_cdf")
    if tcdf:
        ax.plot([p[0] * 1000 for p in tcdf], [p[1] for p in tcdf], marker="x", label="target")
    ax.set_xlabel("delivery latency (ms, virtual)")
    ax.set_ylabel("share of deliveries")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title)
    paths.append(out_dir / f"{prefix}-latency.png")
    fig.savefig(paths[-1])
    plt.close(fig)
    return paths
