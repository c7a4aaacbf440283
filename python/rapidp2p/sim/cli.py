"""Command line of the simulator: ``python -m rapidp2p.sim kad|gossipsub|speed ...``, also reached
as ``rapidp2p sim ...``. The scenarios are imported when one runs, so that building the
parser (every ``rapidp2p`` start) stays cheap."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "main", "pin_hash_seed", "run_command"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scenario", required=True)
    kad = sub.add_parser("kad", help="Kademlia: bootstrap N nodes, then measure lookups")
    kad.add_argument("--nodes", type=int, default=100)
    kad.add_argument("--seed", type=int, default=1)
    kad.add_argument("--queries", type=int, default=50, help="lookups of each kind")
    _common(kad)
    gs = sub.add_parser("gossipsub", help="GossipSub: N nodes in one topic, publish, measure")
    gs.add_argument("--nodes", type=int, default=100)
    gs.add_argument("--seed", type=int, default=1)
    gs.add_argument("--rate", type=float, default=1.0, help="messages per second, network-wide")
    gs.add_argument("--duration", type=float, default=30.0, help="seconds of publishing")
    gs.add_argument("--msg-size", type=int, default=2048, help="payload bytes")
    gs.add_argument("--connect", type=int, default=8, help="peers each node dials")
    gs.add_argument("--warmup", type=float, default=10.0, help="seconds before publishing")
    gs.add_argument("--no-idontwant", action="store_true", help="never send IDONTWANT (v1.2 off)")
    gs.add_argument(
        "--attack",
        choices=("sybil", "eclipse", "flash", "coldboot"),
        help="Sybil attack of Vyzovitis et al. 2020 (see docs/sim)",
    )
    gs.add_argument("--sybils", type=float, default=0.5, help="share of the nodes that are Sybils")
    gs.add_argument("--scoring", choices=("on", "off"), default="on", help="peer scoring (attacks)")
    gs.add_argument("--attack-degree", type=int, default=20, help="honest nodes each Sybil dials")
    gs.add_argument(
        "--flash-after", type=float, default=20.0, help="s of publishing before defecting"
    )
    gs.add_argument("--target-honest", type=int, default=2, help="honest nodes dialling the target")
    _common(gs)
    sp = sub.add_parser("speed", help="the simulator's speed: sim-seconds and events per second")
    sp.add_argument("--nodes", type=int, default=1000)
    sp.add_argument("--seed", type=int, default=1)
    sp.add_argument("--duration", type=float, default=20.0, help="virtual seconds measured")
    sp.add_argument("--rate", type=float, default=1.0, help="messages per second, network-wide")
    sp.add_argument("--security", choices=("noise", "plaintext"), default="plaintext")
    sp.add_argument("--out", type=Path, default=Path("speed.md"), help="report path")
    sp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sp.add_argument("--json", action="store_true", help="also print results.json on stdout")
    cc = sub.add_parser(
        "crosscheck",
        help="run a scenario in the simulator and as N real processes in network namespaces "
        "(root), and compare",
    )
    cc.add_argument("which", choices=("kad", "gossipsub", "both"), help="scenario(s) to compare")
    cc.add_argument("--nodes", type=int, default=100)
    cc.add_argument("--seed", type=int, default=1)
    cc.add_argument("--security", choices=("noise", "plaintext"), default="noise")
    cc.add_argument("--queries", type=int, default=50, help="Kademlia lookups of each kind")
    cc.add_argument("--op-interval", type=float, default=1.0, help="s between two lookups")
    cc.add_argument("--rate", type=float, default=1.0, help="GossipSub messages per second")
    cc.add_argument("--duration", type=float, default=30.0, help="s of publishing")
    cc.add_argument("--warmup", type=float, default=10.0, help="s before publishing")
    cc.add_argument("--drain", type=float, default=10.0, help="s after the last publish")
    cc.add_argument(
        "--node-nice", type=int, default=0, help="nice value of the node processes (root)"
    )
    cc.add_argument("--out", type=Path, default=Path("."), help="report directory")
    cc.add_argument("--quiet", action="store_true", help="no progress on stderr")
    cc.add_argument("--json", action="store_true", help="also print results.json on stdout")


def _crosscheck(args: argparse.Namespace, progress: Any) -> int:
    from rapidp2p.sim.crosscheck import CrosscheckConfig, run_crosscheck, write_outputs

    argv = sys.argv[1:]
    if argv[:1] == ["sim"]:  # reached as `rapidp2p sim crosscheck ...`
        argv = argv[1:]
    cfg = CrosscheckConfig(
        scenario=args.which,
        nodes=args.nodes,
        seed=args.seed,
        security=args.security,
        queries=args.queries,
        op_interval=args.op_interval,
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        drain=args.drain,
        node_nice=args.node_nice,
        commands=["python -m rapidp2p.sim " + " ".join(argv)],
    )
    res = run_crosscheck(cfg, progress)
    md, js = write_outputs(res, args.out)
    progress(f"{res['agree']}/{res['checks']} figures agree; wrote {md}, {js}")
    if args.json:
        print(json.dumps(res, sort_keys=True), flush=True)
    return 0 if res["agree"] == res["checks"] else 1


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--security", choices=("noise", "plaintext"), default="noise")
    p.add_argument("--nat", type=float, default=0.0, help="share of nodes behind NAT")
    p.add_argument("--loss", type=float, default=0.0, help="segment loss probability")
    p.add_argument("--churn", type=float, default=0.0, help="departures per node per hour")
    p.add_argument(
        "--keepalive",
        type=float,
        default=10.0,
        help="seconds between yamux keep-alive pings (0: none; 10 is the production default)",
    )
    p.add_argument("--out", type=Path, default=Path("report.md"), help="report path")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="also print results.json on stdout")


def run_command(args: argparse.Namespace) -> int:
    """Runs the scenario; writes ``OUT``, ``<stem>.results.json`` and ``<stem>-*.png``."""
    from rapidp2p.sim.clock import run
    from rapidp2p.sim.gossip import GossipScenarioConfig, run_gossip_scenario
    from rapidp2p.sim.gossip_report import render_gossip_report, write_gossip_plots
    from rapidp2p.sim.kad import KadScenarioConfig, run_kad_scenario
    from rapidp2p.sim.report import render_kad_report, write_plots

    out: Path = args.out
    name = args.scenario

    def progress(msg: str) -> None:
        if not args.quiet:
            print(f"[sim {name}] {msg}", file=sys.stderr, flush=True)

    if args.scenario == "crosscheck":
        return _crosscheck(args, progress)
    if args.scenario == "speed":
        from rapidp2p.sim.speed import SpeedConfig, render_speed_report, run_speed_scenario

        scfg = SpeedConfig(
            nodes=args.nodes,
            seed=args.seed,
            duration=args.duration,
            rate=args.rate,
            security=args.security,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        sres = run(run_speed_scenario(scfg, progress), count_events=True)
        out.write_text(render_speed_report(sres.results, sres.machine))
        results_path = out.with_name(out.stem + ".results.json")
        results_path.write_text(json.dumps(sres.results, indent=2, sort_keys=True) + "\n")
        if args.json:
            print(json.dumps(sres.results, sort_keys=True), flush=True)
        progress(f"wrote {out}, {results_path}")
        return 0
    common: dict[str, Any] = {
        "nodes": args.nodes,
        "seed": args.seed,
        "security": args.security,
        "nat_share": args.nat,
        "loss": args.loss,
        "churn_per_hour": args.churn,
        "keepalive": args.keepalive if args.keepalive > 0 else None,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.scenario == "kad":
        res = run(run_kad_scenario(KadScenarioConfig(queries=args.queries, **common), progress))
        plots = write_plots(res.results, out.parent, out.stem)
        text = render_kad_report(res.results, res.machine, [p.name for p in plots])
    else:
        gossip: dict[str, Any] = {
            "rate": args.rate,
            "duration": args.duration,
            "msg_size": args.msg_size,
            "connect": args.connect,
            "warmup": args.warmup,
            "idontwant": not args.no_idontwant,
            **common,
        }
        if args.attack:
            from rapidp2p.sim.attack import AttackConfig, run_attack_scenario
            from rapidp2p.sim.attack_report import render_attack_report, write_attack_plots

            acfg = AttackConfig(
                attack=args.attack,
                sybils=args.sybils,
                scoring=args.scoring == "on",
                attack_degree=args.attack_degree,
                flash_after=args.flash_after,
                target_honest=args.target_honest,
                **gossip,
            )
            res = run(run_attack_scenario(acfg, progress))
            plots = write_attack_plots(res.results, out.parent, out.stem)
            text = render_attack_report(res.results, res.machine, [p.name for p in plots])
        else:
            res = run(run_gossip_scenario(GossipScenarioConfig(**gossip), progress))
            plots = write_gossip_plots(res.results, out.parent, out.stem)
            text = render_gossip_report(res.results, res.machine, [p.name for p in plots])
    out.write_text(text)
    results_path = out.with_name(out.stem + ".results.json")
    results_path.write_text(json.dumps(res.results, indent=2, sort_keys=True) + "\n")
    if args.json:
        print(json.dumps(res.results, sort_keys=True), flush=True)
    progress(f"wrote {out}, {results_path}" + "".join(f", {p}" for p in plots))
    return 0


def pin_hash_seed(argv: list[str], module: str = "rapidp2p.sim") -> None:
    """Re-executes this command with ``PYTHONHASHSEED=0`` unless it is already set.

    Why: the routers keep peers in sets, and the order a set of peer IDs iterates in (which
    peer is written to first, and so which bytes reach the simulated uplink first) follows
    ``hash(bytes)``, which Python salts per process. Same seed, same salt: the same run."""
    if os.environ.get("PYTHONHASHSEED") == "0":
        return
    env = dict(os.environ, PYTHONHASHSEED="0")
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rapidp2p.sim", description="network simulation on a virtual clock"
    )
    add_arguments(parser)
    return run_command(parser.parse_args(argv))
