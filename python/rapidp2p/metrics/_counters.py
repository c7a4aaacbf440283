"""Plain-int byte accumulators the data path adds to (no lock, no call, no prometheus).

The connection driver adds one socket read or one flush at a time, a stream one read event or
one ``write`` at a time; a collector reads the totals when Prometheus scrapes. Everything runs
on the event loop's thread, and the scrape is served on that loop too, so a plain ``+=`` is
enough. With metrics off the driver holds ``None`` and does nothing but that check.
"""

from __future__ import annotations

__all__ = ["ByteCounter"]


class ByteCounter:
    """Bytes received (``inbound``) and sent (``outbound``) for one label set."""

    __slots__ = ("inbound", "outbound")

    def __init__(self) -> None:
        self.inbound = 0
        self.outbound = 0

    def __repr__(self) -> str:
        return f"<ByteCounter in={self.inbound} out={self.outbound}>"
