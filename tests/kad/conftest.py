"""The kad tests: node helpers from ``tests/unit/test_kad_util.py``, and the interop policy of
``tests/interop/conftest.py`` for the ``interop`` tests here.

* The interop peers a selected ``interop`` test here uses are built after collection (outside
  the per-test timeout), as ``tests/interop`` does for its own tests.
* Under ``CI`` a skipped ``interop`` test here is reported as FAILED: the hook is the one of
  ``tests/interop/conftest.py`` (loaded by path: two ``conftest`` modules cannot share a name).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_TESTS / "unit"))
sys.path.insert(0, str(_TESTS / "interop"))

import peers  # noqa: E402


def _load_interop_conftest() -> object:
    spec = importlib.util.spec_from_file_location(
        "_rapidp2p_interop_policy", _TESTS / "interop" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_policy = _load_interop_conftest()

#: Under CI, a skipped interop test is turned into a failure that says why.
pytest_runtest_makereport = _policy.pytest_runtest_makereport  # type: ignore[attr-defined]

_KAD_DIR = Path(__file__).resolve().parent


def pytest_collection_finish(session: pytest.Session) -> None:
    """Builds the peers the selected kad interop tests use before any of them starts."""
    if session.config.option.collectonly:
        return
    wanted: set[str] = set()
    for item in session.items:
        if item.get_closest_marker("interop") is None:
            continue
        if _KAD_DIR not in Path(str(item.path)).resolve().parents:
            continue
        marker = item.get_closest_marker("peers")
        wanted.update(marker.args if marker is not None else ("go-peer", "rust-peer"))
    capman = session.config.pluginmanager.getplugin("capturemanager")
    for name in sorted(wanted & set(peers.available_peers())):
        cm = capman.global_and_fixture_disabled() if capman is not None else None
        if cm is not None:
            cm.__enter__()
        try:
            sys.stderr.write(f"\n[kad interop] preparing peer {name}\n")
            result = peers.ensure_built(name, sys.stderr)
            if isinstance(result, Exception):
                sys.stderr.write(f"[kad interop] {str(result).splitlines()[0]}\n")
        finally:
            if cm is not None:
                cm.__exit__(None, None, None)
