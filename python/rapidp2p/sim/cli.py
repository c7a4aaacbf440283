"""Command line of the simulator (also reached as ``rapidp2p sim``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rapidp2p.sim.clock import run
from rapidp2p.sim.kad import KadScenarioConfig, run_kad_scenario
from rapidp2p.sim.report import render_kad_report, write_plots

__all__ = ["add_arguments", "main", "run_command"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scenario", required=True)
    kad = sub.add_parser("kad", help="Kademlia: bootstrap N nodes, then measure lookups")
    kad.add_argument("--nodes", type=int, default=100)
    kad.add_argument("--seed", type=int, default=1)
    kad.add_argument("--queries", type=int, default=50, help="lookups of each kind")
    kad.add_argument("--security", choices=("noise", "plaintext"), default="noise")
    kad.add_argument("--nat", type=float, default=0.0, help="share of nodes behind NAT")
    kad.add_argument("--loss", type=float, default=0.0, help="segment loss probability")
    kad.add_argument("--churn", type=float, default=0.0, help="departures per node per hour")
    kad.add_argument("--out", type=Path, default=Path("report.md"), help="report path")
    kad.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run_command(args: argparse.Namespace) -> int:
    cfg = KadScenarioConfig(
        nodes=args.nodes,
        seed=args.seed,
        queries=args.queries,
        security=args.security,
        nat_share=args.nat,
        loss=args.loss,
        churn_per_hour=args.churn,
    )

    def progress(msg: str) -> None:
        if not args.quiet:
            print(f"[sim kad] {msg}", file=sys.stderr, flush=True)

    res = run(run_kad_scenario(cfg, progress))
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    plots = write_plots(res.results, out.parent, out.stem)
    out.write_text(render_kad_report(res.results, res.machine, [p.name for p in plots]))
    results_path = out.with_name(out.stem + ".results.json")
    results_path.write_text(json.dumps(res.results, indent=2, sort_keys=True) + "\n")
    progress(f"wrote {out}, {results_path}" + "".join(f", {p}" for p in plots))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rapidp2p.sim", description="network simulation on a virtual clock"
    )
    add_arguments(parser)
    return run_command(parser.parse_args(argv))
