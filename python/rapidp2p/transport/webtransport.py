"""WebTransport (``/ip4|ip6/<addr>/udp/<port>/quic-v1/webtransport/certhash/<mh>/certhash/<mh>``,
libp2p/specs ``webtransport/README.md``): how browsers reach a node over QUIC without a
certificate from a trusted authority.

A listener has its own UDP socket and a self-signed ECDSA P-256 certificate valid 14 days at
most (browsers accept nothing longer through ``serverCertificateHashes``). Its multiaddr
carries two hashes: the certificate it presents now and the one it will present next, so an
address a browser learnt shortly before a rotation still works afterwards.

Rotation (go-libp2p's scheme, simplified): the current certificate is valid from ``t0`` for
14 days; the next one from the current one's expiry minus one hour (an overlap for clock
skew), also for 14 days. When the current one is an hour from expiry the listener presents
the next one, a new next one is made, and the listener's addresses change (``addrs``).

Connections come secured (Noise, see ``_aio.webtransport``) and multiplexed (one
WebTransport stream per libp2p stream, multistream-select on each), so the host skips its
upgrader for them.

Dialling needs the address's ``/certhash`` values (a server with a CA-signed certificate and
no hashes is not supported): the server's certificate must hash to one of them, and its Noise
handshake must list the certificate it presented. Dials leave from a listening socket of the
same family when there is one, else from one dial-only socket per family that closes with
its last connection (as QUIC's).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from rapidp2p import _core
from rapidp2p.exceptions import Libp2pError, TransportError
from rapidp2p.transport.base import (
    ConnectionFactory,
    InboundHandler,
    parse_components,
    udp_socket_address,
)
from rapidp2p.transport.quic import _bind, listening_endpoint_for

if TYPE_CHECKING:
    from rapidp2p._aio.connection import MuxedConnection
    from rapidp2p._aio.quic import QuicConnection, QuicSettings
    from rapidp2p._aio.webtransport import WebTransportEndpoint
    from rapidp2p.crypto import PrivateKey
    from rapidp2p.peer import Multiaddr, PeerId
    from rapidp2p.security.noise import NoiseIdentity
    from rapidp2p.security.tls import TlsIdentity

__all__ = ["CertificateManager", "WebTransportTransport", "is_webtransport_addr"]

Setup = Callable[["QuicConnection"], None]

#: The longest validity browsers accept for a hashed certificate.
CERT_VALIDITY = 14 * 24 * 3600
#: Overlap of two consecutive certificates, and how early the next one takes over.
CERT_OVERLAP = 3600


def _split(addr: Multiaddr) -> tuple[int, str, int, list[str]]:
    comps = parse_components(addr)
    if (
        len(comps) < 4
        or comps[0][0] not in ("ip4", "ip6")
        or comps[1][0] != "udp"
        or comps[2][0] != "quic-v1"
        or comps[3][0] != "webtransport"
    ):
        raise TransportError(f"not a WebTransport multiaddr: {addr}")
    rest = comps[4:]
    hashes = []
    while rest and rest[0][0] == "certhash":
        hashes.append(rest[0][1])
        rest = rest[1:]
    if [c for c in rest if c[0] != "p2p"]:
        raise TransportError(f"unsupported multiaddr suffix for WebTransport: {addr}")
    return (*udp_socket_address(comps, addr), hashes)


def is_webtransport_addr(addr: Multiaddr) -> bool:
    """True for ``/ip4|ip6/.../udp/N/quic-v1/webtransport[/certhash/...]*[/p2p/...]``."""
    try:
        _split(addr)
    except TransportError:
        return False
    return True


class CertificateManager:
    """The current and next self-signed certificates of a listener (see the module doc)."""

    def __init__(self, now: float | None = None) -> None:
        start = int(now if now is not None else time.time()) - CERT_OVERLAP
        self.current = self._make(start)
        self.next = self._make(self.current[2] - CERT_OVERLAP)
        #: The certificate presented before the last rotation (its hash stays in Noise).
        self.previous: tuple[bytes, bytes, int] | None = None

    @staticmethod
    def _make(not_before: int) -> tuple[bytes, bytes, int]:
        der, key = _core.quic.new_webtransport_certificate(not_before, CERT_VALIDITY)
        return bytes(der), bytes(key), not_before + CERT_VALIDITY

    def rotate_if_due(self, now: float | None = None) -> bool:
        """Presents the next certificate once the current one is an hour from expiry; True
        when it rotated (the addresses changed)."""
        t = now if now is not None else time.time()
        if t < self.current[2] - CERT_OVERLAP:
            return False
        self.previous = self.current
        self.current = self.next
        self.next = self._make(self.current[2] - CERT_OVERLAP)
        return True

    def multihashes(self) -> list[bytes]:
        """What our NoiseExtensions carry: current, next, and the one presented before the
        last rotation (the spec's "recently used" certificate: a browser, which cannot tell
        which certificate it got, checks that every hash of the address it dialled is
        listed, so an address learnt before the rotation keeps working)."""
        certs = [self.current, self.next] + ([self.previous] if self.previous else [])
        return [bytes(_core.quic.webtransport_certhash(c[0])) for c in certs]

    def certhashes(self) -> list[str]:
        """The ``/certhash`` values of the multiaddr: current, then next."""
        return [
            _core.webrtc.certificate_certhash(self.current[0]),
            _core.webrtc.certificate_certhash(self.next[0]),
        ]


class WebTransportListener:
    """One WebTransport socket; rotates its certificate when due (checked on ``addrs``);
    ``close`` refuses new sessions and leaves the accepted connections alone."""

    def __init__(self, endpoint: WebTransportEndpoint, certs: CertificateManager) -> None:
        self.endpoint = endpoint
        self.certs = certs

    @property
    def addrs(self) -> list[Multiaddr]:
        from rapidp2p.peer import Multiaddr

        if self.certs.rotate_if_due() and self.endpoint.listening and not self.endpoint.is_closed:
            der, key, _ = self.certs.current
            self.endpoint._ep.set_webtransport_certificate(der, key)
        hashes = "".join(f"/certhash/{h}" for h in self.certs.certhashes())
        return [Multiaddr(f"{self.endpoint.local_addr}{hashes}")]

    async def close(self) -> None:
        # New sessions are refused; the connections already made go on (the socket closes
        # with the last of them, or with ``WebTransportTransport.close``), as QUIC's.
        self.endpoint.stop_listening()


class WebTransportTransport:
    """Listens for WebTransport with the Noise identity of ``key`` (the host binds its key
    with :meth:`bind_key` when the transport was made without one)."""

    #: Marker for the host: connections come out secured and multiplexed (no upgrade).
    secured = True

    def __init__(self, key: PrivateKey | None = None, settings: QuicSettings | None = None) -> None:
        self.settings = settings
        self._key: PrivateKey | None = None
        self._noise: NoiseIdentity | None = None
        self._tls: TlsIdentity | None = None
        if key is not None:
            self.bind_key(key)
        self._endpoints: set[WebTransportEndpoint] = set()
        self._dialers: dict[int, WebTransportEndpoint] = {}

    def bind_key(self, key: PrivateKey) -> None:
        if self._key is None:
            self._key = key

    def _identities(self) -> tuple[NoiseIdentity, TlsIdentity]:
        if self._key is None:
            raise TransportError("WebTransport transport has no identity key (bind_key first)")
        if self._noise is None or self._tls is None:
            from rapidp2p.security.noise import NoiseIdentity
            from rapidp2p.security.tls import TlsIdentity

            self._noise = NoiseIdentity(self._key)
            self._tls = TlsIdentity(self._key)
        return self._noise, self._tls

    def can_dial(self, addr: Multiaddr) -> bool:
        """A WebTransport address with a port and at least one ``/certhash``."""
        try:
            _family, _host, port, hashes = _split(addr)
        except TransportError:
            return False
        return port != 0 and bool(hashes)

    def can_listen(self, addr: Multiaddr) -> bool:
        return is_webtransport_addr(addr)

    async def listen(
        self, addr: Multiaddr, factory: ConnectionFactory, handler: InboundHandler
    ) -> WebTransportListener:
        _split(addr)
        raise TransportError("WebTransport connections come secured: use listen_secured")

    async def dial(self, addr: Multiaddr, factory: ConnectionFactory) -> MuxedConnection:
        raise TransportError(f"WebTransport dialling is not implemented: {addr}")

    async def dial_secured(
        self, addr: Multiaddr, peer_id: PeerId | None, setup: Setup | None = None
    ) -> QuicConnection:
        """Dials ``addr``: the server's certificate must be one its ``/certhash`` values
        name (else :class:`CertificateError`), and Noise must prove ``peer_id`` (None: any
        peer; else :class:`PeerIdMismatch`). ``setup`` runs on the connection before the
        host sees its streams."""
        family, host, port, hashes = _split(addr)
        if port == 0:
            raise TransportError(f"cannot dial port 0: {addr}")
        digests = []
        for h in hashes:
            try:
                d = _core.webrtc.fingerprint_of_certhash(h)
            except Libp2pError:
                d = None
            if d is not None:  # only sha2-256 names a certificate a dial can check
                digests.append(bytes(d))
        if not digests:
            raise TransportError(f"WebTransport dial needs a sha2-256 /certhash: {addr}")
        ep = self._dial_endpoint(family, host)
        return await ep.dial_webtransport(host, port, digests, peer_id, setup)

    def _dial_endpoint(self, family: int, host: str) -> WebTransportEndpoint:
        """A listening socket of the family that reaches ``host``, else the dial-only one."""
        ep = listening_endpoint_for(self._endpoints, family, host)
        if ep is not None:
            return ep
        dialer = self._dialers.get(family)
        if dialer is None or dialer.is_closed:
            from rapidp2p._aio.quic import QuicSettings
            from rapidp2p._aio.webtransport import WebTransportEndpoint

            noise, tls = self._identities()
            sock = _bind(family, "0.0.0.0" if family == socket.AF_INET else "::", 0)
            try:
                dialer = WebTransportEndpoint(
                    sock,
                    tls,
                    listen=False,
                    settings=self.settings or QuicSettings(),
                    noise=noise,
                    certhashes=list,
                )
            except BaseException:
                sock.close()
                raise
            dialer.on_closed = self._dialer_closed
            self._dialers[family] = dialer
        return dialer

    def _dialer_closed(self, ep: object) -> None:
        for fam, d in list(self._dialers.items()):
            if d is ep:
                del self._dialers[fam]

    async def listen_secured(
        self, addr: Multiaddr, setup: Setup | None, handler: Callable[[QuicConnection], None]
    ) -> WebTransportListener:
        """Binds ``addr`` (``/udp/0``: an ephemeral port); ``addrs`` of the listener carry
        the certificate hashes."""
        family, host, port, _hashes = _split(addr)
        noise, tls = self._identities()
        from rapidp2p._aio.quic import QuicSettings
        from rapidp2p._aio.webtransport import WebTransportEndpoint

        certs = CertificateManager()
        sock = _bind(family, host, port)
        der, key, _ = certs.current
        try:
            ep = WebTransportEndpoint(
                sock,
                tls,
                listen=True,
                settings=self.settings or QuicSettings(),
                setup=setup,
                on_connection=handler,
                webtransport=(der, key),
                noise=noise,
                certhashes=certs.multihashes,
            )
        except BaseException:
            sock.close()
            raise
        ep.on_closed = lambda e: self._endpoints.discard(cast("WebTransportEndpoint", e))
        self._endpoints.add(ep)
        return WebTransportListener(ep, certs)

    async def close(self) -> None:
        for ep in [*self._endpoints, *self._dialers.values()]:
            with contextlib.suppress(OSError):
                ep.close()
        self._endpoints.clear()
        self._dialers.clear()
