"""WebRTC-direct (``/ip4|ip6/<addr>/udp/<port>/webrtc-direct/certhash/<multihash>``,
libp2p/specs ``webrtc/webrtc-direct.md``): how browsers reach a node without a trusted TLS
certificate.

The listener is an ICE-lite agent: a browser builds our SDP answer from the multiaddr (the
certhash is our DTLS certificate's fingerprint), and its first STUN request names the ufrag
both sides use. DTLS does not check the browser's certificate; the Noise XX handshake on data
channel 0 (we are the initiator; the prologue binds both fingerprints) authenticates the two
libp2p identities. Each libp2p stream is then one data channel. Connections come out
secured and multiplexed, so the host skips its upgrader for them (as for QUIC).

The DTLS certificate is made once per transport (so once per host) and used by every
listener; pass ``certificate_path`` to keep it across restarts (the advertised certhash then
stays valid).

Dialling (:meth:`WebRtcDirectTransport.dial_secured`, what ``host.connect`` uses) takes
``/ip4|ip6/<addr>/udp/<port>/webrtc-direct/certhash/<multihash>[/p2p/<id>]``: one UDP socket
per dial, connected to the listener; a full ICE agent (controlling) with one random
``libp2p+webrtc+v1/...`` string as both ufrag and password; the DTLS client refuses a
certificate other than the certhash's; we are the Noise responder on channel 0 and the
listener must prove the ``/p2p`` peer ID (else :class:`PeerIdMismatch`).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rapidp2p import _core
from rapidp2p._aio.webrtc import WebRtcConnection, WebRtcEndpoint, WebRtcSettings
from rapidp2p.exceptions import TransportError
from rapidp2p.transport.base import (
    ConnectionFactory,
    InboundHandler,
    parse_components,
    udp_socket_address,
)
from rapidp2p.transport.quic import _grow_buffers

if TYPE_CHECKING:
    from rapidp2p._aio.connection import MuxedConnection
    from rapidp2p.crypto import PrivateKey
    from rapidp2p.peer import Multiaddr, PeerId
    from rapidp2p.security.noise import NoiseIdentity

__all__ = ["WebRtcDirectListener", "WebRtcDirectTransport", "is_webrtc_direct_addr"]

Setup = Callable[[WebRtcConnection], None]

#: A certificate file: 4-byte big-endian DER length, the DER certificate, the DER key.
_CERT_MAGIC = b"rp2pwrtc"


def _split(addr: Multiaddr) -> tuple[int, str, int, str | None]:
    comps = parse_components(addr)
    if (
        len(comps) < 3
        or comps[0][0] not in ("ip4", "ip6")
        or comps[1][0] != "udp"
        or comps[2][0] != "webrtc-direct"
    ):
        raise TransportError(f"not a WebRTC-direct multiaddr: {addr}")
    rest = comps[3:]
    certhash = None
    if rest and rest[0][0] == "certhash":
        certhash = rest[0][1]
        rest = rest[1:]
    if [c for c in rest if c[0] not in ("p2p", "certhash")]:
        raise TransportError(f"unsupported multiaddr suffix for WebRTC-direct: {addr}")
    return (*udp_socket_address(comps, addr), certhash)


def is_webrtc_direct_addr(addr: Multiaddr) -> bool:
    """True for ``/ip4|ip6/.../udp/N/webrtc-direct[/certhash/...][/p2p/...]``."""
    try:
        _split(addr)
    except TransportError:
        return False
    return True


def _load_or_create(path: Path | None) -> tuple[bytes, bytes]:
    if path is not None and path.exists():
        blob = path.read_bytes()
        if blob[:8] != _CERT_MAGIC or len(blob) < 12:
            raise TransportError(f"{path}: not a rapidp2p WebRTC certificate file")
        n = int.from_bytes(blob[8:12], "big")
        if 12 + n >= len(blob):
            raise TransportError(f"{path}: truncated WebRTC certificate file")
        return blob[12 : 12 + n], blob[12 + n :]
    der, key = _core.webrtc.new_certificate()
    der, key = bytes(der), bytes(key)
    if path is not None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_CERT_MAGIC + len(der).to_bytes(4, "big") + der + key)
        tmp.replace(path)
    return der, key


class WebRtcDirectListener:
    def __init__(self, endpoint: WebRtcEndpoint) -> None:
        self.endpoint = endpoint

    @property
    def addrs(self) -> list[Multiaddr]:
        return [self.endpoint.local_addr]

    async def close(self) -> None:
        self.endpoint.stop_listening()
        self.endpoint.close()


class WebRtcDirectTransport:
    """Listens for WebRTC-direct with the Noise identity of ``key`` (the host binds its key
    with :meth:`bind_key` when the transport was made without one)."""

    #: Marker for the host: connections come out secured and multiplexed (no upgrade).
    secured = True

    def __init__(
        self,
        key: PrivateKey | None = None,
        settings: WebRtcSettings | None = None,
        *,
        certificate_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.settings = settings or WebRtcSettings()
        self._path = None if certificate_path is None else Path(certificate_path)
        self._certificate: tuple[bytes, bytes] | None = None
        self._identity: NoiseIdentity | None = None
        if key is not None:
            self.bind_key(key)
        self._endpoints: set[WebRtcEndpoint] = set()

    def bind_key(self, key: PrivateKey) -> None:
        from rapidp2p.security.noise import NoiseIdentity

        if self._identity is None:
            self._identity = NoiseIdentity(key)

    @property
    def certificate(self) -> tuple[bytes, bytes]:
        """``(der, private_key_der)`` of our DTLS certificate (made on first use)."""
        if self._certificate is None:
            self._certificate = _load_or_create(self._path)
        return self._certificate

    @property
    def certhash(self) -> str:
        out: str = _core.webrtc.certificate_certhash(self.certificate[0])
        return out

    def can_dial(self, addr: Multiaddr) -> bool:
        try:
            _family, _host, port, certhash = _split(addr)
        except TransportError:
            return False
        return certhash is not None and port != 0

    def can_listen(self, addr: Multiaddr) -> bool:
        return is_webrtc_direct_addr(addr)

    async def listen(
        self, addr: Multiaddr, factory: ConnectionFactory, handler: InboundHandler
    ) -> WebRtcDirectListener:
        _split(addr)
        raise TransportError("WebRTC-direct connections come secured: use listen_secured")

    async def dial(self, addr: Multiaddr, factory: ConnectionFactory) -> MuxedConnection:
        raise TransportError(f"WebRTC-direct connections come secured: use dial_secured ({addr})")

    async def dial_secured(
        self, addr: Multiaddr, peer_id: PeerId | None, setup: Setup | None = None
    ) -> WebRtcConnection:
        """Dials ``addr`` (which must carry ``/certhash``); the listener must prove ``peer_id``
        (else the one in ``addr``'s ``/p2p``; None with neither: any peer)."""
        family, host, port, certhash = _split(addr)
        if certhash is None:
            raise TransportError(f"WebRTC-direct dial needs /certhash: {addr}")
        if port == 0:
            raise TransportError(f"cannot dial port 0: {addr}")
        fingerprint = _core.webrtc.fingerprint_of_certhash(certhash)
        if fingerprint is None:
            raise TransportError(f"certhash is not a sha2-256 multihash: {certhash}")
        if peer_id is None:
            peer_id = addr.get_peer_id()
        if self._identity is None:
            raise TransportError("WebRTC-direct transport has no identity key (bind_key first)")
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            _grow_buffers(sock)
            # Connected: the kernel picks our address on the route (our ICE host candidate)
            # and drops datagrams from anyone else.
            sock.connect((host, port))
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot reach UDP {host}:{port}: {exc.strerror or exc}") from exc
        ep = WebRtcEndpoint(sock, self._identity, self.certificate, settings=self.settings)
        ep.stop_listening()
        self._endpoints.add(ep)

        def closed(_conn: object) -> None:
            # After the flush that carries our DTLS close_notify.
            ep.loop.call_soon(ep.close)

        def ended(e: WebRtcEndpoint) -> None:
            self._endpoints.discard(e)

        ep.on_closed = ended
        try:
            conn = await ep.dial(host, port, fingerprint, peer_id, setup)
        except BaseException:
            ep.close()
            raise
        conn.on_close.append(closed)
        return conn

    async def listen_secured(
        self, addr: Multiaddr, setup: Setup | None, handler: Callable[[WebRtcConnection], None]
    ) -> WebRtcDirectListener:
        family, host, port, _certhash = _split(addr)
        if self._identity is None:
            raise TransportError("WebRTC-direct transport has no identity key (bind_key first)")
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setblocking(False)
            _grow_buffers(sock)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot bind UDP {host}:{port}: {exc.strerror or exc}") from exc
        ep = WebRtcEndpoint(
            sock,
            self._identity,
            self.certificate,
            settings=self.settings,
            setup=setup,
            on_connection=handler,
        )
        ep.on_closed = self._endpoints.discard
        self._endpoints.add(ep)
        return WebRtcDirectListener(ep)

    async def close(self) -> None:
        for ep in list(self._endpoints):
            with contextlib.suppress(OSError):
                ep.close()
        self._endpoints.clear()
