"""``/webrtc`` (libp2p/specs ``webrtc/webrtc.md``): a direct WebRTC connection between two
peers that first meet on a Circuit Relay v2 connection, how browsers reach each other and
how a browser reaches a node that cannot be dialled directly.

Addresses are ``<relay addr>/p2p/<relay>/p2p-circuit/webrtc/p2p/<peer>``. The dialler opens
(or reuses) the relayed connection, opens a ``/webrtc-signaling/0.0.1`` stream on it and sends
an SDP offer; the listener answers; both trickle ICE candidates until the WebRTC connection
(ICE, DTLS, SCTP, on str0m in Rust) is up, then close the stream. There is no Noise: the
offer and answer carry the DTLS certificate fingerprints and came over the relayed
connection, which Noise secured, so the new connection's peer is the relayed one's. Streams
are then data channels framed as in WebRTC-direct (the same Rust endpoint carries both).

Opt in by passing the transport to the host (it is not among the default transports)::

    host = await Host.create(transports=[TcpTransport(), WebSocketTransport(), WebRtcTransport()])
    await host.listen("/ip4/.../tcp/N/ws/p2p/<relay>/p2p-circuit/webrtc")   # reserve + /webrtc

Listening reserves a slot on the relay (as ``/p2p-circuit``) and advertises its addresses
with ``/webrtc`` appended; a host with this transport also answers signalling from any peer
that reaches it over a relayed connection. ICE uses one host candidate: the address of the
transport's UDP socket (``bind_host``, loopback by default; give a routable interface
address to be reached from elsewhere; no STUN or TURN is used).

Bad input (a malformed or unexpected signalling message, an unusable SDP or candidate) or
no WebRTC connection within :data:`SIGNALING_TIMEOUT` raises or records
:class:`~rapidp2p.exceptions.SignalingError` (a HandshakeTimeout for ICE/DTLS silence);
only the signalling stream and the WebRTC connection it was setting up close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from rapidp2p._aio.webrtc import WebRtcConnection, WebRtcEndpoint, WebRtcSettings
from rapidp2p.exceptions import DecodeError, Libp2pError, SignalingError, TransportError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.framing import read_delimited, write_delimited
from rapidp2p.protocols.webrtc_signaling import (
    MAX_CANDIDATES,
    MAX_MESSAGE_SIZE,
    SIGNALING_PROTOCOL,
    SIGNALING_TIMEOUT,
    MessageType,
    SignalingMessage,
    candidate_message,
    parse_candidate,
)
from rapidp2p.transport.base import ConnectionFactory, InboundHandler, parse_components

if TYPE_CHECKING:
    from rapidp2p._aio.connection import MuxedConnection
    from rapidp2p._aio.stream import Stream
    from rapidp2p.crypto import PrivateKey, PublicKey
    from rapidp2p.host.host import Host
    from rapidp2p.relay.transport import CircuitListener

__all__ = ["WebRtcListener", "WebRtcTransport", "is_webrtc_addr", "split_webrtc"]

log = logging.getLogger("rapidp2p.webrtc")

Setup = Callable[[WebRtcConnection], None]
#: Signalling failures remembered (newest last), for diagnostics and tests.
MAX_FAILURES = 32


def split_webrtc(addr: Multiaddr) -> tuple[Multiaddr, PeerId | None]:
    """``<relay part>/p2p-circuit/webrtc[/p2p/<peer>]`` -> (``<relay part>/p2p-circuit``,
    peer or None). Raises TransportError for any other shape."""
    comps = parse_components(addr)
    names = [n for n, _ in comps]
    peer: PeerId | None = None
    if names and names[-1] == "p2p" and len(names) >= 2 and names[-2] == "webrtc":
        peer = PeerId.from_string(comps[-1][1])
        comps = comps[:-1]
        names = names[:-1]
    if len(names) < 3 or names[-1] != "webrtc" or names[-2] != "p2p-circuit":
        raise TransportError(f"not a /webrtc multiaddr: {addr}")
    if "p2p" not in names[:-2]:
        raise TransportError(f"{addr}: the relay part needs /p2p/<relay id>")
    text = str(addr)
    cut = text.rfind("/webrtc")
    return Multiaddr(text[:cut]), peer


def is_webrtc_addr(addr: Multiaddr | str) -> bool:
    """True for ``.../p2p/<relay>/p2p-circuit/webrtc[/p2p/<peer>]``."""
    try:
        split_webrtc(addr if isinstance(addr, Multiaddr) else Multiaddr(addr))
    except (TransportError, ValueError, DecodeError):
        return False
    return True


class WebRtcListener:
    """A reservation on a relay, advertised with ``/webrtc`` appended."""

    def __init__(self, circuit: CircuitListener) -> None:
        self.circuit = circuit

    @property
    def addrs(self) -> list[Multiaddr]:
        return [Multiaddr(f"{a}/webrtc") for a in self.circuit.addrs]

    async def close(self) -> None:
        await self.circuit.close()


async def _read(stream: Stream) -> SignalingMessage | None:
    """One signalling message; None at a clean EOF. SignalingError for bad framing."""
    try:
        raw = await read_delimited(stream, MAX_MESSAGE_SIZE)
    except DecodeError as exc:
        raise SignalingError(f"bad signalling frame: {exc}") from exc
    return None if raw is None else SignalingMessage.decode(raw)


async def _write(stream: Stream, message: SignalingMessage) -> None:
    await write_delimited(stream, message.encode())


class WebRtcTransport:
    """``/webrtc`` through relays, for the host it is attached to (the host calls
    :meth:`attach`). ``bind_host``: the IP of its UDP socket, its one ICE candidate."""

    #: Marker for the host: connections come out secured and multiplexed (no upgrade).
    secured = True

    def __init__(
        self,
        settings: WebRtcSettings | None = None,
        *,
        bind_host: str = "127.0.0.1",
        signaling_timeout: float = SIGNALING_TIMEOUT,
    ) -> None:
        self.settings = settings or WebRtcSettings()
        self.local_host = bind_host
        self.signaling_timeout = signaling_timeout
        self._host: Host | None = None
        self._endpoint: WebRtcEndpoint | None = None
        self._certificate: tuple[bytes, bytes] | None = None
        #: Signalling exchanges that failed (typed errors), newest last.
        self.failures: deque[BaseException] = deque(maxlen=MAX_FAILURES)

    # ---- host wiring --------------------------------------------------------------------

    def bind_key(self, key: PrivateKey) -> None:
        """No Noise on ``/webrtc``: the identity is the relayed connection's."""

    def attach(self, host: Host) -> None:
        """Serves ``/webrtc-signaling/0.0.1`` on ``host`` (any relayed connection may start
        one) and dials through its relay client."""
        if self._host is not None:
            return
        self._host = host
        host.set_stream_handler(SIGNALING_PROTOCOL, self._on_signaling)

    def _require_host(self) -> Host:
        if self._host is None:
            raise TransportError("WebRtcTransport is not attached to a host")
        return self._host

    def endpoint(self) -> WebRtcEndpoint:
        """The UDP endpoint of every ``/webrtc`` connection (made on first use)."""
        ep = self._endpoint
        if ep is not None and not ep.is_closed:
            return ep
        from rapidp2p import _core
        from rapidp2p.security.noise import NoiseIdentity

        host = self._require_host()
        if self._certificate is None:
            der, key = _core.webrtc.new_certificate()
            self._certificate = (bytes(der), bytes(key))
        family = socket.AF_INET6 if ":" in self.local_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((self.local_host, 0))
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot bind UDP {self.local_host}: {exc}") from exc
        # The endpoint's Noise identity is unused on /webrtc (no Noise) but required.
        ep = WebRtcEndpoint(
            sock,
            NoiseIdentity(host.key),
            self._certificate,
            settings=self.settings,
            setup=host.setup_secured,
        )
        ep.stop_listening()  # no WebRTC-direct dialler is let in on this socket
        self._endpoint = ep
        return ep

    # ---- addresses ----------------------------------------------------------------------

    def can_dial(self, addr: Multiaddr) -> bool:
        """Any ``/webrtc`` address: the dialer passes the peer apart (``/p2p`` stripped)."""
        return is_webrtc_addr(addr)

    def can_listen(self, addr: Multiaddr) -> bool:
        try:
            return split_webrtc(addr)[1] is None
        except (TransportError, ValueError, DecodeError):
            return False

    async def listen(
        self, addr: Multiaddr, factory: ConnectionFactory, handler: InboundHandler
    ) -> WebRtcListener:
        raise TransportError(f"/webrtc connections come secured: use listen_secured ({addr})")

    async def dial(self, addr: Multiaddr, factory: ConnectionFactory) -> MuxedConnection:
        raise TransportError(f"/webrtc connections come secured: use dial_secured ({addr})")

    # ---- listening ------------------------------------------------------------------------

    async def listen_secured(
        self, addr: Multiaddr, setup: Setup | None, handler: Callable[[WebRtcConnection], None]
    ) -> WebRtcListener:
        """Reserves on the relay of ``addr`` (``.../p2p-circuit/webrtc``); inbound signalling
        is served whether or not we listen (the spec asks both sides to answer it)."""
        from rapidp2p.relay.transport import CircuitTransport

        host = self._require_host()
        circuit_addr, _ = split_webrtc(addr)
        circuit = next((t for t in host.transports if isinstance(t, CircuitTransport)), None)
        if circuit is None:
            raise TransportError("/webrtc listening needs the relay client (enable_relay_client)")
        self.endpoint()
        lst = await circuit.listen(circuit_addr, host._new_protocol, host._on_inbound)
        return WebRtcListener(lst)

    # ---- signalling -------------------------------------------------------------------------

    async def dial_secured(
        self, addr: Multiaddr, peer_id: PeerId | None, setup: Setup | None = None
    ) -> WebRtcConnection:
        """Reaches ``peer_id`` (else the address's ``/p2p``) through the relay of ``addr``,
        signals as the offerer and returns the WebRTC connection."""
        host = self._require_host()
        circuit_addr, addr_peer = split_webrtc(addr)
        peer = peer_id or addr_peer
        if peer is None:
            raise TransportError(f"{addr}: a /webrtc dial needs /p2p/<peer>")
        if host.live_connection(peer) is None:
            # This runs inside the host's dial to `peer`: `connect` would wait for itself.
            await host._dialer.dial_for_transport(peer, circuit_addr)
        stream = await host.new_stream(peer, SIGNALING_PROTOCOL, lazy=False)
        return await self._signal(stream, peer, offerer=True, setup=setup)

    async def _on_signaling(self, stream: Stream) -> None:
        """An inbound ``/webrtc-signaling`` stream: we answer; the new connection goes to
        the host like an accepted one."""
        host = self._require_host()
        peer = stream.conn.remote_peer
        try:
            conn = await self._signal(stream, peer, offerer=False, setup=host.setup_secured)
        except (Libp2pError, OSError, asyncio.TimeoutError) as exc:
            log.info("/webrtc signalling from %s failed: %s", peer, exc)
            return
        host._on_secured(conn)

    async def _signal(
        self, stream: Stream, peer: PeerId, *, offerer: bool, setup: Setup | None
    ) -> WebRtcConnection:
        """The exchange on ``stream``, bounded by ``signaling_timeout``; on failure the
        stream is reset, the half-made connection dropped, and the typed error raised."""
        ep = self.endpoint()
        key: PublicKey | None = getattr(stream.conn, "remote_key", None)
        state: dict[str, int] = {}
        try:
            conn = await asyncio.wait_for(
                self._exchange(stream, ep, peer, key, offerer, setup, state),
                self.signaling_timeout,
            )
        except BaseException as exc:
            cid = state.get("cid")
            if cid is not None:
                ep.abandon(cid)
            stream.reset()
            if isinstance(exc, asyncio.TimeoutError):
                err = SignalingError(
                    f"/webrtc signalling timed out after {self.signaling_timeout}s"
                )
                self.failures.append(err)
                raise err from None
            if isinstance(exc, Libp2pError):
                self.failures.append(exc)
            raise
        with contextlib.suppress(Libp2pError, OSError):
            await stream.close()
        return conn

    async def _exchange(
        self,
        stream: Stream,
        ep: WebRtcEndpoint,
        peer: PeerId,
        key: PublicKey | None,
        offerer: bool,
        setup: Setup | None,
        state: dict[str, int],
    ) -> WebRtcConnection:
        if offerer:
            cid, offer, fut = ep.offer(peer, key, setup)
            state["cid"] = cid
            await _write(stream, SignalingMessage(MessageType.SDP_OFFER, offer))
            answer = await _read(stream)
            if answer is None or answer.type is not MessageType.SDP_ANSWER:
                got = "EOF" if answer is None else answer.type.name
                raise SignalingError(f"expected an SDP answer, got {got}")
            ep.accept_answer(cid, answer.data)
        else:
            offer_msg = await _read(stream)
            if offer_msg is None or offer_msg.type is not MessageType.SDP_OFFER:
                got = "EOF" if offer_msg is None else offer_msg.type.name
                raise SignalingError(f"expected an SDP offer, got {got}")
            cid, answer_sdp, fut = ep.answer(offer_msg.data, peer, key, setup)
            state["cid"] = cid
            await _write(stream, SignalingMessage(MessageType.SDP_ANSWER, answer_sdp))
        # Our one candidate is in the SDP already; say that there are no more.
        await _write(stream, candidate_message(None))
        return await self._candidates_until_connected(stream, ep, cid, fut)

    @staticmethod
    async def _candidates_until_connected(
        stream: Stream, ep: WebRtcEndpoint, cid: int, fut: asyncio.Future[WebRtcConnection]
    ) -> WebRtcConnection:
        """Feeds the remote's trickled candidates to ICE until the connection is up (or
        the remote closes the stream: then only the connection is awaited)."""
        count = 0
        while not fut.done():
            reading = asyncio.ensure_future(_read(stream))
            waiting: set[asyncio.Future[object]] = {reading, fut}  # type: ignore[arg-type]
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if reading not in done:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Libp2pError):
                    await reading
                break
            message = reading.result()
            if message is None:
                break  # the remote closed its side: nothing more to learn
            count += 1
            if count > MAX_CANDIDATES:
                raise SignalingError(f"more than {MAX_CANDIDATES} signalling messages")
            line = parse_candidate(message)
            if line is not None:
                ep.add_remote_candidate(cid, line)
        return await fut

    async def close(self) -> None:
        ep, self._endpoint = self._endpoint, None
        if ep is not None:
            with contextlib.suppress(OSError):
                ep.close()
