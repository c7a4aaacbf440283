"""The "Published figures" section of every simulator report, built from the committed
``docs/sim/*.results.json`` (no simulation runs here, so the test takes well under a second):
the section appears, sets this run's own figures beside the papers' and cites each source."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from rapidp2p.sim.attack import ATTACKS
from rapidp2p.sim.attack_report import render_attack_report
from rapidp2p.sim.gossip_report import render_gossip_report
from rapidp2p.sim.published import ATTACK_PLANS, SOURCES
from rapidp2p.sim.report import render_kad_report

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sim"


def _load(stem: str) -> dict[str, Any]:
    return json.loads((DOCS / f"{stem}.results.json").read_text())  # type: ignore[no-any-return]


def _section(report: str) -> str:
    assert report.count("## Published figures") == 1
    return report.split("## Published figures", 1)[1].split("\n## ", 1)[0]


def _cited(section: str) -> None:
    """Every source tag in the table's last column has its full citation listed below."""
    listed = {line[2:].split(":", 1)[0] for line in section.splitlines() if line.startswith("- ")}
    assert listed and listed <= set(SOURCES)
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith(("| figure", "|---")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 4:
                assert all(t.strip() in listed for t in cells[3].split(";")), line


def test_kad_report_sets_its_figures_beside_the_ipfs_measurements() -> None:
    res = _load("kad-n500-seed1")
    report = render_kad_report(res)
    sec = _section(report)
    _cited(sec)
    assert "0.622 s" in sec and "1.74 to the first provider" in sec
    gcp = res["ops"]["get_closest_peers"]
    assert f"`get_closest_peers` {gcp['hops_mean']:.2f}" in sec
    assert f"{math.log2(500):.2f} / {math.log(500, 16):.2f} (N = 500)" in sec
    fp = res["ops"]["find_providers"]
    assert f"`find_providers` p50 {fp['latency_p50']:.3f} s" in sec
    # A function of results.json alone: the figures follow the run, not fixed text.
    other = copy.deepcopy(res)
    other["config"]["nodes"] = 1000
    other["ops"]["find_providers"]["latency_p50"] = None
    sec2 = _section(render_kad_report(other))
    assert "(N = 1,000)" in sec2 and "`find_providers` p50 -," in sec2
    assert render_kad_report(res) == report


def test_gossip_report_sets_its_setup_beside_the_evaluation_baseline() -> None:
    res = _load("gossipsub-n500-seed1")
    sec = _section(render_gossip_report(res))
    _cited(sec)
    assert "| nodes | 500 | 1,000 (100 publishers) | test plans |" in sec
    assert f"p50 {res['latency']['p50']:.3f} s" in sec
    assert "120 msg/s of 2 KiB" in sec and "ratio 1.0000" in sec


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_report_names_the_plan_and_its_sybil_ratio(attack: str) -> None:
    base = "eclipse" if attack == "eclipse" else "flash"
    res = _load(f"gossipsub-{base}-n300-seed1-scoring-on")
    res["config"]["attack"] = attack
    if attack != "flash":
        res.pop("delivery_after_defection", None)
    sec = _section(render_attack_report(res))
    plan = ATTACK_PLANS[attack]
    assert f"`{plan['plan']}`" in sec and plan["section"] in sec
    assert f"| 150 : 150 | 1,000 : {plan['sybils']:,} |" in sec
    if attack == "eclipse":
        assert "150 : 2 at the target" in sec and "to the target 0.9917" in sec
    else:
        # 150 Sybils x 20 connections over 150 honest nodes, each dialling 8 and dialled ~8.
        assert "20 : about 16 per honest node" in sec
        theirs = plan["sybils"] * plan["attack_degree"] // 1000
        assert f"{theirs} : about 40 per honest node" in sec
    assert "threshold 1, cap 100, decay 0.9/s, activation 30 s, weight -100" in sec
    res["config"]["scoring"] = False
    assert "off (every weight 0)" in _section(render_attack_report(res))
    for tag in ("test plans", "evaluation report", "GossipSub paper"):
        assert f"- {tag}: {SOURCES[tag]}" in sec
