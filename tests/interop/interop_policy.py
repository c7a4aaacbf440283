"""Interop test policy (a pytest plugin loaded by ``tests/conftest.py``), for every test marked
``interop`` wherever it lives (tests/interop, tests/kad, tests/pubsub, ...): peers are built once
before the tests run, and CI never skips.

* After collection, every peer that a selected ``interop`` test may use is built (outside the
  per-test timeout, with live progress on the terminal). A peer whose toolchain is missing is
  remembered as unavailable and its tests skip with that reason; a failed build fails them.
* When the environment variable ``CI`` is set (to anything but ``""``, ``0`` or ``false``), a
  skipped ``interop`` test is reported as FAILED instead: CI must exercise every peer.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator

import peers
import pytest


def in_ci() -> bool:
    """True when the environment says this is a CI run."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "peers(*names): the interop peers a test uses (pre-built before the run; "
        "without it every peer is built)",
    )


def _wanted_peers(items: list[pytest.Item]) -> list[str]:
    names: set[str] = set()
    all_peers = peers.available_peers()
    for item in items:
        if item.get_closest_marker("interop") is None:
            continue
        marker = item.get_closest_marker("peers")
        names.update(marker.args if marker is not None else all_peers)
    return sorted(n for n in names if n in all_peers)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Builds the selected peers before any test starts (so no test times out building)."""
    wanted = _wanted_peers(session.items)
    if not wanted or session.config.option.collectonly:
        return
    capman = session.config.pluginmanager.getplugin("capturemanager")
    cm = capman.global_and_fixture_disabled() if capman is not None else None
    if cm is not None:
        cm.__enter__()
    try:
        for name in wanted:
            sys.stderr.write(f"\n[interop] preparing peer {name}\n")
            result = peers.ensure_built(name, sys.stderr)
            if isinstance(result, Exception):
                first = str(result).splitlines()[0]
                sys.stderr.write(f"[interop] {first}\n")
    finally:
        if cm is not None:
            cm.__exit__(None, None, None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Under CI, an interop test that skipped is turned into a failure that says why."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.skipped or not in_ci() or item.get_closest_marker("interop") is None:
        return
    if hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"interop test skipped under CI (CI={os.environ.get('CI')!r}): {reason}"
