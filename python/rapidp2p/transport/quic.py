"""QUIC v1 (``/ip4|ip6/<addr>/udp/<port>/quic-v1``, libp2p/specs ``quic/README.md``).

Unlike TCP, a QUIC connection is secured (libp2p TLS 1.3 inside QUIC, the peer id proved by
the certificate) and multiplexed (QUIC streams are libp2p streams, multistream-select on each)
from the start, so this transport yields finished :class:`~rapidp2p._aio.quic.QuicConnection`
objects through :meth:`QuicTransport.listen_secured` / :meth:`QuicTransport.dial_secured`
and the host skips its upgrader for them.

One UDP socket per listen address; dials leave from a listening socket of the same family
when there is one (the same local port is what hole punching needs), else from one shared
dial-only socket per family that closes when its last connection ends.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from rapidp2p.exceptions import TransportError
from rapidp2p.transport.base import (
    ConnectionFactory,
    InboundHandler,
    parse_components,
    udp_socket_address,
)

if TYPE_CHECKING:
    from rapidp2p._aio.connection import MuxedConnection
    from rapidp2p._aio.quic import QuicConnection, QuicEndpoint, QuicSettings
    from rapidp2p.crypto import PrivateKey
    from rapidp2p.peer import Multiaddr, PeerId
    from rapidp2p.security.tls import TlsIdentity

__all__ = ["QuicListener", "QuicTransport", "is_quic_addr", "listening_endpoint_for"]

_Endpoint = TypeVar("_Endpoint", bound="QuicEndpoint")


def listening_endpoint_for(
    endpoints: Iterable[_Endpoint], family: int, host: str
) -> _Endpoint | None:
    """The open listening endpoint of ``family`` that reaches ``host`` (a loopback one for a
    loopback peer, any other for the rest), or None. Dialling from the listening socket
    keeps one UDP port per host, which NAT mappings and hole punching rely on."""
    target = ipaddress.ip_address(host)
    for ep in endpoints:
        if ep.is_closed or not ep.listening or ep.sock.family != family:
            continue
        local = ipaddress.ip_address(ep.local_host)
        if local.is_unspecified or local.is_loopback == target.is_loopback:
            return ep
    return None


#: Prepares each new connection object before any of its events (the host's stream handler).
Setup = Callable[["QuicConnection"], None]


def _split(addr: Multiaddr) -> tuple[int, str, int]:
    comps = parse_components(addr)
    if (
        len(comps) < 3
        or comps[0][0] not in ("ip4", "ip6")
        or comps[1][0] != "udp"
        or comps[2][0] != "quic-v1"
    ):
        raise TransportError(f"not a QUIC v1 multiaddr: {addr}")
    if [c for c in comps[3:] if c[0] != "p2p"]:
        raise TransportError(f"unsupported multiaddr suffix for QUIC: {addr}")
    return udp_socket_address(comps, addr)


def is_quic_addr(addr: Multiaddr) -> bool:
    """True for ``/ip4|ip6/.../udp/N/quic-v1`` (optionally ``/p2p/...``)."""
    try:
        _split(addr)
    except TransportError:
        return False
    return True


#: Socket buffers asked for (quic-go asks 7 MiB): a burst of a congestion window must fit, or
#: the kernel drops datagrams that then count as congestion loss.
SOCKET_BUFFER = 8 << 20


def _grow_buffers(sock: socket.socket) -> None:
    """Large send and receive buffers: past ``net.core.[rw]mem_max`` when privileged
    (``SO_*BUFFORCE``, Linux), else as much as the kernel grants."""
    for force, plain in (
        ("SO_RCVBUFFORCE", socket.SO_RCVBUF),
        ("SO_SNDBUFFORCE", socket.SO_SNDBUF),
    ):
        opt = getattr(socket, force, None)
        try:
            if opt is None:
                raise OSError
            sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        except OSError:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)


def _bind(family: int, host: str, port: int) -> socket.socket:
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
    return sock


class QuicListener:
    """A listening UDP socket; ``close`` refuses new connections and leaves the accepted
    ones alone (the socket closes when the last one ends)."""

    def __init__(self, endpoint: QuicEndpoint, transport: QuicTransport) -> None:
        self.endpoint = endpoint
        self._transport = transport

    @property
    def addrs(self) -> list[Multiaddr]:
        return [self.endpoint.local_addr]

    async def close(self) -> None:
        # The transport keeps the endpoint until its socket closes (``QuicTransport.close``
        # ends it early); dials no longer leave from it.
        self.endpoint.stop_listening()


class QuicTransport:
    """Listens and dials QUIC v1 with the libp2p TLS identity of ``key`` (the host binds
    its key with :meth:`bind_key` when the transport was made without one)."""

    #: Marker for the host: connections come out secured and multiplexed (no upgrade).
    secured = True

    def __init__(self, key: PrivateKey | None = None, settings: QuicSettings | None = None) -> None:
        # None: the defaults. The QUIC driver (``_aio.quic``) is imported by the first
        # listen or dial, so a host that never uses QUIC never loads it.
        self.settings = settings
        self._stream_cap: int | None = None
        self._key: PrivateKey | None = None
        self._identity: TlsIdentity | None = None
        if key is not None:
            self.bind_key(key)
        self._listeners: set[QuicEndpoint] = set()
        self._dialers: dict[int, QuicEndpoint] = {}

    def bind_key(self, key: PrivateKey) -> None:
        """Sets the identity the certificates prove (once; before listening or dialling).
        The certificate is made by the first listen or dial."""
        if self._key is None:
            self._key = key

    def cap_streams(self, n: int) -> None:
        """Caps the streams a peer may have open at once on one connection (the host's
        resource limits); only sockets opened afterwards follow it. Applied when the first
        socket opens, so a host that never uses QUIC never loads its driver."""
        self._stream_cap = n

    def _socket_settings(self) -> QuicSettings:
        """The settings a new socket gets: the configured ones under the stream cap."""
        from rapidp2p._aio.quic import QuicSettings

        settings = self.settings if self.settings is not None else QuicSettings()
        cap = self._stream_cap
        if cap is not None and 0 <= cap < settings.max_streams:
            kwargs = settings.kwargs()
            kwargs["max_streams"] = cap
            settings = QuicSettings(**kwargs)
        self.settings = settings
        return settings

    @property
    def identity(self) -> TlsIdentity:
        if self._identity is None:
            if self._key is None:
                raise TransportError("QUIC transport has no identity key (bind_key first)")
            from rapidp2p.security.tls import TlsIdentity

            self._identity = TlsIdentity(self._key)
        return self._identity

    # ---- the Transport interface (shape checks only) --------------------------------------

    def can_dial(self, addr: Multiaddr) -> bool:
        return is_quic_addr(addr)

    def can_listen(self, addr: Multiaddr) -> bool:
        return is_quic_addr(addr)

    async def listen(
        self, addr: Multiaddr, factory: ConnectionFactory, handler: InboundHandler
    ) -> QuicListener:
        _split(addr)
        raise TransportError("QUIC connections come secured: use listen_secured")

    async def dial(self, addr: Multiaddr, factory: ConnectionFactory) -> MuxedConnection:
        _split(addr)
        raise TransportError("QUIC connections come secured: use dial_secured")

    # ---- secured connections ----------------------------------------------------------------

    async def listen_secured(
        self, addr: Multiaddr, setup: Setup | None, handler: Callable[[QuicConnection], None]
    ) -> QuicListener:
        """Binds ``addr`` (``/udp/0``: an ephemeral port, reported by the listener)."""
        family, host, port = _split(addr)
        identity = self.identity
        sock = _bind(family, host, port)
        from rapidp2p._aio.quic import QuicEndpoint

        ep = QuicEndpoint(
            sock,
            identity,
            listen=True,
            settings=self._socket_settings(),
            setup=setup,
            on_connection=handler,
        )
        ep.on_closed = self._endpoint_closed
        self._listeners.add(ep)
        return QuicListener(ep, self)

    def _endpoint_closed(self, ep: QuicEndpoint) -> None:
        self._listeners.discard(ep)
        for fam, d in list(self._dialers.items()):
            if d is ep:
                del self._dialers[fam]

    def _dial_endpoint(self, family: int, host: str) -> QuicEndpoint:
        """A listening socket of the family that reaches ``host`` (same port for hole
        punching), else the shared dial-only socket."""
        ep = listening_endpoint_for(self._listeners, family, host)
        if ep is not None:
            return ep
        dialer = self._dialers.get(family)
        if dialer is None or dialer.is_closed:
            any_host = "0.0.0.0" if family == socket.AF_INET else "::"
            from rapidp2p._aio.quic import QuicEndpoint

            dialer = QuicEndpoint(
                _bind(family, any_host, 0),
                self.identity,
                listen=False,
                settings=self._socket_settings(),
            )
            dialer.on_closed = self._endpoint_closed
            self._dialers[family] = dialer
        return dialer

    async def dial_secured(
        self, addr: Multiaddr, peer_id: PeerId | None, setup: Setup | None = None
    ) -> QuicConnection:
        """Dials ``addr``; the handshake fails (PeerIdMismatch) unless the certificate proves
        ``peer_id`` (None: any peer). ``setup`` runs on the connection before its events."""
        family, host, port = _split(addr)
        if port == 0:
            raise TransportError(f"cannot dial port 0: {addr}")
        ep = self._dial_endpoint(family, host)
        return await ep.dial(host, port, peer_id, setup)

    def punch(self, addr: Multiaddr, data: bytes) -> bool:
        """Sends ``data`` (random bytes: DCUtR's hole punch) to ``addr`` from the listening
        socket a dial there would use, so the NAT mapping it opens is the one the remote's
        dial will meet. False when no listening socket fits or the send failed (the socket's
        buffer is full: the next packet will do)."""
        family, host, port = _split(addr)
        ep = self._dial_endpoint(family, host)
        if not ep.listening or port == 0:
            return False
        try:
            ep.sock.sendto(data, (host, port))
        except OSError:
            return False
        return True

    async def close(self) -> None:
        """Closes every socket and connection of this transport."""
        for ep in [*self._listeners, *self._dialers.values()]:
            with contextlib.suppress(OSError):
                ep.close()
        self._listeners.clear()
        self._dialers.clear()
