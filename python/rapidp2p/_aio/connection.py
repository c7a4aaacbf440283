"""The asyncio driver of one TCP-like connection: a socket and a ``_core.conn.Connection``.

One :class:`MuxedConnection` (an :class:`asyncio.BufferedProtocol`) owns a socket for its whole
life. For Noise and TLS the upgrader installs a ``_core.conn.Connection.upgrading(...)``
before the upgrade's first byte (:meth:`MuxedConnection.start_upgrade`): Rust then runs
multistream-select of the security protocol, the handshake, the muxer negotiation and yamux
or mplex, and this driver only hands its events to ``_aio/upgrading.py``, which answers
them through the upgrader's :class:`UpgradeHooks`.
Plaintext and private networks take the upgrader's fallback over the raw phase
(``_aio/raw.py``), then :meth:`MuxedConnection.start_muxer`. Either way:

- every socket read lands in the thread's shared read buffer (``_aio/readbuf.py``) and is ONE
  ``receive_into`` call, which decrypts it in place and keeps any partial frame inside Rust;
- writes are coalesced: stream writes only queue frames inside Rust (large ones by reference,
  no copy), and one ``transport.write(conn.data_to_send())`` runs per loop iteration
  (``call_soon`` flush), or at once when 256 KiB are queued;
- the muxer's timers (and a refused dialer's wait for the reason) run on ``loop.call_at``;
- backpressure both ways: reading pauses when the streams' unread bytes pass a cap, and
  mplex's stall reset (``_aio/backpressure.py``); ``pause_writing`` blocks ``drain``;
  unread bytes and window growth are reserved from the host's resource scope
  (``_aio/accounting.py``).

It implements :class:`~rapidp2p.transport.contracts.Connection` for the host and
:class:`~rapidp2p.transport.contracts.StreamCarrier` for its streams (kept in a
``_aio/streams.py`` table).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from rapidp2p import _core
from rapidp2p._aio.accounting import UNREAD_QUANTUM, UNREAD_STEP, ReceiveAccounting
from rapidp2p._aio.backpressure import ReadGate
from rapidp2p._aio.raw import RAW_BUFFER_CAP, RawStream
from rapidp2p._aio.readbuf import RBUF_MAX, RBUF_SHARED, shared_rbuf, tune_allocator_once
from rapidp2p._aio.stream import CONNECTION_LOST, Stream
from rapidp2p._aio.streams import StreamTable, wake_all
from rapidp2p._aio.upgrading import RustUpgrade, UpgradeHooks
from rapidp2p.exceptions import (
    ConnectionClosedError,
    GoAwayError,
    Libp2pError,
    StreamLimitError,
)
from rapidp2p.metrics._counters import ByteCounter

if TYPE_CHECKING:
    from rapidp2p.crypto import PublicKey
    from rapidp2p.peer import Multiaddr, PeerId
    from rapidp2p.transport.contracts import Connection, Direction, ReceiveMemory

__all__ = [
    "RAW_BUFFER_CAP",
    "RBUF_MAX",
    "RBUF_SHARED",
    "UNREAD_QUANTUM",
    "UNREAD_STEP",
    "MuxedConnection",
    "RawStream",
    "UpgradeHooks",
]

EV_STREAM_OPENED: int = _core.conn.EV_STREAM_OPENED
EV_DATA: int = _core.conn.EV_DATA
EV_FIN: int = _core.conn.EV_FIN
EV_RESET: int = _core.conn.EV_RESET
EV_WINDOW: int = _core.conn.EV_WINDOW
EV_STREAM_ACKED: int = _core.conn.EV_STREAM_ACKED
EV_PING_RTT: int = _core.conn.EV_PING_RTT
EV_GO_AWAY: int = _core.conn.EV_GO_AWAY
EV_MUXER: int = _core.conn.EV_MUXER
EV_SECURITY: int = _core.conn.EV_SECURITY

#: Default cap of bytes received but not yet read by the application, per connection.
DEFAULT_MAX_UNREAD = 32 * 1024 * 1024
#: Queued output written at once instead of at the end of the loop iteration (pipelining).
FLUSH_AT = 256 * 1024
#: Seconds a failed connection may spend flushing its GoAway before the socket is dropped.
FAIL_FLUSH_GRACE = 2.0


class MuxedConnection(asyncio.BufferedProtocol):
    """One connection: raw during the handshake, then a secured, multiplexed session.

    The upgrader sets ``remote_peer``, ``remote_key``, ``security`` and ``muxer``; the host
    sets ``remote_addr``, ``local_addr``, ``direction``, ``on_stream`` and the callbacks.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        max_unread: int = DEFAULT_MAX_UNREAD,
    ) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._connected: asyncio.Future[None] = self.loop.create_future()
        self._closed: asyncio.Future[None] = self.loop.create_future()
        self.close_reason: BaseException | None = None
        #: Bytes before a ``_core.conn.Connection`` takes them (made on first use).
        self._raw: RawStream | None = None
        # secured phase
        self._conn: Any = None
        self._muxer_waiter: asyncio.Future[str] | None = None
        #: Set while a Rust-driven upgrade runs (:meth:`start_upgrade`), until secured.
        self._upgrade: RustUpgrade | None = None
        self._table = StreamTable(self.loop)
        self._streams = self._table.by_id  # the same dict, read on every event
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._ping_waiters: list[asyncio.Future[float]] = []
        #: Unread bytes, and when the socket pauses (``_aio/backpressure.py``).
        self.read_gate = ReadGate(
            self.loop,
            max_unread,
            transport=lambda: self.transport,
            streams=self._streams.values(),
            reset=self._reset_stream,
        )
        #: Where unread bytes and window growth are reserved (the host's resource scope), and
        #: how much of each is held.
        self._acct: ReceiveAccounting | None = None
        self.go_away_code: int | None = None
        # identity, filled by the upgrader / host
        self.on_stream: Callable[[Stream], None] | None = None
        #: Called from ``connection_made`` (listeners use it to start the upgrade).
        self.on_made: Callable[[MuxedConnection], None] | None = None
        self.on_close: list[Callable[[Connection], None]] = []
        #: Called with a stream id when that stream ends (resource accounting); streams still
        #: open when the connection is lost end with ``on_close`` instead.
        self.on_stream_end: Callable[[int], None] | None = None
        # Set by the upgrade before the host sees the connection (None only until then).
        self.remote_peer: PeerId = cast("PeerId", None)
        self.local_peer: PeerId = cast("PeerId", None)
        self.remote_key: PublicKey | None = None
        self.remote_addr: Multiaddr | None = None
        self.local_addr: Multiaddr | None = None
        self.direction: Direction = "outbound"
        self.security: str | None = None
        self.muxer: str | None = None
        #: A relayed circuit with a time and data budget (set by the circuit transport).
        self.limited = False
        self.default_write_timeout: float | None = None
        self.opened_at = self.loop.time()
        #: When the socket connected (handshake latency starts here).
        self.connected_at: float | None = None
        #: Wire bytes of this connection's transport, when metrics are on (else None).
        self.byte_counter: ByteCounter | None = None

    # ---- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement it.
        self.transport = cast(asyncio.Transport, transport)
        self.connected_at = self.loop.time()
        if self.on_made is not None:
            self.on_made(self)
        if not self._connected.done():
            self._connected.set_result(None)

    def get_buffer(self, sizehint: int) -> memoryview:
        return shared_rbuf.get()

    def buffer_updated(self, nbytes: int) -> None:
        bc = self.byte_counter
        if bc is not None:
            bc.inbound += nbytes
        buf = shared_rbuf.buf
        conn = self._conn
        if conn is None:
            self._raw_received(bytes(buf[:nbytes]))
            return
        if nbytes == len(buf):
            shared_rbuf.grow()  # after this call: the read still uses the current buffer
        self._received(conn.receive_into, buf, nbytes, self.loop.time())

    def data_received(self, data: bytes) -> None:
        """Transports without buffer support (the in-memory one) deliver bytes here."""
        bc = self.byte_counter
        if bc is not None:
            bc.inbound += len(data)
        conn = self._conn
        if conn is None:
            self._raw_received(data)
            return
        self._received(conn.receive_data, data, self.loop.time())

    def _received(self, receive: Callable[..., list[tuple[int, int, Any]]], *args: Any) -> None:
        """One call into the ``_core.conn.Connection`` for one read; its events, then a flush."""
        up = self._upgrade
        try:
            if up is not None and up.first_byte_pending:
                up.first_byte()
            events = receive(*args)
            if events:
                self._dispatch(events)
        except Libp2pError as exc:
            self._fail(exc)
            return
        acct = self._acct
        if events and acct is not None and self.read_gate.unread > acct.reserved:
            acct.reserve_unread(self.read_gate.count, self._streams.values(), self._reset_stream)
        if self._conn is not None and self._conn.peer_closed:
            self._peer_closed()
            return
        self._schedule_flush()

    def _peer_closed(self) -> None:
        """The peer ended the secure channel (TLS close_notify): an orderly end, like a TCP
        EOF. We answer with our own close_notify and close the socket."""
        if self.close_reason is None:
            self.close_reason = ConnectionClosedError("closed by the remote (TLS close_notify)")
        self._close_transport()

    def _close_transport(self) -> None:
        """Writes the last output (pending frames, then TLS close_notify) and closes."""
        tr = self.transport
        conn = self._conn
        if tr is None:
            return
        if conn is not None:
            try:
                data = conn.closing_data()
            except Libp2pError:
                data = b""
            if data:
                tr.write(data)
                if self.byte_counter is not None:
                    self.byte_counter.outbound += len(data)
        tr.close()

    def eof_received(self) -> bool | None:
        conn = self._conn
        if conn is None:
            self.raw_stream().feed_eof()
        elif conn.is_upgrading:
            try:
                conn.receive_eof()  # raises why the upgrade was cut short
            except Libp2pError as exc:
                self._fail(exc)
        return None  # let the transport close; connection_lost ends every stream

    def connection_lost(self, exc: Exception | None) -> None:
        reason: BaseException = self.close_reason or ConnectionClosedError(
            f"connection lost: {exc}" if exc else "connection closed"
        )
        if self.go_away_code is not None and not isinstance(reason, GoAwayError):
            # Streams still open when a GoAway'd connection ends learn the remote's code.
            reason = GoAwayError(
                f"{reason} after the remote's GoAway (code {self.go_away_code})", self.go_away_code
            )
        self.close_reason = reason
        self.transport = None
        if self._raw is not None:
            self._raw.feed_eof()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._table.end_all(f"{CONNECTION_LOST}: {reason}", ConnectionClosedError(str(reason)))
        self.read_gate.close()
        if self._acct is not None:
            self._acct.close()
        for w in self._drain_waiters:
            if not w.done():
                w.set_exception(ConnectionClosedError(str(reason)))
        self._drain_waiters.clear()
        for pw in self._ping_waiters:
            if not pw.done():
                pw.set_exception(ConnectionClosedError(str(reason)))
        self._ping_waiters.clear()
        mw = self._muxer_waiter
        if mw is not None and not mw.done():
            mw.set_exception(reason)
            mw.exception()  # retrieved here: the upgrade may not be waiting (yet)
        if not self._closed.done():
            self._closed.set_result(None)
        callbacks, self.on_close = self.on_close, []
        for cb in callbacks:
            try:
                cb(self)
            except Exception:
                self.loop.call_exception_handler(
                    {"message": "on_close callback failed", "protocol": self}
                )

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        wake_all(self._drain_waiters)

    # ---- state -------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self.transport is None or self._closed.done()

    @property
    def streams(self) -> list[Stream]:
        return list(self._streams.values())

    @property
    def num_streams(self) -> int:
        return len(self._streams)

    @property
    def receive_memory(self) -> ReceiveMemory | None:
        return None if self._acct is None else self._acct.memory

    @receive_memory.setter
    def receive_memory(self, rm: ReceiveMemory | None) -> None:
        """From now on window growth and unread bytes are reserved from ``rm``."""
        if rm is None:
            self._acct = None
        elif self._acct is None:
            self._acct = ReceiveAccounting(rm)
        else:
            self._acct.memory = rm
        self._apply_window_budget()

    def set_receive_budget(self, total_bytes: int) -> None:
        """Caps the yamux windows' growth beyond their initial size (bytes reserved for it)."""
        if self._conn is not None:
            self._conn.set_max_window_growth(total_bytes)

    @property
    def receive_window_total(self) -> int:
        return 0 if self._conn is None else int(self._conn.total_window)

    @property
    def unread_bytes(self) -> int:
        return self.read_gate.unread

    @property
    def receive_budget_hit(self) -> bool:
        return self._conn is not None and bool(self._conn.window_capped)

    @property
    def rtt(self) -> float | None:
        """The muxer's smoothed round-trip time in seconds, once measured."""
        return None if self._conn is None else self._conn.rtt

    @property
    def protector(self) -> Any:
        """The private-network protector (``rapidp2p.pnet.RawProtector``), if any."""
        return None if self._raw is None else self._raw.protector

    async def wait_connected(self) -> None:
        await self._connected

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def __repr__(self) -> str:
        return f"<MuxedConnection {self.direction} peer={self.remote_peer} addr={self.remote_addr}>"

    # ---- raw phase (the upgrader's fallback, see _aio/raw.py) -------------------------

    def raw_stream(self) -> RawStream:
        raw = self._raw
        if raw is None:
            raw = self._raw = RawStream(self)
        return raw

    def _raw_received(self, data: bytes) -> None:
        raw = self.raw_stream()
        try:
            raw.feed(data)
        except Libp2pError as exc:  # the private-network protector
            self._fail(exc)
            return
        if raw.over_cap and not self.read_gate.raw_full:
            self.read_gate.set_raw_full(True)

    def raw_taken(self) -> None:
        """The upgrade consumed raw bytes: resume reading once half the cap is free."""
        if self.read_gate.raw_full and (self._raw is None or self._raw.below_resume):
            self.read_gate.set_raw_full(False)

    async def wait_writable(self) -> None:
        """Returns when the socket accepts writes again (raises once the connection is gone)."""
        while self.write_paused:
            if self.is_closed:
                raise ConnectionClosedError("connection closed")
            w = self.loop.create_future()
            self._drain_waiters.append(w)
            await w
        if self.is_closed:
            raise ConnectionClosedError("connection closed")

    # ---- secured phase -----------------------------------------------------------------

    def start_muxer(self, conn: Any) -> None:
        """The handshake is done: ``conn`` (a ``_core.conn.Connection``) takes every byte from now
        on, starting with those received after the handshake. When it negotiates the muxer,
        await :meth:`muxer_agreed` before using streams."""
        self._conn = conn
        self._apply_window_budget()
        if conn.muxer is None:
            self._muxer_waiter = self.loop.create_future()
        else:
            self.muxer = conn.muxer
            self._muxer_known()
        if self.transport is None:
            return
        raw = self._raw
        if raw is None:
            self._schedule_flush()
            return
        try:
            leftover = raw.take()  # unmasked already (by the Python protector)
            events = conn.receive_data(leftover, self.loop.time()) if leftover else []
            pnet = raw.protector
            if pnet is not None and not pnet.core.moved:
                conn.set_protector(pnet.core)  # every later byte is unmasked in Rust
            if events:
                self._dispatch(events)
        except Libp2pError as exc:
            self._fail(exc)
            return
        self._schedule_flush()

    def start_upgrade(self, conn: Any, hooks: UpgradeHooks, *, speak_first: bool) -> None:
        """Installs ``conn``, a ``_core.conn.Connection.upgrading(...)``, before the upgrade's
        first byte is read (bytes that arrived earlier, while the upgrade task was starting,
        go in first): from now on each socket read is one call into Rust, which runs
        multistream-select of the security protocol, the handshake, the early muxer and the
        muxer, asking ``hooks`` to check the Noise signature. Await :meth:`muxer_agreed`.
        ``speak_first``: send what ``conn`` queued at once (a dialer's first flight); a
        listener says nothing before the dialer spoke (a silent socket learns nothing)."""
        if self.transport is None:
            raise ConnectionClosedError(str(self.close_reason or "closed before the upgrade"))
        self._conn = conn
        self._upgrade = RustUpgrade(
            conn, hooks, clock=self.loop.time, dispatch=self._dispatch, secured=self._secured
        )
        self._muxer_waiter = self.loop.create_future()
        early = b"" if self._raw is None else self._raw.take()
        if early:
            self._received(conn.receive_data, early, self.loop.time())
        elif speak_first:
            self._schedule_flush()  # the header, the proposal and the first message

    def _secured(self, muxer: str | None) -> None:
        """The upgrade's hooks accepted the remote's identity: reads stop reporting to it."""
        self._upgrade = None
        if self.close_reason is not None:  # refused once secured (the gater)
            raise ConnectionClosedError(str(self.close_reason))
        self._apply_window_budget()
        if muxer is not None:
            self.muxer = muxer
            self._muxer_known()
            mw = self._muxer_waiter
            if mw is not None and not mw.done():
                mw.set_result(muxer)

    def _muxer_known(self) -> None:
        """mplex cannot slow a sender down: see :meth:`ReadGate.limit_for_mplex`."""
        cap = self._conn.mplex_max_buffered if self._conn is not None else None
        if cap is not None:
            self.read_gate.limit_for_mplex(cap)

    async def muxer_agreed(self) -> str:
        """Waits until the muxer negotiation inside the secured channel agreed; returns the
        muxer id (raises the negotiation error, or why the connection ended)."""
        if self._muxer_waiter is not None:
            self.muxer = await self._muxer_waiter
        if self.muxer is None:
            raise ConnectionClosedError("no muxer")
        return self.muxer

    @property
    def muxers_refused(self) -> list[str]:
        """Muxers the remote proposed that we refused (listener side of the negotiation)."""
        return [] if self._conn is None else list(self._conn.muxers_refused)

    # ---- events ------------------------------------------------------------------------

    def _dispatch(self, events: list[tuple[int, int, Any]]) -> None:
        streams = self._streams
        table = self._table
        gate = self.read_gate
        ev_data = EV_DATA
        for kind, sid, value in events:
            if kind == ev_data:
                st = streams.get(sid)
                if st is None:
                    # Data for a stream we dropped: credit it back so nothing stalls.
                    self._conn.ack(sid, len(value))
                    continue
                st.on_data(value)
                gate.unread += len(value)
                if gate.unread > gate.max_unread and not gate.over_cap:
                    gate.pause_unread()
            elif kind == EV_WINDOW:
                st = streams.get(sid)
                if st is not None:
                    st.on_window()
            elif kind == EV_STREAM_OPENED:
                self._on_inbound_stream(sid)
            elif kind == EV_FIN:
                st = streams.get(sid)
                if st is not None:
                    st.on_eof()
                    if st.write_done:
                        self._forget(sid)
                if table.settle_waiters:
                    table.check_settled()
            elif kind == EV_RESET:
                st = self._forget(sid)
                if st is not None:
                    st.on_reset()
                if table.open_waiters:
                    table.wake_openers()
                if table.settle_waiters:
                    table.check_settled()
            elif kind == EV_STREAM_ACKED:
                if table.open_waiters:
                    table.wake_openers()
            elif kind == EV_PING_RTT:
                waiters, self._ping_waiters = self._ping_waiters, []
                for pw in waiters:
                    if not pw.done():
                        pw.set_result(float(value))
            elif kind == EV_GO_AWAY:
                self.go_away_code = int(value)
                self._table.wake_openers()
            elif kind == EV_MUXER:
                self._muxer_known()
                mw = self._muxer_waiter
                if mw is not None and not mw.done():
                    mw.set_result(str(value))
            elif kind >= EV_SECURITY:
                up = self._upgrade
                if up is not None:
                    up.event(kind, value)

    def _on_inbound_stream(self, sid: int) -> None:
        st = Stream(self, sid, initiator=False)
        self._streams[sid] = st
        handler = self.on_stream
        if handler is None:
            self.stream_reset(st)
            st.on_reset("no stream handler")
            return
        handler(st)

    def _forget(self, sid: int) -> Stream | None:
        """A stream leaves the table (FIN both ways, or reset): tell ``on_stream_end``; its
        window growth is given back at the next flush (the muxer drops it by then)."""
        st = self._streams.pop(sid, None)
        if st is not None:
            if self.on_stream_end is not None:
                self.on_stream_end(sid)
            acct = self._acct
            if acct is not None and acct.window_grant:
                acct.trim_due = True
        return st

    # ---- calls from streams ------------------------------------------------------------

    def stream_send(self, st: Stream, data: bytes, fin: bool, start: int = 0, end: int = -1) -> int:
        """Offers ``data[start:end]`` (``end=-1``: to the end) to the muxer."""
        conn = self._conn
        if conn is None or self.transport is None:
            raise ConnectionClosedError("connection closed")
        if start or end >= 0:
            accepted: int = conn.send(st.stream_id, data, fin, start, None if end < 0 else end)
        else:
            accepted = conn.send(st.stream_id, data, fin)
        if accepted:
            if accepted >= FLUSH_AT or conn.pending_output >= FLUSH_AT:
                tune_allocator_once()
                self._flush()
            else:
                self._schedule_flush()
        return accepted

    def stream_send_window(self, st: Stream) -> int:
        conn = self._conn
        if conn is None or self.transport is None:
            raise ConnectionClosedError("connection closed")
        try:
            window: int = conn.send_window(st.stream_id)
        except Libp2pError:
            return 0
        return window

    def stream_close(self, st: Stream) -> None:
        if self._conn is None or self.transport is None:
            return
        with contextlib.suppress(Libp2pError):
            self._conn.close_stream(st.stream_id)
        if st.remote_closed:
            self._forget(st.stream_id)
        self._schedule_flush()

    def stream_reset(self, st: Stream) -> None:
        self._forget(st.stream_id)
        table = self._table
        if table.settle_waiters:
            table.check_settled()
        if self._conn is None or self.transport is None:
            return
        with contextlib.suppress(Libp2pError):
            self._conn.reset_stream(st.stream_id)
        if table.open_waiters:
            table.wake_openers()
        self._schedule_flush()

    def stream_consumed(self, st: Stream, n: int) -> None:
        """The application read ``n`` bytes: grant window credit, maybe resume reading."""
        conn = self._conn
        if conn is None or self.transport is None:
            return
        if st.stream_id in self._streams or not st.is_reset:
            try:  # on every read: no context manager object per call
                held = conn.ack(st.stream_id, n)
            except Libp2pError:
                held = 0
            if held and self._acct is not None:
                self._acct.grow_window(conn, st.stream_id, held)
        self.read_gate.read(n, self._acct)
        self._schedule_flush()

    def stream_discarded(self, n: int) -> None:
        self.read_gate.read(n, self._acct)

    # ---- receive memory (once per socket read at most, never per frame) ------------------

    def _reset_stream(self, st: Stream, why: str) -> None:
        """Resets ``st`` on both sides (the receive memory refused, or mplex stalled)."""
        self.stream_reset(st)
        st.on_reset(why)  # discards its unread bytes

    def _apply_window_budget(self) -> None:
        conn, acct = self._conn, self._acct
        if conn is not None and acct is not None and not conn.is_upgrading:
            acct.apply_window_budget(conn)

    # ---- public muxed API --------------------------------------------------------------

    async def open_stream(self) -> Stream:
        """Opens an outbound stream; waits while the unacknowledged-SYN backlog is full."""
        while True:
            conn = self._conn
            if conn is None or self.transport is None:
                raise ConnectionClosedError(str(self.close_reason or "connection closed"))
            if self.go_away_code is not None:
                raise GoAwayError("remote sent GoAway", self.go_away_code)
            try:
                sid: int = conn.open_stream()
            except StreamLimitError:
                await self._table.wait_for_opening()
                continue
            st = Stream(self, sid, initiator=True)
            self._streams[sid] = st
            self._schedule_flush()
            return st

    async def ping_after_flush(self) -> float:
        """Writes everything queued, then pings: the pong proves that the remote's muxer
        received every byte written before it (TCP keeps the order). Returns the RTT."""
        self._flush()
        return await self.ping()

    async def ping(self) -> float:
        """A yamux-level ping; returns the round-trip time in seconds (LocalProtocolError on
        an mplex connection: mplex has no ping)."""
        if self._conn is None or self.transport is None:
            raise ConnectionClosedError("connection closed")
        self._conn.ping(self.loop.time())  # mplex has no ping: raises before waiting
        fut: asyncio.Future[float] = self.loop.create_future()
        self._ping_waiters.append(fut)
        self._schedule_flush()
        return await fut

    # ---- graceful shutdown -------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """True when closing now loses nothing we wrote: every stream we wrote on was closed
        or reset by the remote (see :attr:`Stream.settled`), or the connection is gone."""
        return self.is_closed or self._table.settled

    def shutdown_streams(self) -> None:
        """First step of a graceful close: FIN on every stream after its queued data (see
        :meth:`StreamTable.shutdown`)."""
        self._table.shutdown()

    async def wait_settled(self) -> None:
        """Waits until :attr:`settled` (the remote consumed what we wrote, as far as the
        remote's FIN or reset can tell, or the connection ended). Callers bound it."""
        await self._table.wait_settled(lambda: self.is_closed)

    def go_away(self, code: int = 0) -> None:
        if self._conn is not None and self.transport is not None:
            with contextlib.suppress(Libp2pError):
                self._conn.go_away(code)
            self._schedule_flush()

    async def close(self) -> None:
        """Sends GoAway, flushes, closes the socket and waits until it is gone."""
        tr = self.transport
        if tr is None:
            return
        if self._conn is not None:
            with contextlib.suppress(Libp2pError):
                self._conn.go_away(0)
        if self.close_reason is None:
            self.close_reason = ConnectionClosedError("connection closed locally")
        # One write: the GoAway and what else is queued, then TLS close_notify, so the peer
        # reads the orderly end with the GoAway rather than closing on the GoAway alone.
        self._close_transport()
        await self.wait_closed()

    def abort(self, reason: BaseException | None = None) -> None:
        """Drops the socket at once (no flush)."""
        if reason is not None and self.close_reason is None:
            self.close_reason = reason
        tr = self.transport
        if tr is not None:
            tr.abort()

    def _fail(self, exc: BaseException) -> None:
        """A protocol violation: send what the muxer queued (GoAway), then close."""
        if self.close_reason is None:
            self.close_reason = exc
        mw = self._muxer_waiter
        if mw is not None and not mw.done():
            mw.set_exception(exc)
            mw.exception()  # retrieved here: the upgrade may not be waiting (yet)
        tr = self.transport
        if tr is None or tr.is_closing():  # already aborted (a gater at EV_SECURED)
            return
        self._close_transport()  # what the muxer queued (GoAway), then TLS close_notify
        # A peer that stopped reading would keep close() waiting to flush forever: the GoAway
        # gets a grace period, then the socket is dropped (ROBUSTNESS 16).
        self.loop.call_later(FAIL_FLUSH_GRACE, self._abort_if_still_open, tr)

    def _abort_if_still_open(self, tr: asyncio.BaseTransport) -> None:
        if self.transport is tr:  # connection_lost has not run: the flush is stuck
            tr.abort()

    # ---- flushing and timers -----------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        conn = self._conn
        tr = self.transport
        if conn is None or tr is None:
            return
        acct = self._acct
        if acct is not None and acct.trim_due:
            acct.trim_window_grant(conn)
        data = conn.data_to_send()
        if data:
            tr.write(data)
            bc = self.byte_counter
            if bc is not None:
                bc.outbound += len(data)
        at = conn.next_timer()
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = at
            if at is not None:
                self._timer = self.loop.call_at(at, self._on_timer)
        if conn.is_closed:
            self._fail(self.close_reason or ConnectionClosedError("muxer closed"))

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        conn = self._conn
        if conn is None or self.transport is None:
            return
        try:
            conn.handle_timer(self.loop.time())
        except Libp2pError as exc:
            self._fail(exc)
            return
        self._flush()
