"""Receive memory of one TCP-like connection, reserved from the host's resource scope.

Two kinds of bytes are reserved (``transport/contracts.py``'s ``ReceiveMemory``): bytes
received and not yet read by the application (at most once per socket read, rounded up to
:data:`UNREAD_QUANTUM`, given back once read), and the yamux windows' growth beyond their
initial size (reserved as auto-tuning asks for it, given back when streams end). The driver
(``_aio/connection.py``) counts the unread bytes; this object decides what to reserve and
what to give back, and which stream to reset when the scope refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream
    from rapidp2p.transport.contracts import ReceiveMemory

__all__ = ["UNREAD_QUANTUM", "UNREAD_STEP", "ReceiveAccounting", "biggest_holder"]

#: Unread bytes are reserved (at most once per socket read) rounded up to this quantum, and
#: given back once the application read them all, or once this much more than the unread
#: bytes is held: an idle connection holds no reservation.
UNREAD_QUANTUM = 4 * 1024
UNREAD_STEP = 256 * 1024


def biggest_holder(streams: Iterable[Stream]) -> tuple[Stream | None, int]:
    """The stream holding the most unread bytes, and how many streams hold any."""
    holding = [st for st in streams if st.unread_bytes]
    if not holding:
        return None, 0
    return max(holding, key=lambda st: st.unread_bytes), len(holding)


def _quanta(n: int) -> int:
    return -(-n // UNREAD_QUANTUM) * UNREAD_QUANTUM


class ReceiveAccounting:
    """What one connection holds reserved in ``memory`` (see the module docstring)."""

    __slots__ = ("memory", "reserved", "trim_due", "window_grant")

    def __init__(self, memory: ReceiveMemory) -> None:
        self.memory = memory
        #: Unread bytes reserved.
        self.reserved = 0
        #: Window growth reserved.
        self.window_grant = 0
        #: Streams ended since the last flush: their window growth may be given back.
        self.trim_due = False

    def reserve_unread(
        self,
        unread: Callable[[], int],
        streams: Iterable[Stream],
        reset: Callable[[Stream, str], None],
    ) -> None:
        """More bytes wait unread than are reserved: reserve them, or degrade.

        Flow control already bounds what a peer can make us hold (its streams' windows), so
        a refusal never stops the socket (window updates and pings must still be read, or an
        application waiting to write would wait forever); instead the stream holding the most
        is reset (``reset``, which discards its unread bytes), and the next after it until the
        rest fits, as long as several streams hold unread bytes or one alone is over the
        per-stream limit (streams lost, the others and the connection go on). ``unread``
        and ``streams`` are the driver's live count and table (a reset changes both).
        """
        rm = self.memory
        while unread() > self.reserved:
            need = _quanta(unread() - self.reserved)
            refusal = rm.reserve_unread(need)
            if refusal is None:
                self.reserved += need
                return
            biggest, holders = biggest_holder(streams)
            if biggest is None:
                return
            if holders == 1 and biggest.unread_bytes <= rm.stream_memory_limit:
                return
            reset(biggest, f"stream reset: {refusal}")

    def read(self, unread: int) -> None:
        """The application read (``unread`` bytes remain): give back what is reserved beyond
        them (rounded up to a quantum), once all was read or a step's worth is spare."""
        held = self.reserved
        if held and (not unread or held - unread >= UNREAD_STEP):
            keep = min(held, _quanta(unread))
            if held > keep:
                self.memory.release_unread(held - keep)
            self.reserved = keep

    def apply_window_budget(self, conn: Any) -> None:
        """Caps the windows' growth at what is reserved for it: nothing until a window grows
        (growth that happened before accounting started is reserved now, as far as the
        scopes agree; windows are never shrunk)."""
        missing = int(conn.window_growth) - self.window_grant
        if missing > 0:
            self.window_grant += self.memory.reserve_window(missing)
        conn.set_max_window_growth(self.window_grant)

    def grow_window(self, conn: Any, sid: int, held: int) -> None:
        """Auto-tuning held back ``held`` bytes of a window's growth: reserve them (the scope
        halves what it refuses) and grant what was reserved at once, in the same epoch;
        refused, the window stays as it is."""
        got = self.memory.reserve_window(held)
        if got:
            self.window_grant += got
        conn.set_max_window_growth(self.window_grant)
        if got:
            conn.grow_window(sid)

    def trim_window_grant(self, conn: Any) -> None:
        """Streams ended: give back the growth reserved for their windows."""
        self.trim_due = False
        excess = self.window_grant - int(conn.window_growth)
        if excess <= 0:
            return
        self.memory.release_window(excess)
        self.window_grant -= excess
        conn.set_max_window_growth(self.window_grant)

    def close(self) -> None:
        """The connection is gone: give everything back."""
        if self.reserved:
            self.memory.release_unread(self.reserved)
        if self.window_grant:
            self.memory.release_window(self.window_grant)
        self.reserved = self.window_grant = 0
