"""The Grafana dashboard in docs/grafana queries only metrics rapidp2p exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rapidp2p.metrics import names

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "rapidp2p.json"
#: A metric name in PromQL: an identifier that is not followed by ``(`` (a function), not a
#: label inside ``by (...)`` and not a keyword; every one of ours starts with ``libp2p_``.
METRIC = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b")


def _panels(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in node.get("panels", []):
        out.append(p)
        out.extend(_panels(p))
    return out


def _exprs() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    return [
        (p["title"], t["expr"]) for p in _panels(dash) for t in p.get("targets", []) if "expr" in t
    ]


def test_every_query_uses_exported_metrics() -> None:
    exprs = _exprs()
    assert len(exprs) >= 20
    exported = set(names.ALL)
    used: set[str] = set()
    for title, expr in exprs:
        metrics = {m for m in METRIC.findall(expr) if m.startswith("libp2p")}
        assert metrics, f"panel {title!r} queries no rapidp2p metric: {expr}"
        unknown = metrics - exported
        assert not unknown, f"panel {title!r} uses unexported {sorted(unknown)}"
        used |= metrics
    # Every family has a panel (histograms through _bucket, _sum or _count).
    for family in names.COUNTERS + names.GAUGES:
        assert family in used, f"no panel shows {family}"
    for family in names.HISTOGRAMS:
        assert any(u.startswith(family + "_") for u in used), f"no panel shows {family}"


def test_panels_are_well_formed() -> None:
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in _panels(dash)]
    assert len(ids) == len(set(ids))
    for p in _panels(dash):
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}"
        assert all(t["refId"] for t in p["targets"])
