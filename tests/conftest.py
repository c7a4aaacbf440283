"""Shared pytest configuration.

Loads the interop policy (``tests/interop/interop_policy.py``) as a plugin so that it covers
every test marked ``interop``, whichever folder it is in: the peers those tests use are built
once after collection, and under ``CI`` a skipped interop test fails instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "interop"))

pytest_plugins = ["interop_policy"]
