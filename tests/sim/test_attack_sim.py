"""The GossipSub attack scenarios at 30 nodes (15 honest, 15 Sybils): each run with peer
scoring on and off, asserting what the score changes (and what it cannot)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rapidp2p.sim.attack import AttackConfig, run_attack_scenario
from rapidp2p.sim.attack_report import render_attack_report
from rapidp2p.sim.cli import main as sim_main
from rapidp2p.sim.clock import run


def _run(attack: str, scoring: bool, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "nodes": 30,
        "seed": 1,
        "attack": attack,
        "scoring": scoring,
        "sybils": 0.5,
        "attack_degree": 10,
        "rate": 2.0,
        "warmup": 5.0,
        "security": "plaintext",
    }
    return run(run_attack_scenario(AttackConfig(**{**base, **kw}))).results


def _after(res: dict[str, Any]) -> list[list[Any]]:
    return [s for s in res["mesh_sybil_share"] if s[0] > res["attack_at"]]


def test_sybil_flood_scoring_graylists_every_sybil_and_keeps_them_out_of_the_meshes() -> None:
    on = _run("sybil", True, duration=20.0)
    off = _run("sybil", False, duration=20.0)
    for res in (on, off):
        assert res["honest_nodes"] == 15 and res["sybil_nodes"] == 15
        assert res["delivery"]["ratio"] >= 0.99, res["delivery"]
    ss = on["sybil_scores"]
    # Every honest-Sybil connection ends below the graylist threshold: the fake IHAVEs
    # broke IWANT promises (P7) and the Sybils delivered nothing in the mesh.
    assert ss["pairs"] == 150 and ss["below_graylist"] == ss["pairs"], ss
    assert on["honest_scores"]["below_zero"] == 0, on["honest_scores"]
    assert on["mesh_sybil_share"][-1][1] == 0.0
    # Without the score nothing tells a Sybil from an honest peer: they keep their slots.
    assert off["sybil_scores"]["below_zero"] == 0
    assert off["mesh_sybil_share"][-1][1] >= 0.3, off["mesh_sybil_share"]


def test_eclipse_target_is_freed_by_scoring_and_stays_eclipsed_without() -> None:
    on = _run("eclipse", True, duration=60.0)
    off = _run("eclipse", False, duration=60.0)
    # Every mesh slot of the target is a Sybil's once they connect (it dialled nobody).
    assert on["mesh_sybil_share"][1][2] == 1.0 and off["mesh_sybil_share"][1][2] == 1.0
    # Off: it stays so; the target hears only the gossip of its two honest neighbours, a
    # heartbeat late, while the rest of the network is unaffected.
    assert all(s[2] == 1.0 for s in _after(off)), off["mesh_sybil_share"]
    t_off = off["target"]
    assert t_off["latency"]["p50"] > 2 * off["delivery"]["latency"]["p50"], t_off
    # On: once mesh delivery counting is active (30 s in the mesh) the silent Sybils are
    # pruned and graylisted, honest peers take their place and the target's latency drops.
    assert any(s[2] == 0.0 for s in _after(on)), on["mesh_sybil_share"]
    last_on, last_off = on["target"]["windows"][-1], t_off["windows"][-1]
    assert last_on[3] < last_off[3], (on["target"]["windows"], t_off["windows"])
    assert on["sybil_scores"]["below_graylist"] >= 1
    assert on["target"]["ratio"] >= 0.95 and t_off["ratio"] >= 0.95


def test_covert_flash_sybils_are_pruned_after_they_defect_only_with_scoring() -> None:
    kw = {"duration": 60.0, "flash_after": 10.0}
    on = _run("flash", True, **kw)
    off = _run("flash", False, **kw)
    for res in (on, off):
        before = [s for s in res["mesh_sybil_share"] if s[0] <= res["attack_at"]]
        # Behaving, the Sybils won a large share of the meshes (they GRAFT eagerly).
        assert before[-1][1] >= 0.3, res["mesh_sybil_share"]
        assert res["delivery_after_defection"]["messages"] >= 90
    # About 25 s after the defection (the delivery counters decay below the threshold) every
    # Sybil is out of every mesh. Later some return: an honest node short of peers grafts
    # connected peers scoring 0, which a Sybil that was never in its mesh does; the next
    # activation period then prunes them again. Without the score they never leave.
    assert min(s[1] for s in _after(on)) == 0.0, on["mesh_sybil_share"]
    assert on["sybil_scores"]["below_graylist"] > 0
    assert min(s[1] for s in _after(off)) >= 0.3, off["mesh_sybil_share"]
    assert on["delivery_after_defection"]["ratio"] >= 0.99


def test_cold_boot_meshes_shed_the_sybils_with_scoring() -> None:
    on = _run("coldboot", True, duration=45.0)
    off = _run("coldboot", False, duration=45.0)
    assert on["mesh_sybil_share"][0][1] >= 0.3 and off["mesh_sybil_share"][0][1] >= 0.3
    assert min(s[1] for s in _after(on)) == 0.0, on["mesh_sybil_share"]
    assert min(s[1] for s in _after(off)) >= 0.3, off["mesh_sybil_share"]
    assert on["sybil_scores"]["below_graylist"] > 0
    assert on["delivery"]["ratio"] >= 0.99


def test_same_seed_same_results_and_unknown_attack_refused() -> None:
    a = _run("sybil", True, nodes=16, duration=3.0)
    b = _run("sybil", True, nodes=16, duration=3.0)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert render_attack_report(a) == render_attack_report(b)
    with pytest.raises(ValueError, match="unknown attack"):
        run(run_attack_scenario(AttackConfig(attack="nope")))


def test_command_runs_an_attack_and_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "a.md"
    argv = ["gossipsub", "--attack", "sybil", "--sybils", "0.5", "--scoring", "off"]
    argv += ["--nodes", "12", "--duration", "2", "--warmup", "3", "--attack-degree", "4"]
    assert sim_main([*argv, "--security", "plaintext", "--quiet", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# GossipSub under a sybil attack: 6 honest nodes, 6 Sybils")
    assert "scoring off" in text and "## Published figures" in text
    res = json.loads((tmp_path / "a.results.json").read_text())
    assert res["config"]["attack"] == "sybil" and res["config"]["scoring"] is False
    assert res["sybil_scores"]["pairs"] == 24
