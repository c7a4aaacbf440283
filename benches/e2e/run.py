"""The end-to-end suite: every row, every stack, side by side, in one run.

    python -m benches.e2e [--quick] [--bulk-mib N] [--stacks a,b] [--rows a,b] [--out FILE]

Stacks are command lines with the ``rapidp2p perf`` flags (benches/e2e/stacks.py): rapidp2p,
the go/rust interop peers (``tests/interop/<peer>/run perf``), py-libp2p's own perf service,
raw TCP on uvloop and iperf3 as ceilings. A stack that cannot run prints why and gets no
number. Figures go to a table (stdout), a JSON file and a PNG chart (matplotlib optional).
Nothing asserts on time: the targets are reported, met or missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from benches.e2e import report
from benches.e2e import rows as rows_mod
from benches.e2e.rows import MIB, ROWS, Config, Row
from benches.e2e.stacks import ROOT, Stack, Unavailable, discover

ALL_STACKS = [
    "rapidp2p",
    "rapidp2p+psk",
    "iperf3",
    "raw-tcp",
    "go-libp2p",
    "go-libp2p+psk",
    "rust-libp2p",
    "py-libp2p",
    "rust-libp2p-perf",
    "rapidp2p>rust-perf",
    "rust-perf>rapidp2p",
]


#: Rows whose client is this process's rapidp2p: another build's column would mix two builds.
IN_PROCESS_CLIENT_ROWS = (
    "ping",
    "metrics_overhead",
    "rcmgr_overhead",
    "metrics_overhead_handshakes",
    "rcmgr_overhead_handshakes",
)


def runs_row(row: Row, stack: Stack) -> bool:
    """Whether ``stack`` has a cell in ``row`` (another build runs its base stack's rows)."""
    if stack.variant_of is not None:
        if row.id in IN_PROCESS_CLIENT_ROWS:
            return False
        return row.stacks is None or stack.variant_of in row.stacks
    return row.stacks is None or stack.name in row.stacks


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.monotonic()
        self.tty = sys.stderr.isatty()

    def step(self, label: str) -> None:
        width = 30
        filled = int(width * self.done / max(1, self.total))
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"{time.monotonic() - self.start:5.0f}s {label}"
        )
        if self.tty:
            sys.stderr.write("\r\033[K" + line[:150])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def advance(self) -> None:
        self.done += 1

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benches.e2e",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--stacks",
        default=",".join(ALL_STACKS),
        help="comma-separated; rapidp2p@PYTHON adds the rapidp2p installed for another "
        "interpreter as a column (before/after two builds in one run)",
    )
    p.add_argument("--rows", default=",".join(r.id for r in ROWS))
    p.add_argument("--bulk-mib", type=int, default=1024, help="single-stream size (default 1 GiB)")
    p.add_argument("--py-bulk-mib", type=int, default=64, help="py-libp2p's size (default 64)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smaller figures for iterating: 256 MiB bulk, fewer runs",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench-results" / "e2e.json")
    p.add_argument("--chart", type=Path, default=ROOT / "bench-results" / "e2e.png")
    p.add_argument("--no-chart", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = Config(bulk_bytes=args.bulk_mib * MIB, py_bulk_bytes=args.py_bulk_mib * MIB)
    if args.quick:
        cfg.bulk_bytes = min(cfg.bulk_bytes, 256 * MIB)
        cfg.py_bulk_bytes = min(cfg.py_bulk_bytes, 16 * MIB)
        cfg.latency_runs, cfg.rr_iterations, cfg.handshakes = 30, 500, 300
        cfg.py_rr_iterations, cfg.py_handshakes = 50, 30
        cfg.quick, cfg.kad_lookups = True, 100
    wanted_rows = args.rows.split(",")
    rows = [r for r in ROWS if r.id in wanted_rows]
    print("discovering stacks (builds interop peers if needed)...", file=sys.stderr)
    asked = args.stacks.split(",")
    builds = [s for s in asked if s.startswith("rapidp2p@")]
    stacks = discover([s for s in ALL_STACKS if s in asked] + builds)
    names = [s.name for s in stacks]
    # Another build's mesh and Kademlia nodes run in workers of its own interpreter.
    rows_mod.RAPIDP2P_BUILDS.update(
        {s.name: s.argv[0] for s in stacks if s.variant_of == "rapidp2p" and s.available}
    )
    for s in stacks:
        state = "available" if s.available else f"UNAVAILABLE: {s.reason}"
        print(
            f"  {s.name:<12} {state}" + (f"  ({'; '.join(s.notes)})" if s.notes else ""),
            file=sys.stderr,
        )

    results: report.Results = {}
    jobs = [(r, s) for r in rows for s in stacks if runs_row(r, s)]
    bar = Progress(len(jobs))
    for row, stack in jobs:
        bar.step(f"{row.id}: {stack.name}")
        cells = results.setdefault(row.id, {})
        if not stack.available:
            cells[stack.name] = {"unavailable": stack.reason}
        else:
            try:
                cells[stack.name] = row.measure(stack, cfg)
            except Unavailable as exc:
                cells[stack.name] = {"unavailable": str(exc)}
            except Exception as exc:  # one failure must not hide the other rows
                cells[stack.name] = {"error": f"{type(exc).__name__}: {exc}"}
        bar.advance()
        if row.id == "memory":
            _derive_memory(results, stack.name)
        _derive_cpu(row, results, stack.name)
    bar.step("done")
    bar.close()
    report.derive_vs_tcp(results)  # the /ws rows against the TCP rows of this run

    shown = _with_cpu_rows(rows) + _memory_rows(rows)
    print()
    print(
        f"rapidp2p end-to-end suite: {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}, loopback TCP, Noise + yamux "
        "(QUIC v1 rows: loopback UDP)"
    )
    print(
        f"sizes: single stream {cfg.bulk_bytes // MIB} MiB (py-libp2p {cfg.py_bulk_bytes // MIB}"
        f" MiB: it moves ~10 MB/s), {cfg.latency_runs} connect runs, {cfg.rr_iterations} "
        f"request/response (py-libp2p {cfg.py_rr_iterations}), {cfg.handshakes} handshakes "
        f"(py-libp2p {cfg.py_handshakes})"
    )
    print(report.table(shown, names, results))
    why = report.reasons(results)
    if why:
        print("\nnot measured:")
        for line in why:
            print(f"  {line}")
    checks = report.targets(results)
    if "network" in rows_mod._KAD:
        net = rows_mod._KAD["network"]
        print(
            f"Kademlia network: {net['nodes']} nodes ({net['per_stack']} each of "
            f"{', '.join(net['stacks'])}), {cfg.kad_lookups} lookups per implementation"
        )
    print("\ntargets (issues 4, 11 and 16):")
    print(report.targets_text(checks))
    doc: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "arch": platform.machine(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": cfg.__dict__,
        "stacks": {
            s.name: {"available": s.available, "reason": s.reason, "argv": s.argv, "notes": s.notes}
            for s in stacks
        },
        "rows": [
            {
                "id": r.id,
                "label": r.label,
                "unit": r.unit,
                "higher_is_better": r.higher_is_better,
                "results": results.get(r.id, {}),
                "ratios": {
                    s: report.ratio(
                        r, report.value(results, r.id, "rapidp2p"), report.value(results, r.id, s)
                    )
                    for s in names
                    if s != "rapidp2p"
                },
            }
            for r in shown
        ],
        "targets": checks,
    }
    report.write_json(args.out, doc)
    print(f"\nJSON written to {args.out}")
    if not args.no_chart:
        print(report.chart(args.chart, shown, names, results))
    return 0


def _derive_memory(results: report.Results, stack: str) -> None:
    cell = results["memory"][stack]
    for row_id, key in (("memory_stream", "per_stream_kib"), ("memory_idle", "idle_node_mib")):
        derived = (
            {"value": cell[key]}
            if key in cell
            else {k: v for k, v in cell.items() if k in ("unavailable", "error")}
        )
        results.setdefault(row_id, {})[stack] = derived


#: Per-row CPU figures: (unit, client key, server key). Throughput rows get CPU s/GiB.
_CPU_KEYS = {
    "throughput": ("CPU s/GiB", "cpu_client_s_per_gib", "cpu_server_s_per_gib"),
    "rr": ("CPU us/req", "cpu_client_us_per_req", "cpu_server_us_per_req"),
    "handshakes": ("CPU ms/conn", "cpu_client_ms_per_conn", "cpu_server_ms_per_conn"),
    "connect": ("CPU ms/conn", "cpu_client_ms_per_conn", "cpu_server_ms_per_conn"),
}


def _cpu_kind(row: Any) -> str | None:
    if row.chart == "throughput":
        return "throughput"
    if row.id.startswith("rr_"):
        return "rr"
    if row.id == "handshakes":
        return "handshakes"
    if row.id.startswith("connect_rtt"):
        return "connect"
    return None


def _derive_cpu(row: Any, results: report.Results, stack: str) -> None:
    """``<row>_cpu``: client + server CPU beside the row's figure (lower is better)."""
    kind = _cpu_kind(row)
    if kind is None:
        return
    _, ck, sk = _CPU_KEYS[kind]
    cell = results[row.id][stack]
    if ck in cell and sk in cell:
        derived = {"value": cell[ck] + cell[sk], "client": cell[ck], "server": cell[sk]}
    else:
        derived = {k: v for k, v in cell.items() if k in ("unavailable", "error")}
    results.setdefault(f"{row.id}_cpu", {})[stack] = derived


def _with_cpu_rows(rows: list[Any]) -> list[Any]:
    """Each measured row, followed by its CPU row when it has one."""
    from benches.e2e.rows import Row

    out: list[Any] = []
    for row in rows:
        out.append(row)
        kind = _cpu_kind(row)
        if kind is not None:
            unit = _CPU_KEYS[kind][0]
            out.append(Row(f"{row.id}_cpu", "  CPU client+server", unit, False, lambda s, c: {}))
    return out


def _memory_rows(rows: list[Any]) -> list[Any]:
    from benches.e2e.rows import Row

    if not any(r.id == "memory" for r in rows):
        return []
    return [
        Row(
            "memory_stream",
            "RSS per idle stream (server; 10,000 streams)",
            "KiB",
            False,
            lambda s, c: {},
        ),
        Row("memory_idle", "idle node RSS (server)", "MiB", False, lambda s, c: {}),
    ]
