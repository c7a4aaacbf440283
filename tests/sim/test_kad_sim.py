"""The Kademlia scenario on the simulated network: it works, it is reproducible, and
partitions and churn show up in what the nodes can find."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from rapidp2p.exceptions import Libp2pError
from rapidp2p.sim.cli import main as sim_main
from rapidp2p.sim.clock import run
from rapidp2p.sim.kad import KadScenarioConfig, KadSim, run_kad_scenario, summarize
from rapidp2p.sim.report import render_kad_report


def test_fifty_node_network_bootstraps_and_answers_lookups() -> None:
    res = run(run_kad_scenario(KadScenarioConfig(nodes=50, seed=3, queries=6))).results
    assert res["nodes_online"] == 50
    ops = res["ops"]
    for op in ("get_closest_peers", "find_peer", "provide", "find_providers"):
        assert ops[op]["count"] == 6
        assert ops[op]["success_rate"] >= 0.8, (op, ops[op])
    for op in ("get_closest_peers", "provide"):
        assert ops[op]["latency_p50"] > 0  # network delays are paid in virtual time
    assert ops["get_closest_peers"]["hops_mean"] >= 1
    assert res["routing_table_size"]["min"] >= 10
    report = render_kad_report(res)
    assert "log2(N)" in report and "| get_closest_peers | 6 |" in report


def test_same_seed_same_results_and_report() -> None:
    cfg = KadScenarioConfig(nodes=20, seed=11, queries=3, loss=0.01, nat_share=0.2)
    a = run(run_kad_scenario(cfg)).results
    b = run(run_kad_scenario(KadScenarioConfig(**vars(cfg)))).results
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert render_kad_report(a) == render_kad_report(b)
    c = run(run_kad_scenario(KadScenarioConfig(**{**vars(cfg), "seed": 12}))).results
    assert c["trace_digest"] != a["trace_digest"]


def test_a_partitioned_half_cannot_find_the_other_halfs_providers() -> None:
    async def main() -> tuple[bool, bool, bool]:
        sim = KadSim(KadScenarioConfig(nodes=30, seed=5))
        await sim.start()
        half_a, half_b = sim.peers[:15], sim.peers[15:]
        sim.net.partition([[p.node for p in half_a], [p.node for p in half_b]])
        await asyncio.sleep(40)  # cut connections time out
        key = b"partitioned-record-key-000000000"
        provided, same_side = await sim.measure_providers(half_a[3], half_a[7], key)
        _, other_side = await sim.measure_providers(half_a[3], half_b[4], key)
        await sim.close()
        return provided.ok, same_side.ok, other_side.ok

    provided, same_side, other_side = run(main())
    assert provided and same_side
    assert not other_side


def test_departed_nodes_are_not_found_and_the_rest_still_routes() -> None:
    async def main() -> tuple[list[bool], list[bool], list[bool], int]:
        sim = KadSim(KadScenarioConfig(nodes=30, seed=8))
        await sim.start()
        gone = sim.peers[10:20]
        gone_addrs = [g.host.full_addrs[0] for g in gone]
        for p in gone:
            await sim.depart(p)
        await asyncio.sleep(40)  # their silent connections hit the broken timeout (30 s)
        alive = sim.online
        lost = []
        for i, g in enumerate(gone[:4]):
            # The DHT may still hand out a departed peer's stale address (tables forget it
            # only when requests to it fail), but nobody can reach it any more.
            await sim.measure_find_peer(alive[i], g.host.peer_id)
            try:
                await alive[i].host.connect(gone_addrs[i])
                lost.append(True)
            except Libp2pError:
                lost.append(False)
        found = [
            (await sim.measure_find_peer(alive[i], alive[-1 - i].host.peer_id)).ok for i in range(4)
        ]
        closest = [(await sim.measure_closest(alive[i], bytes([i]) * 32)).ok for i in range(4)]
        res = summarize(sim)
        await sim.close()
        return lost, found, closest, res["nodes_departed"]

    lost, found, closest, departed = run(main())
    assert departed == 10
    assert not any(lost)
    assert all(found)
    assert sum(closest) >= 3


def test_churn_schedule_replaces_departures_with_joins() -> None:
    cfg = KadScenarioConfig(nodes=20, seed=2, queries=4, churn_per_hour=20.0)
    res = run(run_kad_scenario(cfg)).results
    assert res["nodes_departed"] > 0
    assert res["nodes_created"] > 20
    assert res["ops"]["get_closest_peers"]["count"] == 4


def test_command_writes_report_and_results(tmp_path: Path) -> None:
    out = tmp_path / "r" / "report.md"
    rc = sim_main(
        ["kad", "--nodes", "12", "--seed", "4", "--queries", "2", "--quiet", "--out", str(out)]
    )
    assert rc == 0
    text = out.read_text()
    assert text.startswith("# Kademlia on the simulated network: 12 nodes, seed 4")
    assert "This machine" in text
    results = json.loads((tmp_path / "r" / "report.results.json").read_text())
    assert results["config"]["nodes"] == 12
