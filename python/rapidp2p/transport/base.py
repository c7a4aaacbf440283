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
    """``/ip4/1.2.3.4/tcp/5`` -> ``[("ip4", "1.2.3.4"), ("tcp", "5")]`` (from the text form).

    Reads the canonical text so it depends on nothing but ``str(addr)``; protocols without a
    value (none of the ones the transports read) get ``""``.
    """
    parts = str(addr).split("/")[1:]
    out: list[tuple[str, str]] = []
    valueless = {"quic", "quic-v1", "ws", "wss", "tls", "noise", "webrtc", "p2p-circuit", "http"}
    i = 0
    while i < len(parts):
        name = parts[i]
        if name in valueless:
            out.append((name, ""))
            i += 1
        else:
            out.append((name, parts[i + 1] if i + 1 < len(parts) else ""))
            i += 2
    return out
