"""Fixtures of the delivery suite: both cores kept busy, as on a loaded CI machine."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture
def busy_cores() -> Iterator[None]:
    """Two busy-looping processes keep both cores loaded for the test's whole length: the
    races between a short-lived sender's exit and the receiver's read show up under load."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()
