"""Turning results into the terminal table, the target checks, the JSON file and the chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benches.e2e.rows import Row

Results = dict[str, dict[str, dict[str, Any]]]  # row id -> stack -> figures | reason


def value(results: Results, row: str, stack: str) -> float | None:
    cell = results.get(row, {}).get(stack, {})
    v = cell.get("value")
    return float(v) if isinstance(v, (int, float)) else None


def ratio(row: Row, ours: float | None, theirs: float | None) -> float | None:
    """How rapidp2p compares: > 1 means rapidp2p is better (faster, lighter, quicker)."""
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return None
    return ours / theirs if row.higher_is_better else theirs / ours


#: Rows also given as a ratio to rapidp2p's own row without the suffix, measured in the same
#: run (``upload_ws`` / ``upload``): what the WebSocket framing costs over plain TCP.
VS_TCP_SUFFIX = "_ws"


def derive_vs_tcp(results: Results) -> None:
    """Adds ``vs_tcp`` (this row's value / the TCP row's, rapidp2p, same run: > 1 is faster
    for throughput, slower for latency) to each measured ``*_ws`` cell whose TCP row was
    measured too; nothing when either is missing."""
    for row_id, cells in results.items():
        if not row_id.endswith(VS_TCP_SUFFIX) or "rapidp2p" not in cells:
            continue
        ours = value(results, row_id, "rapidp2p")
        tcp = value(results, row_id.removesuffix(VS_TCP_SUFFIX), "rapidp2p")
        if ours is not None and tcp is not None and tcp > 0:
            cells["rapidp2p"]["vs_tcp"] = ours / tcp


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell_text(cell: dict[str, Any]) -> str:
    if "value" in cell:
        text = _fmt(float(cell["value"]))
        if "p95" in cell:
            text += f" (p95 {_fmt(float(cell['p95']))})"
        if "client" in cell and "server" in cell:
            text += f" ({_fmt(float(cell['client']))}+{_fmt(float(cell['server']))})"
        if "vs_tcp" in cell:
            text += f" ({float(cell['vs_tcp']):.2f}x TCP)"
        if "connections" in cell and "refused" in cell:
            text += f" (over {cell['connections']} conns)"
        return text
    if "unavailable" in cell:
        return "n/a"
    if "error" in cell:
        return "failed"
    return "-"


def table(rows: list[Row], stacks: list[str], results: Results) -> str:
    """One line per row: rapidp2p's figure, then every other stack's with rapidp2p's ratio."""
    others = [s for s in stacks if s != "rapidp2p"]
    header = ["row", "rapidp2p", *others]
    lines: list[list[str]] = []
    for row in rows:
        res = results.get(row.id, {})
        if not res:
            continue
        ours = value(results, row.id, "rapidp2p")
        line = [f"{row.label} [{row.unit}]", cell_text(res.get("rapidp2p", {}))]
        for s in others:
            cell = res.get(s)
            if cell is None:
                line.append("")
                continue
            text = cell_text(cell)
            r = ratio(row, ours, value(results, row.id, s))
            if r is not None:
                text += f"  x{r:.2f}"
            line.append(text)
        lines.append(line)
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) for r in lines]
    out.append(
        "x<ratio>: rapidp2p relative to that column (>1: rapidp2p better; for latency and"
        " memory, the other's figure / rapidp2p's)"
    )
    return "\n".join(out)


def reasons(results: Results) -> list[str]:
    seen: dict[str, str] = {}
    for row, cells in results.items():
        for stack, cell in cells.items():
            for key in ("unavailable", "error", "refused", "stream_errors"):
                if key in cell:
                    seen.setdefault(f"{stack}: {cell[key]}", row)
    return [f"{k}  (first in row {r})" for k, r in seen.items()]


def targets(results: Results) -> list[dict[str, Any]]:
    """The issue's targets, checked against what was measured (None: not measurable)."""
    v = lambda row, stack="rapidp2p": value(results, row, stack)  # noqa: E731
    out: list[dict[str, Any]] = []

    def check(name: str, ok: bool | None, detail: str) -> None:
        out.append({"target": name, "ok": ok, "detail": detail})

    def best(row: str, stacks: tuple[str, ...], higher: bool) -> float | None:
        vals = [x for x in (v(row, s) for s in stacks) if x is not None]
        if not vals:
            return None
        return max(vals) if higher else min(vals)

    gr = ("go-libp2p", "rust-libp2p")
    for row in ("upload", "download"):
        ours = v(row)
        if ours is None:
            continue
        check(f"{row}: >= 1 GB/s (8 Gbit/s)", ours >= 8.0, f"{ours:.2f} Gbit/s")
        other = best(row, gr, True)
        check(
            f"{row}: >= faster of go/rust",
            None if other is None else ours >= other,
            "go/rust not measured" if other is None else f"{ours:.2f} vs {other:.2f} Gbit/s",
        )
        ip = v(row, "iperf3")
        check(
            f"{row}: >= 60% of iperf3 (issue 16)",
            None if ip is None else ours >= 0.6 * ip,
            "iperf3 not measured" if ip is None else f"{100 * ours / ip:.0f}% of {ip:.2f}",
        )
    for row in ("upload", "download", "streams"):
        if (cpu := v(f"{row}_cpu")) is None:
            continue
        other = best(f"{row}_cpu", gr, False)
        check(
            f"{row}: CPU s/GiB (client+server) <= the leaner of go/rust (issue 16)",
            None if other is None else cpu <= other,
            "go/rust not measured" if other is None else f"{cpu:.2f} vs {other:.2f} s/GiB",
        )
    for row in ("upload", "download"):
        tls, noise = v(f"{row}_tls"), v(row)
        if tls is not None and noise is not None:
            check(
                f"{row}: TLS within 10% of Noise (issue 11)",
                tls >= 0.9 * noise,
                f"{tls:.2f} vs {noise:.2f} Gbit/s ({100 * tls / noise:.0f}%)",
            )
    if (p := v("ping")) is not None:
        check("ping RTT median <= 100 us", p <= 100, f"{p:.0f} us")
        raw = v("ping", "raw-tcp")
        check(
            "ping RTT median <= 1.5x raw TCP echo on uvloop (issue 16)",
            None if raw is None else p <= 1.5 * raw,
            "raw-tcp not measured" if raw is None else f"{p:.0f} vs {raw:.0f} us",
        )
    for row in ("rr_1b", "rr_1kib"):
        if (rr := v(row)) is None:
            continue
        other = best(row, gr, True)
        check(
            f"{row}: req/s >= 1.5x the faster of go/rust (issue 16)",
            None if other is None else rr >= 1.5 * other,
            "go/rust not measured" if other is None else f"{rr:.0f} vs {other:.0f}/s",
        )
    if (c := v("connect_rtt")) is not None:
        check("connect + 1-byte RTT median <= 1.5 ms", c <= 1.5, f"{c:.2f} ms")
        other = best("connect_rtt", gr, False)
        check(
            "connect + 1-byte RTT within 1.2x of go/rust",
            None if other is None else c <= 1.2 * other,
            "go/rust not measured" if other is None else f"{c:.2f} vs {other:.2f} ms",
        )
    quic_targets(v, best, check)
    reference_targets(v, check)
    for row, what, unit in (
        ("pubsub_1kib", "GossipSub 1 KiB msgs/s", "msg/s"),
        ("pubsub_64kib", "GossipSub 64 KiB msgs/s", "msg/s"),
        ("kad_lookups", "Kademlia lookups/s (mixed network)", "lookup/s"),
    ):
        if (ours := v(row)) is None:
            continue
        other = best(row, gr, True)
        check(
            f"{what} >= the faster of go/rust (issue 16)",
            None if other is None else ours >= other,
            "go/rust not measured" if other is None else f"{ours:.1f} vs {other:.1f} {unit}",
        )
    if (h := v("handshakes")) is not None:
        check("handshakes/s >= 2000 (issue 16)", h >= 2000, f"{h:.0f}/s")
        other = best("handshakes", gr, True)
        check(
            "handshakes/s >= 1.5x the faster of go/rust (issue 16)",
            None if other is None else h >= 1.5 * other,
            "go/rust not measured" if other is None else f"{h:.0f} vs {other:.0f}/s",
        )
    if (s := v("streams")) is not None and (u := v("upload")) is not None:
        check(
            "1000x1MiB aggregate >= 90% of single stream (issue 16)",
            s >= 0.9 * u,
            f"{s:.2f} vs {u:.2f} Gbit/s ({100 * s / u:.0f}%)",
        )
    if (m := v("memory")) is not None:
        check("<= 64 KiB per idle connection", m <= 64, f"{m:.1f} KiB")
    if (m := v("memory_stream")) is not None:
        check("<= 4 KiB per idle stream", m <= 4, f"{m:.2f} KiB")
    if (m := v("memory_idle")) is not None:
        check("idle node <= 20 MiB RSS (issue 16)", m <= 20, f"{m:.1f} MiB")
    return out


def quic_targets(v: Any, best: Any, check: Any) -> None:
    """Issue 11's QUIC v1 targets, from the ``*_quic`` rows (rapidp2p against go/rust QUIC)."""
    gr = ("go-libp2p", "rust-libp2p")
    for row in ("upload_quic", "download_quic"):
        if (ours := v(row)) is None:
            continue
        check(f"{row}: >= 2 Gbit/s (issue 11)", ours >= 2.0, f"{ours:.2f} Gbit/s")
        other = best(row, gr, True)
        check(
            f"{row}: >= the faster of go/rust QUIC (issue 11)",
            None if other is None else ours >= other,
            "go/rust not measured" if other is None else f"{ours:.2f} vs {other:.2f} Gbit/s",
        )
    if (c := v("connect_rtt_quic")) is not None:
        tcp = v("connect_rtt")
        check(
            "QUIC connect + 1-byte RTT below rapidp2p's TCP figure (issue 11)",
            None if tcp is None else c < tcp,
            "TCP row not measured" if tcp is None else f"{c:.2f} vs {tcp:.2f} ms",
        )
        other = best("connect_rtt_quic", gr, False)
        check(
            "QUIC connect + 1-byte RTT <= 1.2x the faster of go/rust QUIC (issue 11)",
            None if other is None else c <= 1.2 * other,
            "go/rust not measured" if other is None else f"{c:.2f} vs {other:.2f} ms",
        )
    if (m := v("memory_quic")) is not None:
        check("<= 64 KiB per idle QUIC connection (issue 11)", m <= 64, f"{m:.1f} KiB")


def reference_targets(v: Any, check: Any) -> None:
    """Issue 16: rapidp2p against rust-libp2p's own perf binary (a peer no one here wrote),
    on the rows it can run (TLS over TCP, QUIC v1)."""
    ref = "rust-libp2p-perf"
    for row, higher, unit in (
        ("upload_tls", True, "Gbit/s"),
        ("download_tls", True, "Gbit/s"),
        ("upload_quic", True, "Gbit/s"),
        ("download_quic", True, "Gbit/s"),
        ("connect_rtt_tls", False, "ms"),
        ("connect_rtt_quic", False, "ms"),
    ):
        if (ours := v(row)) is None:
            continue
        theirs = v(row, ref)
        word = ">=" if higher else "<="
        check(
            f"{row}: {word} rust-libp2p's own perf binary (issue 16)",
            None if theirs is None else (ours >= theirs if higher else ours <= theirs),
            f"{ref} not measured" if theirs is None else f"{ours:.2f} vs {theirs:.2f} {unit}",
        )


def targets_text(checks: list[dict[str, Any]]) -> str:
    mark = {True: "met   ", False: "MISSED", None: "n/a   "}
    return "\n".join(f"  {mark[c['ok']]} {c['target']}: {c['detail']}" for c in checks)


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")


def chart(path: Path, rows: list[Row], stacks: list[str], results: Results) -> str:
    """A PNG of the throughput and latency rows; returns what happened (for the log)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install 'rapidp2p[chart]')"
    import textwrap

    # One panel for the throughput rows (one unit), one per latency row (each its own unit);
    # a stack keeps its colour in every panel.
    colours = {stack: f"C{i}" for i, stack in enumerate(stacks)}
    throughput = [r for r in rows if r.chart == "throughput" and results.get(r.id)]
    latency = [r for r in rows if r.chart == "latency" and results.get(r.id)]
    panels = ([("Gbit/s (higher is better)", throughput)] if throughput else []) + [
        (f"{r.unit} (lower is better)", [r]) for r in latency
    ]
    if not panels:
        return "chart skipped: no throughput or latency figures"
    ratios = [max(1, len(chosen)) for _, chosen in panels]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4 + 3.2 * sum(ratios), 5), gridspec_kw={"width_ratios": ratios}
    )
    axes = [axes] if len(panels) == 1 else list(axes)
    labelled: set[str] = set()
    for ax, (ylabel, chosen) in zip(axes, panels, strict=True):
        width = 0.8 / max(1, len(stacks))
        for i, stack in enumerate(stacks):
            xs, ys = [], []
            for j, r in enumerate(chosen):
                val = value(results, r.id, stack)
                if val is not None:
                    xs.append(j + i * width)
                    ys.append(val)
            if ys:
                label = None if stack in labelled else stack
                labelled.add(stack)
                ax.bar(xs, ys, width, label=label, color=colours[stack])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(chosen))])
        ax.set_xlim(-width / 2 - 0.1, len(chosen) - 0.2 - width / 2 + 0.1)
        ax.set_xticklabels([textwrap.fill(r.label, 22) for r in chosen], fontsize=8)
        ax.set_ylabel(ylabel)
    fig.legend(loc="upper right", fontsize=8)
    fig.suptitle("rapidp2p end-to-end suite (loopback)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart written to {path}"
