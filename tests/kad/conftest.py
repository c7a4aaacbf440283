"""The kad tests import node helpers from ``tests/unit/test_kad_util.py``.

The interop policy (peers pre-built, no skips under CI) comes from ``tests/conftest.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
