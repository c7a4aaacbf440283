"""Ping (``/ipfs/ping/1.0.0``), sans-IO: 32 random bytes out, the same 32 bytes back."""

from __future__ import annotations

import os

PROTOCOL_ID = "/ipfs/ping/1.0.0"
PING_SIZE = 32


def new_payload() -> bytes:
    """A fresh random ping payload."""
    return os.urandom(PING_SIZE)
