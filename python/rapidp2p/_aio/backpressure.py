"""Read backpressure of one TCP-like connection: when its socket stops being read.

Kept apart from the driver (``_aio/connection.py``), whose per-read path only moves bytes
into Rust and dispatches events: this object decides when to pause and resume the socket,
and what to do about an mplex connection that stays paused.

- Two reasons pause reading: the streams' unread bytes passed ``max_unread`` (resumed once
  the application drained half of it), or the raw phase's buffer passed its cap (resumed
  once the upgrade took half of it). The socket reads while neither holds.
- mplex has no flow control, so the cap drops to half of mplex's per-stream limit
  (:meth:`ReadGate.limit_for_mplex`): a slow reader blocks the connection (TCP pushes back)
  instead of overflowing the muxer. A connection that stays blocked for
  :data:`MPLEX_STALL_RESET` seconds resets the stream holding the most unread bytes
  (go-mplex's behaviour; the spec allows either), which lets the other streams flow again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rapidp2p._aio.accounting import biggest_holder

if TYPE_CHECKING:
    from rapidp2p._aio.accounting import ReceiveAccounting
    from rapidp2p._aio.stream import Stream

__all__ = ["MPLEX_STALL_RESET", "ReadGate"]

#: Seconds an mplex connection may stay paused on unread bytes before the stream holding the
#: most of them is reset (go-mplex waits 5 s too).
MPLEX_STALL_RESET = 5.0


class ReadGate:
    """The unread-byte count of one connection and whether its socket reads (see the module
    docstring). ``unread``, ``max_unread`` and ``over_cap`` are public so that the driver's
    per-event path tests them without a call; the pause and resume go through methods."""

    __slots__ = (
        "_loop",
        "_reset",
        "_stall_timer",
        "_streams",
        "_transport",
        "_transport_paused",
        "max_unread",
        "mplex",
        "over_cap",
        "raw_full",
        "unread",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        max_unread: int,
        *,
        transport: Callable[[], asyncio.Transport | None],
        streams: Iterable[Stream],
        reset: Callable[[Stream, str], None],
    ) -> None:
        """``transport`` returns the socket's transport (None once it is gone); ``streams``
        is a live view of the open streams and ``reset`` resets one on both sides (both for
        the mplex stall)."""
        self._loop = loop
        self._transport = transport
        self._streams = streams
        self._reset = reset
        self._stall_timer: asyncio.TimerHandle | None = None
        self._transport_paused = False
        #: Bytes received on the streams and not yet read by the application.
        self.unread = 0
        self.max_unread = max_unread
        #: Paused because ``unread`` passed ``max_unread``.
        self.over_cap = False
        #: Paused because the raw phase's buffer passed its cap.
        self.raw_full = False
        #: The muxer is mplex (a pause on unread bytes arms the stall reset).
        self.mplex = False

    def limit_for_mplex(self, cap: int) -> None:
        """The muxer is mplex, which cannot slow a sender down: pause reading before any
        stream could reach mplex's per-stream ``cap`` (the cap then only bounds a
        misbehaving driver)."""
        self.mplex = True
        self.max_unread = min(self.max_unread, max(1, cap // 2))

    def count(self) -> int:
        """The live unread count (for :meth:`ReceiveAccounting.reserve_unread`)."""
        return self.unread

    def read(self, n: int, acct: ReceiveAccounting | None) -> None:
        """``n`` unread bytes were read or discarded: give back their reservation in
        ``acct`` (no call on every read when nothing is held), then resume reading once
        half of ``max_unread`` is free."""
        unread = self.unread = self.unread - n
        if acct is not None and acct.reserved:
            acct.read(unread)
        if self.over_cap and unread <= self.max_unread // 2:
            self.resume_unread()

    def pause_unread(self) -> None:
        """``unread`` passed ``max_unread``."""
        self.over_cap = True
        self._apply()

    def resume_unread(self) -> None:
        """The application drained ``unread`` down to half of ``max_unread``."""
        self.over_cap = False
        self._apply()

    def set_raw_full(self, full: bool) -> None:
        """The raw phase's buffer passed its cap (True) or drained below half of it."""
        self.raw_full = full
        self._apply()

    def close(self) -> None:
        """The connection is gone: no stall reset, nothing unread."""
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        self.unread = 0

    def _apply(self) -> None:
        want = self.over_cap or self.raw_full
        tr = self._transport()
        if tr is None or want == self._transport_paused:
            return
        self._transport_paused = want
        if want:
            tr.pause_reading()
            if self.over_cap and self.mplex:
                self._stall_timer = self._loop.call_later(MPLEX_STALL_RESET, self._mplex_stalled)
        else:
            tr.resume_reading()
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None

    def _mplex_stalled(self) -> None:
        """An mplex connection stayed paused on unread bytes: reset the stream holding the
        most of them (its reader is stuck), which resumes the others."""
        self._stall_timer = None
        if not self.over_cap or self._transport() is None:
            return
        biggest, _ = biggest_holder(self._streams)
        if biggest is None:
            return
        self._reset(
            biggest,
            f"stream reset: its reader left {biggest.unread_bytes} bytes unread for "
            f"{MPLEX_STALL_RESET} s on an mplex connection (no flow control)",
        )
        if self.over_cap and self._stall_timer is None:  # still blocked: next one
            self._stall_timer = self._loop.call_later(MPLEX_STALL_RESET, self._mplex_stalled)
