"""The asyncio driver of QUIC: one :class:`QuicEndpoint` per UDP socket, one
:class:`QuicConnection` per QUIC connection (shaped like aioquic's ``QuicConnectionProtocol``).

asyncio owns readiness only: ``add_reader`` on the socket's fd, and on each readable event ONE
call into Rust (``_core.quic.Endpoint.read_socket``) receives every waiting datagram in batches
(recvmmsg with UDP GRO), feeds them to quinn-proto, sends the answers (sendmsg with UDP GSO)
and returns every event at once; never a Python callback per datagram. Writes from streams
are coalesced into one ``flush`` per loop iteration; timers are one ``call_at`` per endpoint.

A QUIC connection is secured (libp2p TLS inside QUIC) and multiplexed (QUIC streams are
libp2p streams) from the start: :class:`QuicConnection` implements both the host's
``Connection`` and the stream's ``StreamCarrier`` contracts, with no upgrade phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from rapidp2p import _core
from rapidp2p._aio.stream import CONNECTION_LOST, Stream
from rapidp2p._aio.streams import shutdown_all, wait_until, wake_all
from rapidp2p.exceptions import (
    CertificateError,
    ConnectionClosedError,
    DialError,
    DialRefused,
    DialTimeout,
    HandshakeError,
    Libp2pError,
    PeerIdMismatch,
)

if TYPE_CHECKING:
    from rapidp2p.crypto import PublicKey
    from rapidp2p.metrics._counters import ByteCounter
    from rapidp2p.peer import Multiaddr, PeerId
    from rapidp2p.security.tls import TlsIdentity
    from rapidp2p.transport.contracts import Connection, Direction, ReceiveMemory

__all__ = ["QuicConnection", "QuicEndpoint", "QuicSettings", "quic_multiaddr"]

_q = _core.quic
EV_CONNECTED = _q.EV_CONNECTED
EV_CLOSED = _q.EV_CLOSED
EV_STREAM_OPENED = _q.EV_STREAM_OPENED
EV_DATA = _q.EV_DATA
EV_FIN = _q.EV_FIN
EV_RESET = _q.EV_RESET
EV_WRITABLE = _q.EV_WRITABLE
EV_STREAMS_AVAILABLE = _q.EV_STREAMS_AVAILABLE
EV_PING_RTT = _q.EV_PING_RTT
EV_FINISHED = _q.EV_FINISHED
EV_SESSION = _q.EV_SESSION

#: Unread bytes are reserved from the host's resource scope in steps of this size.
UNREAD_STEP = 256 * 1024
#: A graceful close waits this long at most for the peer to acknowledge what we wrote.
CLOSE_ACK_TIMEOUT = 5.0
#: A stream write this large is flushed at once rather than at the end of the iteration.
FLUSH_AT = 256 * 1024


class QuicSettings:
    """Limits of a QUIC endpoint (handed to the Rust endpoint as they are)."""

    __slots__ = (
        "connection_window",
        "handshake_timeout",
        "idle_timeout",
        "initial_connection_window",
        "keep_alive",
        "max_handshakes",
        "max_streams",
        "retry_above",
        "stream_window",
    )

    def __init__(
        self,
        *,
        handshake_timeout: float = 10.0,
        idle_timeout: float = 30.0,
        keep_alive: float | None = 10.0,
        max_streams: int = 256,
        stream_window: int = 8 << 20,
        connection_window: int = 16 << 20,
        initial_connection_window: int = 1 << 20,
        max_handshakes: int = 256,
        retry_above: int = 64,
    ) -> None:
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.keep_alive = keep_alive
        self.max_streams = max_streams
        self.stream_window = stream_window
        #: The most a connection's receive window grows to (the resource manager's grant
        #: raises it from ``initial_connection_window``, which no scope pays for).
        self.connection_window = connection_window
        self.initial_connection_window = initial_connection_window
        self.max_handshakes = max_handshakes
        self.retry_above = retry_above

    def kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def quic_multiaddr(host: str, port: int) -> Multiaddr:
    """``("127.0.0.1", 4001)`` -> ``/ip4/127.0.0.1/udp/4001/quic-v1``."""
    from rapidp2p.peer import Multiaddr

    proto = "ip6" if ":" in host else "ip4"
    return Multiaddr(f"/{proto}/{host}/udp/{port}/quic-v1")


def _dial_error(exc: BaseException, where: str) -> BaseException:
    """A dial's handshake failure as the host expects it: identity refusals stay typed
    (PeerIdMismatch, CertificateError); a refusal or silence is a TransportError."""
    if isinstance(exc, (PeerIdMismatch, CertificateError)):
        return exc
    if isinstance(exc, DialRefused):
        return DialRefused(f"{where}: {exc}")
    text = str(exc)
    if isinstance(exc, HandshakeError) and ("did not finish" in text or "timed out" in text):
        return DialTimeout(f"{where}: {exc}")
    if isinstance(exc, (HandshakeError, ConnectionClosedError)):
        return DialError(f"{where}: {exc}")
    return exc


def _reader_sees_socket_errors(loop: asyncio.AbstractEventLoop) -> bool:
    """True when ``add_reader`` callbacks run on a socket error (EPOLLERR), as asyncio's
    selector loops do: the UDP socket may then queue ICMP errors (a dial to a closed port
    fails at once). libuv (uvloop) stops polling a socket on EPOLLERR instead, so there the
    errors stay off and such a dial ends at the handshake timeout."""
    return not type(loop).__module__.startswith("uvloop")


class QuicEndpoint:
    """One bound UDP socket and its Rust endpoint; dials from it, and accepts when listening.

    ``on_connection`` gets each inbound connection as its handshake completes; ``setup``
    prepares every new connection object before any of its events (the host sets its stream
    handler there, since the peer may open streams in the same datagram batch).
    """

    def __init__(
        self,
        sock: socket.socket,
        identity: TlsIdentity,
        *,
        listen: bool,
        settings: QuicSettings | None = None,
        setup: Callable[[QuicConnection], None] | None = None,
        on_connection: Callable[[QuicConnection], None] | None = None,
        webtransport: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.sock = sock
        self.identity = identity
        self.settings = settings or QuicSettings()
        self.setup = setup
        self.on_connection = on_connection
        self.listening = listen
        host, port = sock.getsockname()[:2]
        self.local_host = str(host)
        self.local_port = int(port)
        self.local_addr = quic_multiaddr(self.local_host, self.local_port)
        self._ep = _q.Endpoint(
            identity.identity,
            listen,
            self.loop.time(),
            sock.fileno(),
            icmp_errors=_reader_sees_socket_errors(self.loop),
            webtransport=webtransport,
            **self.settings.kwargs(),
        )
        self._conns: dict[int, QuicConnection] = {}
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._writer = False
        self._write_waiters: list[asyncio.Future[None]] = []
        self._closed = False
        #: Called once the socket is closed (the transport forgets the endpoint).
        self.on_closed: Callable[[QuicEndpoint], None] | None = None
        self.loop.add_reader(sock.fileno(), self._on_readable)

    # ---- readiness -------------------------------------------------------------------

    @property
    def write_paused(self) -> bool:
        return self._writer

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    @property
    def quic_connections(self) -> int:
        """Connections the Rust endpoint holds: handshaking and draining ones included."""
        return self._ep.connection_count

    @property
    def stats(self) -> tuple[int, int, int, int, int]:
        """``(datagrams_in, datagrams_out, send_errors, gso_segments, gro_segments)``."""
        return self._ep.stats

    def _on_readable(self) -> None:
        if self._closed:
            return
        events, blocked = self._ep.read_socket(self.loop.time())
        self._dispatch(events)
        self._after(blocked)

    def _on_writable(self) -> None:
        self._flush()

    def schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._closed:
            return
        events, blocked = self._ep.flush(self.loop.time())
        self._dispatch(events)
        self._after(blocked)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed:
            return
        self._dispatch(self._ep.handle_timer(self.loop.time()))
        self._flush()

    def _after(self, blocked: bool) -> None:
        """After each Rust call: writability interest, the timer, and the socket's end."""
        fd = self.sock.fileno()
        if blocked and not self._writer:
            self._writer = True
            self.loop.add_writer(fd, self._on_writable)
        elif not blocked and self._writer:
            self._writer = False
            self.loop.remove_writer(fd)
            waiters, self._write_waiters = self._write_waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(None)
        at = self._ep.next_timer()
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = at
            if at is not None:
                self._timer = self.loop.call_at(at, self._on_timer)
        if not self.listening and self._ep.connection_count == 0 and not self._conns:
            self._close_socket()

    async def wait_writable(self) -> None:
        if not self._writer:
            return
        fut: asyncio.Future[None] = self.loop.create_future()
        self._write_waiters.append(fut)
        await fut

    # ---- events ------------------------------------------------------------------------

    def _dispatch(self, events: list[tuple[int, int, int, object]]) -> None:
        conns = self._conns
        for kind, cid, sid, value in events:
            conn = conns.get(cid)
            if conn is None:
                if kind == EV_CONNECTED:
                    conn = self._accepted(cid, value)
                    if conn is None:
                        continue
                    self._connected(conn, value)
                elif kind == EV_SESSION:
                    self._session(cid, value)
                continue
            if kind == EV_DATA:
                conn._on_data(sid, cast("bytes", value))
            elif kind == EV_WRITABLE:
                st = conn._streams.get(sid)
                if st is not None:
                    st.on_window()
            elif kind == EV_STREAM_OPENED:
                conn._on_inbound_stream(sid)
            elif kind == EV_FIN:
                conn._on_fin(sid)
            elif kind == EV_FINISHED:
                conn._on_finished(sid)
            elif kind == EV_RESET:
                conn._on_reset(sid)
            elif kind == EV_STREAMS_AVAILABLE:
                conn._wake_openers()
            elif kind == EV_PING_RTT:
                conn._on_ping(float(cast("float", value)))
            elif kind == EV_CONNECTED:
                self._connected(conn, value)
            elif kind == EV_CLOSED:
                conns.pop(cid, None)
                conn._on_closed(cast("BaseException", value))
            elif kind == EV_SESSION:
                self._session(cid, value)

    def _session(self, cid: int, value: object) -> None:
        """A WebTransport session was accepted (only a WebTransport endpoint has them; see
        ``_aio.webtransport``)."""
        self._ep.close(cid, self.loop.time(), 0, "not a WebTransport endpoint")
        self.schedule_flush()

    def _accepted(self, cid: int, value: object) -> QuicConnection | None:
        if not self.listening or self.on_connection is None:
            self._ep.close(cid, self.loop.time(), 0, "not listening")
            self.schedule_flush()
            return None
        conn = QuicConnection(self, cid, "inbound")
        self._conns[cid] = conn
        if self.setup is not None:
            self.setup(conn)
        return conn

    def _connected(self, conn: QuicConnection, value: object) -> None:
        from rapidp2p.crypto import public_key_from_protobuf
        from rapidp2p.peer import PeerId

        peer_bytes, key_pb, host, port, _inbound = cast(
            "tuple[bytes, bytes, str, int, bool]", value
        )
        try:
            conn.remote_key = public_key_from_protobuf(bytes(key_pb))
        except Libp2pError as exc:  # Rust verified it; Python may support fewer key forms
            conn.abort(HandshakeError(f"identity key in the certificate: {exc}"))
            return
        conn.remote_peer = PeerId.from_bytes(bytes(peer_bytes))
        conn.remote_addr = quic_multiaddr(host, port)
        conn.connected_at = self.loop.time()
        if conn.direction == "inbound":
            handler = self.on_connection
            if handler is not None:
                handler(conn)
        else:
            conn._dial_done(None)

    # ---- dialling and closing -----------------------------------------------------------

    async def dial(
        self,
        host: str,
        port: int,
        peer_id: PeerId | None,
        setup: Callable[[QuicConnection], None] | None = None,
    ) -> QuicConnection:
        """Dials ``host:port``; only ``peer_id`` (when given) is accepted; ``setup`` (else the
        endpoint's) prepares the connection before its first event."""
        if self._closed:
            raise DialError("QUIC endpoint closed")
        expected = None if peer_id is None else peer_id.to_bytes()
        try:
            cid = self._ep.connect(host, port, expected, self.loop.time())
        except ValueError as exc:
            raise DialError(f"{host}:{port}: {exc}") from None
        conn = QuicConnection(self, cid, "outbound")
        conn._dialing = self.loop.create_future()
        self._conns[cid] = conn
        setup = setup or self.setup
        if setup is not None:
            setup(conn)
        self.schedule_flush()
        where = f"/udp/{port}/quic-v1 at {host}"
        try:
            await conn._dialing
        except Libp2pError as exc:
            raise _dial_error(exc, where) from None
        except BaseException:
            conn.abort()
            raise
        return conn

    def stop_listening(self) -> None:
        """New dials to this socket are refused; its connections go on (the socket closes
        when the last one ends)."""
        if self.listening:
            self.listening = False
            self._ep.stop_listening()
            self._after(False)

    def close(self) -> None:
        """Closes every connection at once and the socket after the close frames went out."""
        if self._closed:
            return
        self.listening = False
        self._ep.stop_listening()
        for conn in list(self._conns.values()):
            conn.abort(ConnectionClosedError("QUIC endpoint closed"))
        with contextlib.suppress(OSError):
            self._flush()
        self._close_socket()

    def _close_socket(self) -> None:
        if self._closed:
            return
        self._closed = True
        fd = self.sock.fileno()
        if fd >= 0:
            self.loop.remove_reader(fd)
            if self._writer:
                self.loop.remove_writer(fd)
        self._writer = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.sock.close()
        for w in self._write_waiters:
            if not w.done():
                w.set_exception(ConnectionClosedError("QUIC endpoint closed"))
        self._write_waiters.clear()
        cb = self.on_closed
        if cb is not None:
            cb(self)


class QuicConnection:
    """One QUIC connection: the host's ``Connection`` and the streams' ``StreamCarrier``."""

    def __init__(self, endpoint: QuicEndpoint, cid: int, direction: Direction) -> None:
        self.loop = endpoint.loop
        self._endpoint = endpoint
        self._ep = endpoint._ep
        self._cid = cid
        self.direction: Direction = direction
        self.remote_peer: PeerId = cast("PeerId", None)
        self.local_peer: PeerId = cast("PeerId", None)
        self.remote_key: PublicKey | None = None
        self.remote_addr: Multiaddr | None = None
        self.local_addr: Multiaddr | None = endpoint.local_addr
        self.security: str | None = "/tls/1.0.0"
        self.muxer: str | None = "quic"
        #: A direct QUIC connection is never limited (only relayed connections are).
        self.limited = False
        self.close_reason: BaseException | None = None
        self.go_away_code: int | None = None
        self.opened_at = self.loop.time()
        self.connected_at: float | None = None
        self.byte_counter: ByteCounter | None = None
        self.default_write_timeout: float | None = None
        self.on_stream: Callable[[Stream], None] | None = None
        self.on_close: list[Callable[[Connection], None]] = []
        self.on_stream_end: Callable[[int], None] | None = None
        self.receive_memory: ReceiveMemory | None = None
        self._streams: dict[int, Stream] = {}
        #: Streams whose FIN went out and whose data the peer has not acknowledged yet.
        self._unacked: set[int] = set()
        self._closed: asyncio.Future[None] = self.loop.create_future()
        self._dialing: asyncio.Future[None] | None = None
        self._open_waiters: list[asyncio.Future[None]] = []
        self._ping_waiters: list[asyncio.Future[float]] = []
        self._settle_waiters: list[asyncio.Future[None]] = []
        self._ack_waiters: list[asyncio.Future[None]] = []
        self._unread = 0
        self._unread_reserved = 0

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<QuicConnection {self.direction} {self.remote_peer} {self.remote_addr}>"

    # ---- state -------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    @property
    def write_paused(self) -> bool:
        """True while the shared UDP socket refuses datagrams (set by the endpoint)."""
        return self._endpoint.write_paused

    @write_paused.setter
    def write_paused(self, value: bool) -> None:
        """The endpoint owns this state: nothing to set per connection."""

    @property
    def streams(self) -> list[Stream]:
        return list(self._streams.values())

    @property
    def num_streams(self) -> int:
        return len(self._streams)

    @property
    def rtt(self) -> float | None:
        return None if self.is_closed else self._ep.rtt(self._cid)

    @property
    def settled(self) -> bool:
        return self.is_closed or all(st.settled for st in self._streams.values())

    def set_receive_budget(self, total_bytes: int) -> None:
        """Sets the QUIC connection's receive window (the resource manager's memory grant
        plus the initial window), at most the endpoint's ``connection_window``."""
        if not self.is_closed:
            self._ep.set_receive_window(self._cid, max(0, total_bytes))
            self._endpoint.schedule_flush()  # MAX_DATA when the window grew

    @property
    def receive_window_total(self) -> int:
        """The connection's receive window (bounds what all its streams buffer together)."""
        return 0 if self.is_closed else int(self._ep.receive_window(self._cid))

    @property
    def unread_bytes(self) -> int:
        return self._unread

    @property
    def receive_budget_hit(self) -> bool:
        """The peer sent a whole window since the budget was set, and the window is below
        the endpoint's maximum: a larger grant would let it send faster."""
        return not self.is_closed and bool(self._ep.window_capped(self._cid))

    def limit_inbound_streams(self, n: int) -> None:
        """Caps the streams the peer may have open at once (QUIC's MAX_STREAMS) at ``n``
        and the endpoint's ``max_streams``: beyond the resource scopes' stream limits the
        peer waits for a slot instead of opening streams that would be reset."""
        if not self.is_closed:
            self._ep.set_max_streams(self._cid, max(0, min(n, self._endpoint.settings.max_streams)))
            self._endpoint.schedule_flush()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    # ---- events from the endpoint ---------------------------------------------------------

    def _dial_done(self, exc: BaseException | None) -> None:
        fut = self._dialing
        if fut is None or fut.done():
            return
        if exc is None:
            fut.set_result(None)
        else:
            fut.set_exception(exc)
            fut.exception()  # retrieved: the dialer may have given up already

    def _on_inbound_stream(self, sid: int) -> None:
        st = Stream(self, sid, initiator=False)
        self._streams[sid] = st
        handler = self.on_stream
        if handler is None:
            self.stream_reset(st)
            st.on_reset("no stream handler")
            return
        handler(st)

    def _on_data(self, sid: int, data: bytes) -> None:
        st = self._streams.get(sid)
        if st is None:
            self._ep.ack(self._cid, sid, len(data))
            return
        st.on_data(data)
        self._unread += len(data)
        if self.byte_counter is not None:  # stream bytes (QUIC framing is not counted)
            self.byte_counter.inbound += len(data)
        rm = self.receive_memory
        if rm is not None and self._unread > self._unread_reserved:
            self._reserve_unread(rm)

    def _on_fin(self, sid: int) -> None:
        st = self._streams.get(sid)
        if st is not None:
            st.on_eof()
            if st.write_done:
                self._forget(sid)
        self._check_settled()

    def _on_finished(self, sid: int) -> None:
        self._unacked.discard(sid)
        if not self._unacked:
            wake_all(self._ack_waiters)

    def _on_reset(self, sid: int) -> None:
        self._unacked.discard(sid)
        st = self._forget(sid)
        if st is not None:
            st.on_reset()
        self._wake_openers()
        self._check_settled()
        if not self._unacked:
            wake_all(self._ack_waiters)

    def _on_ping(self, rtt: float) -> None:
        waiters, self._ping_waiters = self._ping_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(rtt)

    def _on_closed(self, reason: BaseException) -> None:
        if self._closed.done():
            return
        if self.close_reason is None:
            self.close_reason = reason
        reason = self.close_reason
        self._endpoint._conns.pop(self._cid, None)
        self._dial_done(reason)
        streams, self._streams = self._streams, {}
        for st in streams.values():
            # A stream the peer finished keeps what it received: every byte up to its FIN
            # arrived, so the application reads it all, then EOF (nothing delivered is lost).
            if not st.remote_closed:
                st.on_reset(f"{CONNECTION_LOST}: {reason}")
        self._unread = 0
        if self._unread_reserved and self.receive_memory is not None:
            self.receive_memory.release_unread(self._unread_reserved)
        self._unread_reserved = 0
        err = ConnectionClosedError(str(reason))
        for waiters in (self._open_waiters, self._ping_waiters):
            for w in waiters:
                if not w.done():
                    w.set_exception(err)
            waiters.clear()
        wake_all(self._ack_waiters)
        self._check_settled()
        self._closed.set_result(None)
        callbacks, self.on_close = self.on_close, []
        for cb in callbacks:
            try:
                cb(self)
            except Exception:
                self.loop.call_exception_handler(
                    {"message": "on_close callback failed", "connection": self}
                )

    def _wake_openers(self) -> None:
        wake_all(self._open_waiters)

    def _forget(self, sid: int) -> Stream | None:
        st = self._streams.pop(sid, None)
        if st is not None and self.on_stream_end is not None:
            self.on_stream_end(sid)
        return st

    def _check_settled(self) -> None:
        if self._settle_waiters and self.settled:
            wake_all(self._settle_waiters)

    # ---- receive memory ---------------------------------------------------------------------

    def _reserve_unread(self, rm: ReceiveMemory) -> None:
        """Reserve unread bytes in steps; refused, reset the stream holding the most when it
        alone is over the per-stream limit or several hold bytes (QUIC flow control bounds
        the rest)."""
        need = -(-(self._unread - self._unread_reserved) // UNREAD_STEP) * UNREAD_STEP
        refusal = rm.reserve_unread(need)
        if refusal is None:
            self._unread_reserved += need
            return
        holding = [st for st in self._streams.values() if st.unread_bytes]
        if not holding:
            return
        biggest = max(holding, key=lambda st: st.unread_bytes)
        if len(holding) > 1 or biggest.unread_bytes > rm.stream_memory_limit:
            self.stream_reset(biggest)
            biggest.on_reset(f"stream reset: {refusal}")

    # ---- StreamCarrier ----------------------------------------------------------------------

    def _live(self) -> None:
        if self.is_closed:
            raise ConnectionClosedError(str(self.close_reason or "connection closed"))

    def stream_send(
        self, stream: Stream, data: bytes, fin: bool, start: int = 0, end: int = -1
    ) -> int:
        self._live()
        sid = stream.stream_id
        stop = len(data) if end < 0 else end
        taken = self._ep.send(self._cid, sid, data, start, stop) if stop > start else 0
        if taken and self.byte_counter is not None:
            self.byte_counter.outbound += taken
        if fin and taken == stop - start:
            self._finish(stream)
        if taken >= FLUSH_AT:
            self._endpoint._flush()
        elif taken:
            self._endpoint.schedule_flush()
        return taken

    def stream_send_window(self, stream: Stream) -> int:
        if self.is_closed:
            raise ConnectionClosedError("connection closed")
        window: int = self._ep.send_window(self._cid, stream.stream_id)
        return window

    def _finish(self, stream: Stream) -> None:
        with contextlib.suppress(Libp2pError):
            if self._ep.finish(self._cid, stream.stream_id):
                self._unacked.add(stream.stream_id)
        self._endpoint.schedule_flush()

    def stream_close(self, stream: Stream) -> None:
        if self.is_closed:
            return
        self._finish(stream)
        if stream.remote_closed:
            self._forget(stream.stream_id)

    def stream_reset(self, stream: Stream) -> None:
        sid = stream.stream_id
        self._forget(sid)
        self._unacked.discard(sid)
        self._check_settled()
        if self.is_closed:
            return
        self._ep.reset(self._cid, sid)
        self._wake_openers()
        self._endpoint.schedule_flush()

    def stream_consumed(self, stream: Stream, n: int) -> None:
        if self.is_closed:
            return
        self._ep.ack(self._cid, stream.stream_id, n)
        self.stream_discarded(n)
        self._endpoint.schedule_flush()

    def stream_discarded(self, n: int) -> None:
        unread = self._unread = max(0, self._unread - n)
        rm = self.receive_memory
        if rm is not None and self._unread_reserved - unread >= 2 * UNREAD_STEP:
            keep = min(self._unread_reserved, -(-unread // UNREAD_STEP) * UNREAD_STEP)
            rm.release_unread(self._unread_reserved - keep)
            self._unread_reserved = keep

    async def wait_writable(self) -> None:
        await self._endpoint.wait_writable()

    # ---- Connection ---------------------------------------------------------------------------

    async def open_stream(self) -> Stream:
        while True:
            self._live()
            try:
                sid = self._ep.open_stream(self._cid)
            except ConnectionClosedError:
                self._live()
                raise
            if sid is not None:
                st = Stream(self, sid, initiator=True)
                self._streams[sid] = st
                return st
            w: asyncio.Future[None] = self.loop.create_future()
            self._open_waiters.append(w)
            await w

    async def ping(self) -> float:
        self._live()
        fut: asyncio.Future[float] = self.loop.create_future()
        self._ping_waiters.append(fut)
        self._ep.ping(self._cid, self.loop.time())
        self._endpoint.schedule_flush()
        return await fut

    async def ping_after_flush(self) -> float:
        """QUIC acknowledges per packet: a PING answered after our writes went out says the
        peer's QUIC stack holds them (retransmissions included)."""
        self._endpoint._flush()
        return await self.ping()

    def shutdown_streams(self) -> None:
        shutdown_all(self._streams.values())

    async def wait_settled(self) -> None:
        await wait_until(self.loop, self._settle_waiters, lambda: self.settled)

    def go_away(self, code: int = 0) -> None:
        if not self.is_closed:
            self._ep.set_max_streams(self._cid, 0)
            self._endpoint.schedule_flush()

    async def close(self) -> None:
        """Graceful: FIN on our streams, waits (bounded) until the peer acknowledged what we
        wrote (CONNECTION_CLOSE would discard it), then closes and waits until gone."""
        if self.is_closed:
            return
        for st in list(self._streams.values()):
            if not st.is_reset:
                st.close_write_nowait()
        if self._unacked:
            fut: asyncio.Future[None] = self.loop.create_future()
            self._ack_waiters.append(fut)
            self._endpoint.schedule_flush()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(fut, CLOSE_ACK_TIMEOUT)
        if self.close_reason is None:
            self.close_reason = ConnectionClosedError("connection closed locally")
        self._close_now()
        await self.wait_closed()

    def abort(self, reason: BaseException | None = None) -> None:
        if reason is not None and self.close_reason is None:
            self.close_reason = reason
        if self.is_closed:
            return
        if self.close_reason is None:
            self.close_reason = ConnectionClosedError("connection aborted locally")
        self._close_now()

    def _close_now(self) -> None:
        self._ep.close(self._cid, self.loop.time(), 0, "closed")
        self._on_closed(cast("BaseException", self.close_reason))
        self._endpoint.schedule_flush()
