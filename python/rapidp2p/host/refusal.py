"""Telling a refused dialer why, and the listener's operator, without costing a flood.

A refused socket gets the multistream header, ``na`` (what any libp2p dialer understands as
"not this protocol") and one more message ``refused: <reason>`` that rapidp2p dialers turn
into :class:`~rapidp2p.exceptions.ConnectionRefusedByPeer` with the reason. The socket is then
half-closed and read until the dialer hangs up (closing with unread bytes would send a TCP RST
that can destroy the answer in flight), for at most ``REFUSE_LINGER`` seconds; past
``MAX_LINGERING`` such sockets at once, refusals just drop the socket.

The listener logs each refusal at WARNING, rate-limited per scope and limit
(:class:`RefusalLog`), naming the scope and the limit.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from rapidp2p.exceptions import Libp2pError, ResourceLimitExceeded
from rapidp2p.protocols.framing import encode_delimited
from rapidp2p.protocols.multistream._proto import encode_messages

if TYPE_CHECKING:
    from rapidp2p._aio.connection import MuxedConnection

__all__ = ["REFUSED_PREFIX", "ConnectionRefuser", "RefusalLog"]

#: The multistream message that carries a refusal's reason after ``na``.
REFUSED_PREFIX = "refused: "
REFUSE_LINGER = 2.0
MAX_LINGERING = 64

log = logging.getLogger("rapidp2p.resources")


class RefusalLog:
    """One WARNING per (scope kind, limit) per ``interval`` seconds, counting the rest."""

    def __init__(self, interval: float = 10.0, clock: object = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def refused(self, what: str, err: Libp2pError) -> None:
        scope = getattr(err, "scope", type(err).__name__)
        limit = getattr(err, "limit", "")
        key = f"{str(scope).split(':', 1)[0]}/{limit}"
        now = self._clock()  # type: ignore[operator]
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        if len(self._last) > 1024:
            self._last.clear()
        self._last[key] = now
        more = self._suppressed.pop(key, 0)
        extra = f" ({more} more like it suppressed)" if more else ""
        log.warning("refusing %s: %s%s", what, err, extra)


class ConnectionRefuser:
    """Answers refused inbound sockets (see the module docstring)."""

    def __init__(self) -> None:
        self.lingering = 0
        #: Drop refused sockets without the plaintext reason (a private network: the dialer
        #: expects a nonce, and outsiders learn nothing).
        self.silent = False

    def refuse(self, mux: MuxedConnection, err: Libp2pError) -> None:
        if mux.close_reason is None:
            mux.close_reason = err
        tr = mux.transport
        if tr is None:
            return
        if self.silent or self.lingering >= MAX_LINGERING or tr.is_closing():
            mux.abort(err)
            return
        reason = str(err) if isinstance(err, ResourceLimitExceeded) else f"{err}"
        try:
            # The reason is framed here: encode_message's cache is for protocol ids.
            body = f"{REFUSED_PREFIX}{reason}"[:1000].encode() + b"\n"
            tr.write(encode_messages("/multistream/1.0.0", "na") + encode_delimited(body))
            if tr.can_write_eof():
                tr.write_eof()
        except (OSError, RuntimeError):
            mux.abort(err)
            return
        self.lingering += 1
        timer = mux.loop.call_later(REFUSE_LINGER, mux.abort, err)

        def done(_: object) -> None:
            self.lingering -= 1
            timer.cancel()

        mux.on_close.append(done)
