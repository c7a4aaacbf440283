"""The asyncio driver of WebRTC-direct: one :class:`WebRtcEndpoint` per UDP socket, one
:class:`WebRtcConnection` per authenticated connection (shaped like :mod:`rapidp2p._aio.quic`).

asyncio owns readiness only: ``add_reader`` on the socket's fd, and on each readable event ONE
call into Rust (``_core.webrtc.Endpoint.read_socket``) receives every waiting datagram, feeds
them to the sans-IO endpoint (str0m: ICE-lite, DTLS, SCTP; the Noise handshake on data
channel 0; the stream framing), sends the answers and returns every event at once. Writes are
coalesced into one ``flush`` per loop iteration; timers are one ``call_at`` per endpoint.

Rust runs Noise with our static key and signed payload; the remote's payload comes back in
the connected event and is verified here (identity keys live in Python), as for TCP.

The same endpoint carries ``/webrtc`` connections (:mod:`rapidp2p.transport.webrtc`): set up
by an SDP offer and answer that :meth:`WebRtcEndpoint.offer` / :meth:`WebRtcEndpoint.answer`
produce and consume, with no Noise (the signalling ran on an authenticated connection, whose
peer is the new connection's), then the same streams as WebRTC-direct.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from rapidp2p import _core
from rapidp2p._aio.stream import CONNECTION_LOST, Stream
from rapidp2p._aio.streams import shutdown_all, wait_until, wake_all
from rapidp2p.exceptions import ConnectionClosedError, HandshakeError, Libp2pError

if TYPE_CHECKING:
    from rapidp2p.crypto import PublicKey
    from rapidp2p.metrics._counters import ByteCounter
    from rapidp2p.peer import Multiaddr, PeerId
    from rapidp2p.security.noise import NoiseIdentity
    from rapidp2p.transport.contracts import Connection, Direction, ReceiveMemory

__all__ = ["WebRtcConnection", "WebRtcEndpoint", "WebRtcSettings", "webrtc_direct_multiaddr"]

_w = _core.webrtc
EV_CONNECTED = _w.EV_CONNECTED
EV_CLOSED = _w.EV_CLOSED
EV_STREAM_OPENED = _w.EV_STREAM_OPENED
EV_DATA = _w.EV_DATA
EV_FIN = _w.EV_FIN
EV_RESET = _w.EV_RESET
EV_WRITABLE = _w.EV_WRITABLE
EV_FINISHED = _w.EV_FINISHED

#: A graceful close waits this long at most for the peer to acknowledge our FINs.
CLOSE_ACK_TIMEOUT = 5.0
#: Handshake failures remembered per endpoint (newest last), for diagnostics and tests.
MAX_FAILURES = 32


class WebRtcSettings:
    """Limits of a WebRTC-direct endpoint (handed to the Rust endpoint as they are)."""

    __slots__ = (
        "fin_ack",
        "handshake_timeout",
        "max_connections",
        "max_handshakes",
        "max_streams",
        "send_buffer",
    )

    def __init__(
        self,
        *,
        handshake_timeout: float = 10.0,
        max_handshakes: int = 64,
        max_connections: int = 1024,
        max_streams: int = 512,
        send_buffer: int = 1 << 20,
        fin_ack: bool = True,
    ) -> None:
        self.handshake_timeout = handshake_timeout
        self.max_handshakes = max_handshakes
        self.max_connections = max_connections
        self.max_streams = max_streams
        self.send_buffer = send_buffer
        #: Answer FIN with FIN_ACK (the spec; js-libp2p waits 10 s for it). False for peers
        #: whose framing predates FIN_ACK (rust-libp2p's libp2p-webrtc 0.10.0-alpha fails a
        #: stream that receives one).
        self.fin_ack = fin_ack

    def kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def webrtc_direct_multiaddr(host: str, port: int, certhash: str | None = None) -> Multiaddr:
    """``("127.0.0.1", 4001, "uEi...")`` ->
    ``/ip4/127.0.0.1/udp/4001/webrtc-direct/certhash/uEi...``."""
    from rapidp2p.peer import Multiaddr

    proto = "ip6" if ":" in host else "ip4"
    tail = "" if certhash is None else f"/certhash/{certhash}"
    return Multiaddr(f"/{proto}/{host}/udp/{port}/webrtc-direct{tail}")


class WebRtcEndpoint:
    """One bound UDP socket and its Rust endpoint, accepting WebRTC-direct connections.

    ``on_connection`` gets each inbound connection once Noise authenticated it; ``setup``
    prepares the connection object before any of its stream events.
    """

    def __init__(
        self,
        sock: socket.socket,
        identity: NoiseIdentity,
        certificate: tuple[bytes, bytes],
        *,
        settings: WebRtcSettings | None = None,
        setup: Callable[[WebRtcConnection], None] | None = None,
        on_connection: Callable[[WebRtcConnection], None] | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.sock = sock
        self.identity = identity
        self.settings = settings or WebRtcSettings()
        self.setup = setup
        self.on_connection = on_connection
        self.listening = True
        host, port = sock.getsockname()[:2]
        self.local_host = str(host)
        self.local_port = int(port)
        der, key = certificate
        self._ep = _w.Endpoint(
            self.local_host,
            self.local_port,
            der,
            key,
            identity.static_secret,
            identity.payload([]),
            self.loop.time(),
            sock.fileno(),
            **self.settings.kwargs(),
        )
        self.certhash: str = self._ep.certhash
        self.local_addr = webrtc_direct_multiaddr(self.local_host, self.local_port, self.certhash)
        self._conns: dict[int, WebRtcConnection] = {}
        #: Handshakes that failed (typed errors: HandshakeTimeout, HandshakeError, ...).
        self.failures: deque[BaseException] = deque(maxlen=MAX_FAILURES)
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._writer = False
        self._write_waiters: list[asyncio.Future[None]] = []
        self._closed = False
        #: Our dials still handshaking: connection id -> (expected peer, setup, future).
        self._dialing: dict[
            int,
            tuple[
                PeerId | None,
                Callable[[WebRtcConnection], None] | None,
                asyncio.Future[WebRtcConnection],
            ],
        ] = {}
        #: ``/webrtc`` connections still being set up: id -> (peer, key, setup, future).
        self._signalled: dict[
            int,
            tuple[
                PeerId,
                PublicKey | None,
                Callable[[WebRtcConnection], None] | None,
                asyncio.Future[WebRtcConnection],
            ],
        ] = {}
        self.on_closed: Callable[[WebRtcEndpoint], None] | None = None
        self.loop.add_reader(sock.fileno(), self._on_readable)

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
    def rtc_connections(self) -> int:
        """Connections the Rust endpoint holds, handshaking ones included."""
        n: int = self._ep.connection_count
        return n

    @property
    def stats(self) -> tuple[int, int, int, int]:
        """``(datagrams_in, datagrams_out, send_errors, dropped)``."""
        return self._ep.stats

    # ---- readiness -------------------------------------------------------------------

    def _on_readable(self) -> None:
        if self._closed:
            return
        events, blocked = self._ep.read_socket(self.loop.time())
        self._dispatch(events)
        self._after(blocked)

    def schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._closed:
            return
        events, blocked = self._ep.flush()
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
        fd = self.sock.fileno()
        if blocked and not self._writer:
            self._writer = True
            self.loop.add_writer(fd, self._flush)
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
                if cid in self._dialing:
                    self._dialed(kind, cid, value)
                elif cid in self._signalled:
                    self._signalled_event(kind, cid, value)
                elif kind == EV_CONNECTED:
                    self._accepted(cid, value)
                elif kind == EV_CLOSED:
                    self.failures.append(cast("BaseException", value))
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
            elif kind == EV_CLOSED:
                conns.pop(cid, None)
                conn._on_closed(cast("BaseException", value))

    def _accepted(self, cid: int, value: object) -> None:
        from rapidp2p.security.noise import _verify_payload

        payload, remote_static, host, port = cast("tuple[bytes, bytes, str, int]", value)
        if not self.listening or self.on_connection is None:
            self._ep.close(cid)
            self.schedule_flush()
            return
        try:
            peer, key, _muxers = _verify_payload(bytes(payload), bytes(remote_static))
        except HandshakeError as exc:
            self.failures.append(exc)
            self._ep.close(cid)
            self.schedule_flush()
            return
        conn = WebRtcConnection(self, cid)
        conn.remote_peer = peer
        conn.remote_key = key
        conn.remote_addr = webrtc_direct_multiaddr(host, port)
        conn.connected_at = self.loop.time()
        self._conns[cid] = conn
        if self.setup is not None:
            self.setup(conn)
        self.on_connection(conn)

    # ---- dialling -----------------------------------------------------------------------

    async def dial(
        self,
        host: str,
        port: int,
        fingerprint: bytes,
        peer_id: PeerId | None,
        setup: Callable[[WebRtcConnection], None] | None = None,
    ) -> WebRtcConnection:
        """Dials a WebRTC-direct listener whose DTLS certificate has SHA-256 ``fingerprint``
        (from its ``/certhash``). Typed failures: :class:`HandshakeTimeout` (silence),
        :class:`PeerIdMismatch` (another identity), :class:`HandshakeError` (a certificate
        that is not the certhash's, a Noise failure)."""
        import secrets

        if self._closed:
            raise ConnectionClosedError("WebRTC endpoint closed")
        # Spec: one random string as both ICE ufrag and password, with the protocol prefix.
        ufrag = "libp2p+webrtc+v1/" + secrets.token_hex(16)
        cid = self._ep.dial(host, port, fingerprint, ufrag, self.loop.time())
        fut: asyncio.Future[WebRtcConnection] = self.loop.create_future()
        self._dialing[cid] = (peer_id, setup, fut)
        self._flush()
        try:
            return await fut
        except asyncio.CancelledError:
            if self._dialing.pop(cid, None) is not None:
                self._ep.close(cid)
                self.schedule_flush()
            raise

    def _dialed(self, kind: int, cid: int, value: object) -> None:
        from rapidp2p.exceptions import PeerIdMismatch
        from rapidp2p.security.noise import _verify_payload

        if kind not in (EV_CONNECTED, EV_CLOSED):
            return
        peer_id, setup, fut = self._dialing.pop(cid)
        if kind == EV_CLOSED:
            if not fut.done():
                fut.set_exception(cast("BaseException", value))
            return
        payload, remote_static, host, port = cast("tuple[bytes, bytes, str, int]", value)
        try:
            peer, key, _muxers = _verify_payload(bytes(payload), bytes(remote_static))
            if peer_id is not None and peer != peer_id:
                raise PeerIdMismatch(f"dialed {peer_id}, but the remote proved to be {peer}")
        except HandshakeError as exc:
            self._ep.close(cid)
            self.schedule_flush()
            if not fut.done():
                fut.set_exception(exc)
            return
        if fut.done():  # cancelled meanwhile
            self._ep.close(cid)
            self.schedule_flush()
            return
        conn = WebRtcConnection(self, cid)
        conn.direction = "outbound"
        conn.remote_peer = peer
        conn.remote_key = key
        conn.remote_addr = webrtc_direct_multiaddr(host, port)
        conn.connected_at = self.loop.time()
        self._conns[cid] = conn
        (setup or self.setup or (lambda _c: None))(conn)
        fut.set_result(conn)

    # ---- /webrtc: connections set up by signalling -----------------------------------------

    def offer(
        self,
        peer_id: PeerId,
        remote_key: PublicKey | None = None,
        setup: Callable[[WebRtcConnection], None] | None = None,
    ) -> tuple[int, str, asyncio.Future[WebRtcConnection]]:
        """A new ``/webrtc`` connection to ``peer_id`` as the SDP offerer: ``(id, offer SDP,
        future)``; the future gets the connection once ICE, DTLS and SCTP are up (after
        :meth:`accept_answer` and the remote's candidates), or the typed failure."""
        ufrag, pwd = self._ice_credentials()
        cid, sdp = self._ep.offer(ufrag, pwd, self.loop.time())
        return cid, sdp, self._track(cid, peer_id, remote_key, setup)

    def answer(
        self,
        offer_sdp: str,
        peer_id: PeerId,
        remote_key: PublicKey | None = None,
        setup: Callable[[WebRtcConnection], None] | None = None,
    ) -> tuple[int, str, asyncio.Future[WebRtcConnection]]:
        """Answers the remote's SDP offer: ``(id, answer SDP, future)`` as :meth:`offer`.
        Raises :class:`~rapidp2p.exceptions.SignalingError` for an unusable offer."""
        ufrag, pwd = self._ice_credentials()
        cid, sdp = self._ep.accept_offer(offer_sdp, ufrag, pwd, self.loop.time())
        return cid, sdp, self._track(cid, peer_id, remote_key, setup)

    def accept_answer(self, cid: int, answer_sdp: str) -> None:
        """The remote's answer to :meth:`offer` (SignalingError when unusable)."""
        self._ep.accept_answer(cid, answer_sdp)
        self.schedule_flush()

    def add_remote_candidate(self, cid: int, candidate: str) -> bool:
        """One trickled remote candidate (``candidate:...``); False when skipped (an mDNS
        name, not UDP): the remote's checks reach us from it anyway."""
        added: bool = self._ep.add_remote_candidate(cid, candidate)
        if added:
            self.schedule_flush()
        return added

    def abandon(self, cid: int) -> None:
        """Drops a ``/webrtc`` connection still being set up (signalling failed)."""
        entry = self._signalled.pop(cid, None)
        if entry is not None:
            self._ep.close(cid)
            self.schedule_flush()
            fut = entry[3]
            if not fut.done():
                fut.cancel()

    @staticmethod
    def _ice_credentials() -> tuple[str, str]:
        import secrets

        # RFC 8839: ufrag 4+ and password 22+ ice-chars; hex is a subset.
        return secrets.token_hex(8), secrets.token_hex(16)

    def _track(
        self,
        cid: int,
        peer_id: PeerId,
        remote_key: PublicKey | None,
        setup: Callable[[WebRtcConnection], None] | None,
    ) -> asyncio.Future[WebRtcConnection]:
        fut: asyncio.Future[WebRtcConnection] = self.loop.create_future()
        self._signalled[cid] = (peer_id, remote_key, setup, fut)
        self._flush()
        return fut

    def _signalled_event(self, kind: int, cid: int, value: object) -> None:
        if kind not in (EV_CONNECTED, EV_CLOSED):
            return
        peer_id, remote_key, setup, fut = self._signalled.pop(cid)
        if kind == EV_CLOSED:
            if not fut.done():
                fut.set_exception(cast("BaseException", value))
            return
        if fut.done():  # abandoned meanwhile
            self._ep.close(cid)
            self.schedule_flush()
            return
        _payload, _static, host, port = cast("tuple[bytes, bytes, str, int]", value)
        from rapidp2p.peer import Multiaddr

        conn = WebRtcConnection(self, cid)
        conn.security = None  # DTLS only: the fingerprints came over the signalling channel
        conn.remote_peer = peer_id
        conn.remote_key = remote_key
        proto = "ip6" if ":" in host else "ip4"
        conn.remote_addr = Multiaddr(f"/{proto}/{host}/udp/{port}/webrtc")
        conn.local_addr = Multiaddr(f"/{proto}/{self.local_host}/udp/{self.local_port}/webrtc")
        conn.connected_at = self.loop.time()
        self._conns[cid] = conn
        (setup or self.setup or (lambda _c: None))(conn)
        fut.set_result(conn)

    # ---- closing ------------------------------------------------------------------------

    def stop_listening(self) -> None:
        if self.listening:
            self.listening = False
            self._ep.stop_listening()

    def close(self) -> None:
        """Closes every connection at once and the socket."""
        if self._closed:
            return
        self.stop_listening()
        for conn in list(self._conns.values()):
            conn.abort(ConnectionClosedError("WebRTC endpoint closed"))
        dialing, self._dialing = self._dialing, {}
        for _peer, _setup, fut in dialing.values():
            if not fut.done():
                fut.set_exception(ConnectionClosedError("WebRTC endpoint closed"))
        signalled, self._signalled = self._signalled, {}
        for _peer, _key, _setup, sfut in signalled.values():
            if not sfut.done():
                sfut.set_exception(ConnectionClosedError("WebRTC endpoint closed"))
        with contextlib.suppress(OSError):
            self._flush()
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
                w.set_exception(ConnectionClosedError("WebRTC endpoint closed"))
        self._write_waiters.clear()
        cb = self.on_closed
        if cb is not None:
            cb(self)


class WebRtcConnection:
    """One WebRTC-direct connection: the host's ``Connection`` and the streams' carrier."""

    def __init__(self, endpoint: WebRtcEndpoint, cid: int) -> None:
        self.loop = endpoint.loop
        self._endpoint = endpoint
        self._ep = endpoint._ep
        self._cid = cid
        self.direction: Direction = "inbound"
        self.remote_peer: PeerId = cast("PeerId", None)
        self.local_peer: PeerId = cast("PeerId", None)
        self.remote_key: PublicKey | None = None
        self.remote_addr: Multiaddr | None = None
        self.local_addr: Multiaddr | None = endpoint.local_addr
        self.security: str | None = "/noise"
        self.muxer: str | None = "webrtc"
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
        self._unacked: set[int] = set()
        self._closed: asyncio.Future[None] = self.loop.create_future()
        self._settle_waiters: list[asyncio.Future[None]] = []
        self._ack_waiters: list[asyncio.Future[None]] = []
        self._unread = 0
        self._go_away = False

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<WebRtcConnection {self.direction} {self.remote_peer} {self.remote_addr}>"

    # ---- state -------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    @property
    def write_paused(self) -> bool:
        return self._endpoint.write_paused

    @write_paused.setter
    def write_paused(self, value: bool) -> None:
        """The endpoint owns this state."""

    @property
    def streams(self) -> list[Stream]:
        return list(self._streams.values())

    @property
    def num_streams(self) -> int:
        return len(self._streams)

    @property
    def rtt(self) -> float | None:
        return None

    @property
    def settled(self) -> bool:
        return self.is_closed or all(st.settled for st in self._streams.values())

    def set_receive_budget(self, total_bytes: int) -> None:
        """SCTP's receive window bounds what the peer may send (str0m's)."""

    @property
    def receive_window_total(self) -> int:
        return 0

    @property
    def unread_bytes(self) -> int:
        return self._unread

    @property
    def receive_budget_hit(self) -> bool:
        return False

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    # ---- events --------------------------------------------------------------------------

    def _on_inbound_stream(self, sid: int) -> None:
        st = Stream(self, sid, initiator=False)
        self._streams[sid] = st
        handler = self.on_stream
        if handler is None or self._go_away:
            self.stream_reset(st)
            st.on_reset("no stream handler")
            return
        handler(st)

    def _on_data(self, sid: int, data: bytes) -> None:
        st = self._streams.get(sid)
        if st is None:
            return
        st.on_data(data)
        self._unread += len(data)
        if self.byte_counter is not None:
            self.byte_counter.inbound += len(data)

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
        self._check_settled()
        if not self._unacked:
            wake_all(self._ack_waiters)

    def _on_closed(self, reason: BaseException) -> None:
        if self._closed.done():
            return
        if self.close_reason is None:
            self.close_reason = reason
        reason = self.close_reason
        self._endpoint._conns.pop(self._cid, None)
        streams, self._streams = self._streams, {}
        for st in streams.values():
            if not st.remote_closed:
                st.on_reset(f"{CONNECTION_LOST}: {reason}")
        self._unread = 0
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

    def _forget(self, sid: int) -> Stream | None:
        st = self._streams.pop(sid, None)
        if st is not None and self.on_stream_end is not None:
            self.on_stream_end(sid)
        return st

    def _check_settled(self) -> None:
        if self._settle_waiters and self.settled:
            wake_all(self._settle_waiters)

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
        taken: int = self._ep.send(self._cid, sid, data, start, stop) if stop > start else 0
        if taken and self.byte_counter is not None:
            self.byte_counter.outbound += taken
        if fin and taken == stop - start:
            self._finish(stream)
        if taken:
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
        with contextlib.suppress(Libp2pError):
            self._ep.reset(self._cid, sid)
        self._endpoint.schedule_flush()

    def stream_consumed(self, stream: Stream, n: int) -> None:
        self.stream_discarded(n)

    def stream_discarded(self, n: int) -> None:
        self._unread = max(0, self._unread - n)

    async def wait_writable(self) -> None:
        await self._endpoint.wait_writable()

    # ---- Connection ---------------------------------------------------------------------------

    async def open_stream(self) -> Stream:
        self._live()
        if self._go_away:
            raise ConnectionClosedError("connection is going away")
        sid: int = self._ep.open_stream(self._cid)
        st = Stream(self, sid, initiator=True)
        self._streams[sid] = st
        self._endpoint.schedule_flush()
        return st

    async def ping(self) -> float:
        """WebRTC has no transport-level ping that str0m exposes: the SCTP acknowledgement of
        our FINs stands in for it (0.0 once everything written was acknowledged)."""
        self._live()
        await self._wait_acked()
        return 0.0

    async def ping_after_flush(self) -> float:
        self._endpoint._flush()
        return await self.ping()

    async def _wait_acked(self) -> None:
        if self._unacked:
            fut: asyncio.Future[None] = self.loop.create_future()
            self._ack_waiters.append(fut)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(fut, CLOSE_ACK_TIMEOUT)

    def shutdown_streams(self) -> None:
        shutdown_all(self._streams.values())

    async def wait_settled(self) -> None:
        await wait_until(self.loop, self._settle_waiters, lambda: self.settled)

    def go_away(self, code: int = 0) -> None:
        self._go_away = True

    async def close(self) -> None:
        """Graceful: FIN on our streams, waits (bounded) for their FIN_ACKs, then closes."""
        if self.is_closed:
            return
        for st in list(self._streams.values()):
            if not st.is_reset:
                st.close_write_nowait()
        self._endpoint.schedule_flush()
        await self._wait_acked()
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
        self._ep.close(self._cid)
        self._on_closed(cast("BaseException", self.close_reason))
        self._endpoint.schedule_flush()
