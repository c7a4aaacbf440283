"""The speed scenario: its deterministic half (events, virtual time) repeats exactly, and
the command reports the machine half."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rapidp2p.sim.cli import main as sim_main
from rapidp2p.sim.clock import run
from rapidp2p.sim.speed import SpeedConfig, run_speed_scenario


def test_loop_counts_every_scheduled_callback() -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        e0 = loop.events  # type: ignore[attr-defined]
        for _ in range(5):
            loop.call_later(1.0, lambda: None)
        loop.call_soon(lambda: None)
        e1 = loop.events  # type: ignore[attr-defined]
        await asyncio.sleep(2)
        return e1 - e0, loop.events - e1  # type: ignore[attr-defined]

    scheduled, later = run(main(), count_events=True)
    assert scheduled == 6
    assert later >= 2  # the sleep's timer and the task step it wakes


def test_same_seed_same_events_and_virtual_time() -> None:
    cfg = SpeedConfig(nodes=12, duration=2.0, rate=2.0, warmup=1.0)
    a = run(run_speed_scenario(cfg), count_events=True)
    b = run(run_speed_scenario(SpeedConfig(**vars(cfg))), count_events=True)
    assert json.dumps(a.results, sort_keys=True) == json.dumps(b.results, sort_keys=True)
    st = a.results["steady"]
    assert st["messages"] == 4 and st["delivered"] == 4 * 11
    assert st["virtual_seconds"] == 2.0
    assert st["events"] > 0 and a.results["setup"]["events"] > st["events"] / 100
    m = a.machine
    assert m["steady_cpu_s"] > 0 and m["steady_events_per_cpu_s"] > 0 and m["peak_rss_mb"] > 0
    with pytest.raises(RuntimeError, match="count_events"):
        run(run_speed_scenario(cfg))


def test_speed_command_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "speed.md"
    assert sim_main(["speed", "--nodes", "8", "--duration", "1", "--quiet", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Simulator speed: 8 nodes, seed 1")
    assert "steady_virtual_per_wall" in text and "steady_events_per_cpu_s" in text
    res = json.loads((tmp_path / "speed.results.json").read_text())
    assert res["steady"]["messages"] == 1
