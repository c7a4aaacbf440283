"""The GossipSub scenario on the simulated network: messages reach every node in the topic
over the mesh, reproducibly; churn and partitions show up in who gets what."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from rapidp2p.sim.cli import main as sim_main
from rapidp2p.sim.clock import run
from rapidp2p.sim.gossip import (
    GossipScenarioConfig,
    GossipSim,
    run_gossip_scenario,
    summarize_gossip,
)
from rapidp2p.sim.gossip_report import render_gossip_report


def test_thirty_node_topic_delivers_every_message_over_the_mesh() -> None:
    cfg = GossipScenarioConfig(nodes=30, seed=3, duration=5, rate=2, warmup=5)
    res = run(run_gossip_scenario(cfg)).results
    assert res["messages_published"] == 10
    d = res["delivery"]
    assert d["expected"] == 10 * 29  # everyone but the publisher
    assert d["ratio"] == 1.0, d
    assert d["messages_fully_delivered"] == 10
    lat = res["latency"]
    # Network delays are paid in virtual time (the nearest pair is >= 4 ms apart one way),
    # and a few hops across the regions stay well under a second.
    assert 0.004 < lat["p50"] <= lat["p90"] <= lat["p99"] < 1.0, lat
    mesh = res["mesh_degree"]
    assert cfg.d_lo <= mesh["mean"] <= cfg.d_hi, mesh
    assert mesh["min"] >= 1 and mesh["max"] <= cfg.d_hi
    amp = res["amplification"]
    assert amp["accepted"] == d["delivered"]  # no churn: every acceptance was expected
    assert amp["copies_per_accepted"] > 1  # a mesh, not a tree: duplicates exist
    assert amp["copies_received"] == amp["accepted"] + amp["duplicates"]
    report = render_gossip_report(res)
    assert "| 290 | 290 | 1.000 | 10 / 10 | 1.000 |" in report


def test_same_seed_same_results_and_report() -> None:
    cfg = GossipScenarioConfig(nodes=15, seed=7, duration=3, rate=2, warmup=4, loss=0.01)
    a = run(run_gossip_scenario(cfg)).results
    b = run(run_gossip_scenario(GossipScenarioConfig(**vars(cfg)))).results
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert render_gossip_report(a) == render_gossip_report(b)
    c = run(run_gossip_scenario(GossipScenarioConfig(**{**vars(cfg), "seed": 8}))).results
    assert c["trace_digest"] != a["trace_digest"]


def test_churn_replaces_nodes_and_the_settled_ones_still_get_everything() -> None:
    cfg = GossipScenarioConfig(
        nodes=30, seed=5, duration=10, rate=1, warmup=5, churn_per_hour=60.0, nat_share=0.2
    )
    res = run(run_gossip_scenario(cfg)).results
    assert res["nodes_departed"] > 0
    assert res["nodes_created"] == 30 + res["nodes_departed"]
    assert res["nodes_online"] == 30
    d = res["delivery"]
    # Crashed mesh peers are replaced at the next heartbeats; with D=6 the rest still carry.
    assert d["ratio"] >= 0.95, d
    # Fresh joiners get messages too (they count as accepted, not as expected).
    assert res["amplification"]["accepted"] >= d["delivered"]


def test_a_partitioned_half_never_hears_the_other_half() -> None:
    async def main() -> tuple[set[int], set[int], set[int]]:
        sim = GossipSim(GossipScenarioConfig(nodes=20, seed=9, warmup=5))
        await sim.start()
        half_a, half_b = sim.peers[:10], sim.peers[10:]
        sim.net.partition([[p.node for p in half_a], [p.node for p in half_b]])
        await asyncio.sleep(40)  # cut connections time out; meshes re-form inside each half
        m = await sim.publish_from(half_a[0])
        await asyncio.sleep(10)
        got = set(m.received)
        res = summarize_gossip(sim)
        await sim.close()
        assert res["messages_published"] == 1
        assert res["delivery"]["expected"] == 19  # both halves count: the cut is the cause
        return got, {p.node.index for p in half_a}, {p.node.index for p in half_b}

    got, a, b = run(main())
    assert not got & b
    assert len(got & a) >= 8  # the publisher's side (9 others) heals its mesh and delivers


def test_command_writes_report_results_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "r" / "gs.md"
    argv = ["gossipsub", "--nodes", "10", "--seed", "4", "--duration", "2", "--warmup", "3"]
    rc = sim_main(
        [*argv, "--security", "plaintext", "--no-idontwant", "--quiet", "--out", str(out)]
    )
    assert rc == 0
    text = out.read_text()
    assert text.startswith("# GossipSub on the simulated network: 10 nodes, seed 4")
    assert "IDONTWANT off" in text and "This machine" in text
    results = json.loads((tmp_path / "r" / "gs.results.json").read_text())
    assert results["config"]["idontwant"] is False
    assert results["delivery"]["ratio"] == 1.0
    for png in (tmp_path / "r").glob("gs-*.png"):
        assert f"]({png.name})" in text


def test_console_command_gives_byte_identical_results_across_processes(tmp_path: Path) -> None:
    """``rapidp2p sim`` pins PYTHONHASHSEED (set order of peer IDs) by re-executing itself,
    so two separate processes with the same seed print the same results."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    outs = []
    for i in range(2):
        argv = ["sim", "gossipsub", "--nodes", "8", "--duration", "2", "--warmup", "3"]
        argv += ["--security", "plaintext", "--quiet", "--json", "--out", str(tmp_path / f"{i}.md")]
        proc = subprocess.run(
            [sys.executable, "-m", "rapidp2p.cli", *argv],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0] == outs[1]
    res = json.loads(outs[0])
    assert res["delivery"]["ratio"] == 1.0 and res["messages_published"] == 2
    assert (tmp_path / "0.results.json").read_text() == (tmp_path / "1.results.json").read_text()
