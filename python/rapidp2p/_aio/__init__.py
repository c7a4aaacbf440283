"""asyncio drivers: the connection protocol (socket <-> sans-IO Rust session) and streams."""

from __future__ import annotations

from rapidp2p._aio.connection import MuxedConnection, RawStream
from rapidp2p._aio.stream import Stream

__all__ = ["MuxedConnection", "RawStream", "Stream"]
