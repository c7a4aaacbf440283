"""What every transport offers the host: listen and dial, yielding raw connections.

A transport only moves bytes. It hands the host a :class:`MuxedConnection` still in its raw
phase; the host's upgrader secures and multiplexes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from rapidp2p._aio.connection import MuxedConnection

if TYPE_CHECKING:
    from rapidp2p.peer import Multiaddr

__all__ = ["ConnectionFactory", "InboundHandler", "Listener", "Transport", "parse_components"]

#: Builds the protocol object for a new socket (the host decides its limits).
ConnectionFactory = Callable[[], MuxedConnection]
#: Called with each accepted raw connection (already connected).
InboundHandler = Callable[[MuxedConnection], None]


class Listener(Protocol):
    """A bound listener; ``addrs`` carry the real port (never ``/tcp/0``)."""

    @property
    def addrs(self) -> list[Multiaddr]: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    """A way to reach peers: ``can_dial``/``can_listen`` decide by the multiaddr's shape."""

    def can_dial(self, addr: Multiaddr) -> bool: ...

    def can_listen(self, addr: Multiaddr) -> bool: ...

    async def listen(
        self, addr: Multiaddr, factory: ConnectionFactory, handler: InboundHandler
    ) -> Listener: ...

    async def dial(self, addr: Multiaddr, factory: ConnectionFactory) -> MuxedConnection: ...


def parse_components(addr: Multiaddr | str) -> list[tuple[str, str]]:
    """``/ip4/1.2.3.4/tcp/5`` -> ``[("ip4", "1.2.3.4"), ("tcp", "5")]``.

    The components come from the Rust multiaddr codec (``_core.wire.multiaddr_components``,
    its table of protocols), so a protocol without a value gets ``""`` and a path value
    (``/unix/...``) stays whole. Raises MultiaddrError for text that is not a multiaddr.
    """
    from rapidp2p.peer import Multiaddr

    ma = addr if isinstance(addr, Multiaddr) else Multiaddr(addr)
    return [(name, value or "") for name, value in ma.items()]


def udp_socket_address(comps: list[tuple[str, str]], addr: Multiaddr) -> tuple[int, str, int]:
    """``(family, host, port)`` of ``/ip4|ip6/<host>/udp/<port>/...`` whose first two
    components the caller has checked; the one reading of a UDP port shared by QUIC,
    WebTransport and WebRTC-direct. Raises TransportError for a port out of range."""
    import socket

    from rapidp2p.exceptions import TransportError

    try:
        port = int(comps[1][1])
    except ValueError:
        raise TransportError(f"bad UDP port in {addr}") from None
    if not 0 <= port <= 65535:
        raise TransportError(f"bad UDP port in {addr}")
    family = socket.AF_INET if comps[0][0] == "ip4" else socket.AF_INET6
    return family, comps[0][1], port
