"""The asyncio side of a WebTransport listener: a :class:`QuicEndpoint` whose Rust endpoint
speaks HTTP/3 (``_core.quic.Endpoint(..., webtransport=(der, key))``), plus the libp2p
handshake that WebTransport leaves to us.

Rust accepts the extended CONNECT and reports the session (``EV_SESSION``); nobody's identity
is known then (the browser has no certificate, ours is self-signed). Per libp2p/specs
``webtransport/README.md`` as js-libp2p and go-libp2p implement it, the client opens the first
WebTransport stream and is the Noise initiator; we are the responder and send every
certificate hash we advertise in the NoiseExtensions of message 2, so the client checks that
the hashes it dialled with are among them (no MITM with another certificate). Only after that
is the connection handed to the host, with the peer ID Noise proved.

Dialling (:meth:`WebTransportEndpoint.dial_webtransport`) is the mirror image: Rust accepts
the server's self-signed certificate only if its SHA-256 is one of the multiaddr's
``/certhash`` values, sends the extended CONNECT and reports the session at once
(``EV_SESSION`` with the presented certificate's multihash); we open the first stream and
run Noise as the initiator without waiting for the server's answer (the spec's advice: one
round trip saved), and check that the server's NoiseExtensions list the certificate it
presented before our message 3 goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, cast

from rapidp2p._aio.quic import QuicConnection, QuicEndpoint, _dial_error
from rapidp2p.exceptions import DialError, HandshakeError, Libp2pError

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream
    from rapidp2p.peer import Multiaddr, PeerId
    from rapidp2p.security.noise import NoiseIdentity, SecureSession

Setup = Callable[[QuicConnection], None]

__all__ = ["WebTransportEndpoint", "webtransport_multiaddr"]


def webtransport_multiaddr(host: str, port: int) -> Multiaddr:
    """``("127.0.0.1", 4001)`` -> ``/ip4/127.0.0.1/udp/4001/quic-v1/webtransport``."""
    from rapidp2p.peer import Multiaddr

    proto = "ip6" if ":" in host else "ip4"
    return Multiaddr(f"/{proto}/{host}/udp/{port}/quic-v1/webtransport")


class WebTransportEndpoint(QuicEndpoint):
    """A WebTransport listener's socket. ``certhashes`` returns the multihashes we advertise
    now (current and next certificate), sent in the Noise handshake."""

    def __init__(
        self,
        *args: object,
        noise: NoiseIdentity,
        certhashes: Callable[[], list[bytes]],
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.noise = noise
        self.certhashes = certhashes
        self.local_addr = webtransport_multiaddr(self.local_host, self.local_port)
        self._handshakes: set[asyncio.Task[None]] = set()
        #: Dials waiting for their session: the peer they must reach and their setup.
        self._dials: dict[int, tuple[PeerId | None, Setup | None]] = {}

    def _session(self, cid: int, value: object) -> None:
        host, port, _inbound, certhash = cast("tuple[str, int, bool, bytes | None]", value)
        dialed = self._conns.get(cid)
        if dialed is not None and dialed.direction == "outbound" and certhash is not None:
            peer_id, setup = self._dials.pop(cid, (None, None))
            self._start_handshake(self._dial_handshake(dialed, bytes(certhash), peer_id, setup))
            return
        if not self.listening or self.on_connection is None or dialed is not None:
            super()._session(cid, value)
            return
        conn = QuicConnection(self, cid, "inbound")
        conn.security = "/noise"
        conn.muxer = "webtransport"
        conn.remote_addr = webtransport_multiaddr(str(host), int(port))
        self._conns[cid] = conn
        first: asyncio.Future[Stream] = self.loop.create_future()
        early: list[Stream] = []

        def on_stream(st: Stream) -> None:
            if not first.done():
                first.set_result(st)
            else:  # opened before the handshake ended: served once it has
                early.append(st)

        conn.on_stream = on_stream
        self._start_handshake(self._handshake(conn, first, early))

    def _start_handshake(self, coro: Coroutine[None, None, None]) -> None:
        task = self.loop.create_task(coro)
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def dial_webtransport(
        self,
        host: str,
        port: int,
        digests: list[bytes],
        peer_id: PeerId | None,
        setup: Setup | None = None,
    ) -> QuicConnection:
        """Dials ``host:port`` over WebTransport: the server's certificate must hash to one
        of ``digests`` (SHA-256, from the multiaddr's ``/certhash``), its Noise handshake
        must list that certificate and prove ``peer_id`` (when given). ``setup`` (else the
        endpoint's) prepares the connection before the host sees any of its streams."""
        if self.is_closed:
            raise DialError("WebTransport endpoint closed")
        try:
            cid = self._ep.connect_webtransport(host, port, digests, self.loop.time())
        except ValueError as exc:
            raise DialError(f"{host}:{port}: {exc}") from None
        conn = QuicConnection(self, cid, "outbound")
        conn.security = "/noise"
        conn.muxer = "webtransport"
        conn.remote_addr = webtransport_multiaddr(host, port)
        conn._dialing = self.loop.create_future()
        self._conns[cid] = conn
        self._dials[cid] = (peer_id, setup or self.setup)
        self.schedule_flush()
        where = f"/udp/{port}/quic-v1/webtransport at {host}"
        try:
            await conn._dialing
        except Libp2pError as exc:
            raise _dial_error(exc, where) from None
        except BaseException:
            conn.abort()
            raise
        finally:
            self._dials.pop(cid, None)
        return conn

    async def _dial_handshake(
        self, conn: QuicConnection, certhash: bytes, peer_id: PeerId | None, setup: Setup | None
    ) -> None:
        """Noise as the initiator on the first stream, then the connection is the dialer's."""
        from rapidp2p.security.noise import noise_outbound

        early: list[Stream] = []
        # The server may open streams as soon as it has our message 3: held until the
        # host's setup ran (below), as on the listening side.
        conn.on_stream = early.append

        async def run() -> tuple[Stream, SecureSession]:
            st = await conn.open_stream()
            session = await noise_outbound(
                st, self.noise.key, peer_id, identity=self.noise, webtransport_certhash=certhash
            )
            return st, session

        if not await self._secure(conn, run(), keep_typed=True):
            return
        if setup is not None:
            setup(conn)
        conn._dial_done(None)
        _release_early(conn, early)

    async def _handshake(
        self, conn: QuicConnection, first: asyncio.Future[Stream], early: list[Stream]
    ) -> None:
        from rapidp2p.security.noise import noise_inbound

        async def run() -> tuple[Stream, SecureSession]:
            st = await first
            session = await noise_inbound(
                st,
                self.noise.key,
                identity=self.noise,
                webtransport_certhashes=self.certhashes(),
            )
            return st, session

        if not await self._secure(conn, run(), keep_typed=False):
            return
        if self.setup is not None:
            self.setup(conn)
        handler = self.on_connection
        if handler is not None:
            handler(conn)
        _release_early(conn, early)

    async def _secure(
        self,
        conn: QuicConnection,
        handshake: Coroutine[object, object, tuple[Stream, SecureSession]],
        keep_typed: bool,
    ) -> bool:
        """Runs either side's Noise handshake within the handshake timeout and makes ``conn``
        the secured peer's (True), or aborts it with a :class:`HandshakeError` (False).
        ``keep_typed``: the dialer's typed refusals (PeerIdMismatch, CertificateError) reach
        it as they are."""
        timeout = self.settings.handshake_timeout
        try:
            st, session = await asyncio.wait_for(handshake, timeout)
        except asyncio.TimeoutError:
            conn.abort(
                HandshakeError(f"WebTransport Noise handshake did not finish within {timeout} s")
            )
            return False
        except Libp2pError as exc:
            if not (keep_typed and isinstance(exc, HandshakeError)):
                exc = HandshakeError(f"WebTransport Noise handshake failed: {exc}")
            conn.abort(exc)
            return False
        if conn.is_closed:
            return False
        # The handshake stream has served its purpose (the peers close it).
        with contextlib.suppress(Libp2pError):
            st.close_write_nowait()
        conn.remote_peer = session.remote_peer
        conn.remote_key = session.remote_key
        conn.connected_at = self.loop.time()
        conn.on_stream = None
        return True

    def close(self) -> None:
        for task in list(self._handshakes):
            task.cancel()
        super().close()


def _release_early(conn: QuicConnection, early: list[Stream]) -> None:
    """Streams the peer opened during the handshake go to the handler installed since (reset
    when there is none, or the connection closed)."""
    for extra in early:
        if conn.on_stream is not None and not conn.is_closed:
            conn.on_stream(extra)
        else:
            extra.reset()
