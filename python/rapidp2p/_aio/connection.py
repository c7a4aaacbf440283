"""The asyncio driver of one TCP-like connection: a socket, then a ``_core.conn.Connection``.

One :class:`MuxedConnection` (an :class:`asyncio.BufferedProtocol`) owns a socket for its whole
life. Until the security handshake finishes it is a plain byte pipe (:class:`RawStream`, read by
multistream-select and the handshake). :meth:`MuxedConnection.start_muxer` then hands every
further byte to a ``_core.conn.Connection`` (sans-IO, in Rust), which runs the private-network
layer, the transport cipher, the muxer negotiation when the handshake did not settle it, and
yamux:

- every socket read lands in a read buffer shared by the thread's connections (64 KiB, 1 MiB
  after a read that filled it) and is ONE ``receive_into`` call, which decrypts it in place
  and keeps any partial frame inside Rust; so an idle connection holds no read buffer;
- writes are coalesced: stream writes only queue frames inside Rust (large ones by reference,
  no copy), and one ``transport.write(conn.data_to_send())`` runs per loop iteration
  (``call_soon`` flush), or at once when 256 KiB are queued;
- the muxer's timers run on ``loop.call_at``;
- backpressure both ways: reading pauses when the streams' unread bytes pass a cap and
  resumes when the application drained half of it; ``pause_writing`` blocks ``drain``;
- mplex (no flow control): the cap drops to half of mplex's per-stream limit, so a slow
  reader blocks the connection (TCP pushes back) instead of overflowing; a connection that
  stays blocked for :data:`MPLEX_STALL_RESET` seconds resets the stream holding the most
  unread bytes (go-mplex's behaviour; the spec allows either).

It implements :class:`~rapidp2p.transport.contracts.Connection` for the host and
:class:`~rapidp2p.transport.contracts.StreamCarrier` for its streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from rapidp2p import _core
from rapidp2p._aio.stream import CONNECTION_LOST, Stream
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

__all__ = ["MuxedConnection", "RawStream"]

EV_STREAM_OPENED: int = _core.conn.EV_STREAM_OPENED
EV_DATA: int = _core.conn.EV_DATA
EV_FIN: int = _core.conn.EV_FIN
EV_RESET: int = _core.conn.EV_RESET
EV_WINDOW: int = _core.conn.EV_WINDOW
EV_STREAM_ACKED: int = _core.conn.EV_STREAM_ACKED
EV_PING_RTT: int = _core.conn.EV_PING_RTT
EV_GO_AWAY: int = _core.conn.EV_GO_AWAY
EV_MUXER: int = _core.conn.EV_MUXER

#: Bytes the raw (pre-handshake) phase buffers before it stops reading the socket until the
#: upgrade consumed them: handshake messages are at most 65537 bytes, but a peer whose side of
#: the upgrade is done may already send muxed data (up to a window per stream).
RAW_BUFFER_CAP = 256 * 1024
#: Default cap of bytes received but not yet read by the application, per connection.
DEFAULT_MAX_UNREAD = 32 * 1024 * 1024
#: Unread bytes are reserved from ``receive_memory`` (at most once per socket read) rounded up
#: to this quantum, and given back once the application read them all, or once this much more
#: than the unread bytes is held: an idle connection holds no reservation.
UNREAD_QUANTUM = 4 * 1024
UNREAD_STEP = 256 * 1024
#: Queued output written at once instead of at the end of the loop iteration (pipelining).
FLUSH_AT = 256 * 1024
#: Seconds a failed connection may spend flushing its GoAway before the socket is dropped.
FAIL_FLUSH_GRACE = 2.0
#: The shared read buffer: RBUF_SHARED bytes, RBUF_MAX once a read filled it (bulk traffic:
#: fewer, larger reads).
RBUF_SHARED = 64 * 1024
RBUF_MAX = 1024 * 1024
#: Seconds an mplex connection may stay paused on unread bytes before the stream holding the
#: most of them is reset (go-mplex waits 5 s too).
MPLEX_STALL_RESET = 5.0


class _SharedReadBuffer(threading.local):
    """One read buffer per thread (an event loop runs in one thread): every read lands in it
    and is consumed by the ``receive_into`` call that follows, before the next read."""

    def __init__(self) -> None:
        self.buf = bytearray(0)
        self.view = memoryview(self.buf)

    def get(self) -> memoryview:
        if not self.buf:
            self._new(RBUF_SHARED)
        return self.view

    def grow(self) -> None:
        if len(self.buf) < RBUF_MAX:
            self._new(RBUF_MAX)  # the old one may still be exported: replace, never resize
            _tune_allocator_once()

    def _new(self, size: int) -> None:
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)


_shared_rbuf = _SharedReadBuffer()
_allocator_tuned = False


def _tune_allocator_once() -> None:
    """On the first bulk transfer of the process, stop glibc trimming the heap after every
    burst of large buffers (see ``_core.conn.tune_allocator``; 15-25% of a bulk receiver's CPU went
    to page faults). ``RAPIDP2P_MALLOC_TUNING=0`` leaves the allocator alone."""
    global _allocator_tuned
    if _allocator_tuned:
        return
    _allocator_tuned = True
    if os.environ.get("RAPIDP2P_MALLOC_TUNING", "1") != "0":
        _core.conn.tune_allocator()


class RawStream:
    """The byte stream of the upgrade (security negotiation and handshake), before the
    ``_core.conn.Connection`` takes over."""

    __slots__ = ("_mux",)

    def __init__(self, mux: MuxedConnection) -> None:
        self._mux = mux

    async def read(self, n: int = -1) -> bytes:
        return await self._mux._raw_read(n)

    async def readexactly(self, n: int) -> bytes:
        return await self._mux._raw_readexactly(n)

    def write(self, data: bytes) -> None:
        self._mux._raw_write(data)

    async def drain(self) -> None:
        await self._mux.wait_writable()

    async def close(self) -> None:
        self._mux.abort()


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
        # raw phase
        self._raw = bytearray()
        self._raw_eof = False
        self._raw_waiter: asyncio.Future[None] | None = None
        self._raw_paused = False
        #: Private network: the protector (``rapidp2p.pnet.RawProtector``) set by ``protect``;
        #: used here during the handshake, then moved into the ``_core.conn.Connection``.
        self._pnet: Any = None
        # secured phase
        self._conn: Any = None
        self._muxer_waiter: asyncio.Future[str] | None = None
        self._streams: dict[int, Stream] = {}
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._open_waiters: list[asyncio.Future[None]] = []
        self._ping_waiters: list[asyncio.Future[float]] = []
        self._settle_waiters: list[asyncio.Future[None]] = []
        self._reading_paused = False  # too many unread muxed bytes
        self._stall_timer: asyncio.TimerHandle | None = None  # mplex only
        self._transport_paused = False
        self._unread = 0
        self._max_unread = max_unread
        #: Where unread bytes and window growth are reserved (the host's resource scope), and
        #: how much of each is held.
        self._receive_memory: ReceiveMemory | None = None
        self._unread_reserved = 0
        self._window_grant = 0
        self._window_trim_due = False
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
        return _shared_rbuf.get()

    def buffer_updated(self, nbytes: int) -> None:
        bc = self.byte_counter
        if bc is not None:
            bc.inbound += nbytes
        buf = _shared_rbuf.buf
        conn = self._conn
        if conn is None:
            self._raw_received(bytes(buf[:nbytes]))
            return
        if nbytes == len(buf):
            _shared_rbuf.grow()  # after this call: the read still uses the current buffer
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
        try:
            events = receive(*args)
        except Libp2pError as exc:
            self._fail(exc)
            return
        if events:
            self._dispatch(events)
            if self._unread > self._unread_reserved and self._receive_memory is not None:
                self._reserve_unread(self._receive_memory)
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
        if self._conn is None:
            self._raw_eof = True
            self._wake_raw()
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
        self._raw_eof = True
        self._wake_raw()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        streams, self._streams = self._streams, {}
        for st in streams.values():
            st.on_reset(f"{CONNECTION_LOST}: {reason}")
        self._unread = 0
        rm = self._receive_memory
        if rm is not None:
            if self._unread_reserved:
                rm.release_unread(self._unread_reserved)
            if self._window_grant:
                rm.release_window(self._window_grant)
        self._unread_reserved = self._window_grant = 0
        for waiters in (self._drain_waiters, self._open_waiters):
            for w in waiters:
                if not w.done():
                    w.set_exception(ConnectionClosedError(str(reason)))
            waiters.clear()
        for pw in self._ping_waiters:
            if not pw.done():
                pw.set_exception(ConnectionClosedError(str(reason)))
        self._ping_waiters.clear()
        mw = self._muxer_waiter
        if mw is not None and not mw.done():
            mw.set_exception(reason)
            mw.exception()  # retrieved here: the upgrade may not be waiting (yet)
        self._check_settled()
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
        waiters, self._drain_waiters = self._drain_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

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
        return self._receive_memory

    @receive_memory.setter
    def receive_memory(self, rm: ReceiveMemory | None) -> None:
        """From now on window growth and unread bytes are reserved from ``rm``."""
        self._receive_memory = rm
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
        return self._unread

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
        return self._pnet

    @property
    def raw_buffered(self) -> int:
        """Handshake bytes received and not read yet (the upgrader's write corking)."""
        return len(self._raw)

    async def wait_connected(self) -> None:
        await self._connected

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def __repr__(self) -> str:
        return f"<MuxedConnection {self.direction} peer={self.remote_peer} addr={self.remote_addr}>"

    # ---- raw phase ---------------------------------------------------------------------

    def raw_stream(self) -> RawStream:
        return RawStream(self)

    def _raw_received(self, data: bytes) -> None:
        if self._pnet is not None:
            try:
                data = self._pnet.decrypt(data)
            except Libp2pError as exc:
                self._fail(exc)
                return
        self._raw += data
        if len(self._raw) > RAW_BUFFER_CAP and not self._raw_paused:
            self._raw_paused = True
            self._apply_reading()
        self._wake_raw()

    def _raw_write(self, data: bytes) -> None:
        tr = self.transport
        if tr is None or tr.is_closing():
            raise ConnectionClosedError("connection closed during the upgrade")
        if self._pnet is not None:
            data = self._pnet.encrypt(data)
        tr.write(data)
        if self.byte_counter is not None:
            self.byte_counter.outbound += len(data)

    def _wake_raw(self) -> None:
        w = self._raw_waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def _wait_raw(self) -> None:
        if self._raw_eof:
            return
        w = self.loop.create_future()
        self._raw_waiter = w
        try:
            await w
        finally:
            self._raw_waiter = None

    async def _raw_read(self, n: int) -> bytes:
        while not self._raw:
            if self._raw_eof:
                return b""
            await self._wait_raw()
        if n < 0 or n >= len(self._raw):
            out = bytes(self._raw)
            self._raw.clear()
        else:
            out = bytes(self._raw[:n])
            del self._raw[:n]
        self._raw_taken()
        return out

    async def _raw_readexactly(self, n: int) -> bytes:
        while len(self._raw) < n:
            if self._raw_eof:
                partial = bytes(self._raw)
                self._raw.clear()
                raise asyncio.IncompleteReadError(partial, n)
            await self._wait_raw()
        out = bytes(self._raw[:n])
        del self._raw[:n]
        self._raw_taken()
        return out

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

    def protect(self, protector: Any) -> None:
        """Private network: from now on every byte passes through ``protector`` (a
        ``rapidp2p.pnet.RawProtector``); sends our nonce. Call before any other write or
        read; bytes that arrived before the call (the upgrade starts in a task) are decrypted
        now."""
        self._pnet = protector
        tr = self.transport
        if tr is None or tr.is_closing():
            raise ConnectionClosedError("connection closed before the upgrade")
        tr.write(protector.local_nonce)
        if self._raw:
            early = bytes(self._raw)
            self._raw.clear()
            self._raw += protector.decrypt(early)

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
        try:
            leftover = bytes(self._raw)  # unmasked already (by the Python protector)
            self._raw.clear()
            events = conn.receive_data(leftover, self.loop.time()) if leftover else []
            if self._pnet is not None and not self._pnet.core.moved:
                conn.set_protector(self._pnet.core)  # every later byte is unmasked in Rust
        except Libp2pError as exc:
            self._fail(exc)
            return
        if events:
            self._dispatch(events)
        self._raw_taken()
        self._schedule_flush()

    def _muxer_known(self) -> None:
        """mplex cannot slow a sender down: pause reading before any stream could reach
        mplex's per-stream cap (the cap then only bounds a misbehaving driver)."""
        cap = self._conn.mplex_max_buffered if self._conn is not None else None
        if cap is not None:
            self._max_unread = min(self._max_unread, max(1, cap // 2))

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
        ev_data = EV_DATA
        for kind, sid, value in events:
            if kind == ev_data:
                st = streams.get(sid)
                if st is None:
                    # Data for a stream we dropped: credit it back so nothing stalls.
                    self._conn.ack(sid, len(value))
                    continue
                st.on_data(value)
                self._unread += len(value)
                if self._unread > self._max_unread and not self._reading_paused:
                    self._reading_paused = True
                    self._apply_reading()
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
                if self._settle_waiters:
                    self._check_settled()
            elif kind == EV_RESET:
                st = self._forget(sid)
                if st is not None:
                    st.on_reset()
                self._wake_openers()
                if self._settle_waiters:
                    self._check_settled()
            elif kind == EV_STREAM_ACKED:
                self._wake_openers()
            elif kind == EV_PING_RTT:
                waiters, self._ping_waiters = self._ping_waiters, []
                for pw in waiters:
                    if not pw.done():
                        pw.set_result(float(value))
            elif kind == EV_GO_AWAY:
                self.go_away_code = int(value)
                self._wake_openers()
            elif kind == EV_MUXER:
                self._muxer_known()
                mw = self._muxer_waiter
                if mw is not None and not mw.done():
                    mw.set_result(str(value))

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
            if self._window_grant:
                self._window_trim_due = True
        return st

    def _wake_openers(self) -> None:
        waiters, self._open_waiters = self._open_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

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
                _tune_allocator_once()
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
        if self._settle_waiters:
            self._check_settled()
        if self._conn is None or self.transport is None:
            return
        with contextlib.suppress(Libp2pError):
            self._conn.reset_stream(st.stream_id)
        self._wake_openers()
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
            if held and self._receive_memory is not None:
                self._grow_window(conn, st.stream_id, held)
        self.stream_discarded(n)
        self._schedule_flush()

    def stream_discarded(self, n: int) -> None:
        unread = self._unread = self._unread - n
        if self._unread_reserved and (not unread or self._unread_reserved - unread >= UNREAD_STEP):
            self._release_unread(unread)
        if self._reading_paused and unread <= self._max_unread // 2:
            self._reading_paused = False
            self._apply_reading()

    # ---- receive memory (once per socket read at most, never per frame) ------------------

    def _reserve_unread(self, rm: ReceiveMemory) -> None:
        """More bytes wait unread than are reserved: reserve them, or degrade.

        Flow control already bounds what a peer can make us hold (its streams' windows), so
        a refusal never stops the socket (window updates and pings must still be read, or an
        application waiting to write would wait forever); instead the stream holding the most
        is reset, and the next after it until the rest fits, as long as several streams hold
        unread bytes or one alone is over the per-stream limit (streams lost, the others and
        the connection go on).
        """
        while self._unread > self._unread_reserved:
            need = -(-(self._unread - self._unread_reserved) // UNREAD_QUANTUM) * UNREAD_QUANTUM
            refusal = rm.reserve_unread(need)
            if refusal is None:
                self._unread_reserved += need
                return
            holding = [st for st in self._streams.values() if st.unread_bytes]
            if not holding:
                return
            biggest = max(holding, key=lambda st: st.unread_bytes)
            if len(holding) == 1 and biggest.unread_bytes <= rm.stream_memory_limit:
                return
            self.stream_reset(biggest)
            biggest.on_reset(f"stream reset: {refusal}")  # discards its unread bytes

    def _release_unread(self, unread: int) -> None:
        """The application read: give back what is reserved beyond the unread bytes (rounded
        up to a quantum)."""
        keep = min(self._unread_reserved, -(-unread // UNREAD_QUANTUM) * UNREAD_QUANTUM)
        rm = self._receive_memory
        if rm is not None and self._unread_reserved > keep:
            rm.release_unread(self._unread_reserved - keep)
        self._unread_reserved = keep

    def _apply_window_budget(self) -> None:
        """Caps the windows' growth at what is reserved for it: nothing until a window grows
        (growth that happened before accounting started is reserved now, as far as the
        scopes agree; windows are never shrunk)."""
        conn, rm = self._conn, self._receive_memory
        if conn is None or rm is None:
            return
        missing = int(conn.window_growth) - self._window_grant
        if missing > 0:
            self._window_grant += rm.reserve_window(missing)
        conn.set_max_window_growth(self._window_grant)

    def _grow_window(self, conn: Any, sid: int, held: int) -> None:
        """Auto-tuning held back ``held`` bytes of a window's growth: reserve them (the scope
        halves what it refuses) and grant what was reserved at once, in the same epoch;
        refused, the window stays as it is."""
        rm = self._receive_memory
        if rm is None:
            return
        got = rm.reserve_window(held)
        if got:
            self._window_grant += got
        conn.set_max_window_growth(self._window_grant)
        if got:
            conn.grow_window(sid)

    def _trim_window_grant(self, conn: Any) -> None:
        """Streams ended: give back the growth reserved for their windows."""
        self._window_trim_due = False
        rm = self._receive_memory
        excess = self._window_grant - int(conn.window_growth)
        if rm is None or excess <= 0:
            return
        rm.release_window(excess)
        self._window_grant -= excess
        conn.set_max_window_growth(self._window_grant)

    def _raw_taken(self) -> None:
        """The upgrade consumed raw bytes: resume reading once half the cap is free."""
        if self._raw_paused and len(self._raw) <= RAW_BUFFER_CAP // 2:
            self._raw_paused = False
            self._apply_reading()

    def _apply_reading(self) -> None:
        want = self._reading_paused or self._raw_paused
        tr = self.transport
        if tr is None or want == self._transport_paused:
            return
        self._transport_paused = want
        if want:
            tr.pause_reading()
            conn = self._conn
            if self._reading_paused and conn is not None and conn.mplex_max_buffered is not None:
                self._stall_timer = self.loop.call_later(MPLEX_STALL_RESET, self._mplex_stalled)
        else:
            tr.resume_reading()
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None

    def _mplex_stalled(self) -> None:
        """An mplex connection stayed paused on unread bytes: reset the stream holding the
        most of them (its reader is stuck), which resumes the others."""
        self._stall_timer = None
        if not self._reading_paused or self.transport is None:
            return
        holding = [st for st in self._streams.values() if st.unread_bytes]
        if not holding:
            return
        biggest = max(holding, key=lambda st: st.unread_bytes)
        self.stream_reset(biggest)
        biggest.on_reset(
            f"stream reset: its reader left {biggest.unread_bytes} bytes unread for "
            f"{MPLEX_STALL_RESET} s on an mplex connection (no flow control)"
        )
        if self._reading_paused and self._stall_timer is None:  # still blocked: next one
            self._stall_timer = self.loop.call_later(MPLEX_STALL_RESET, self._mplex_stalled)

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
                w: asyncio.Future[None] = self.loop.create_future()
                self._open_waiters.append(w)
                await w
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
        return self.is_closed or all(st.settled for st in self._streams.values())

    def shutdown_streams(self) -> None:
        """First step of a graceful close: FIN on every stream after its queued data, so a
        remote still reading what we sent gets all of it. A stream holding data the
        application never read is reset instead: a FIN there would tell the remote (waiting
        in ``close(wait=True)``) that we consumed what we did not."""
        for st in list(self._streams.values()):
            if st.has_unread:
                st.reset()
            else:
                st.close_write_nowait()

    async def wait_settled(self) -> None:
        """Waits until :attr:`settled` (the remote consumed what we wrote, as far as the
        remote's FIN or reset can tell, or the connection ended). Callers bound it."""
        while not self.settled:
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._settle_waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._settle_waiters.remove(waiter)

    def _check_settled(self) -> None:
        if self._settle_waiters and self.settled:
            waiters, self._settle_waiters = self._settle_waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(None)

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
        if tr is None:
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
        if self._window_trim_due:
            self._trim_window_grant(conn)
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
