"""The connection gater: application hooks that veto connections at each step.

go-libp2p's ``ConnectionGater`` shape. The host asks, in order:

- ``intercept_peer_dial(peer)`` and ``intercept_addr_dial(peer, addr)`` before dialing;
- ``intercept_accept(local_addr, remote_addr)`` when a socket is accepted (before any
  handshake work: the cheapest point to drop it);
- ``intercept_secured(direction, peer, remote_addr)`` once the security handshake proved the
  remote's peer ID;
- ``intercept_upgraded(conn)`` once the muxer runs, before the connection is used.

A False answer refuses that dial or connection (a :class:`~rapidp2p.exceptions.ConnectionGated`
error for dials), never anything else. :class:`AllowAll` answers True everywhere (subclass it
and override what you need); :class:`ListGater` denies (or allows only) listed peers and
networks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rapidp2p.resources.allowlist import Allowlist

if TYPE_CHECKING:
    from rapidp2p.peer import Multiaddr, PeerId
    from rapidp2p.transport.contracts import Connection

__all__ = ["AllowAll", "ConnectionGater", "ListGater"]


@runtime_checkable
class ConnectionGater(Protocol):
    """What a gater implements (every hook returns True to allow)."""

    def intercept_peer_dial(self, peer: PeerId) -> bool: ...

    def intercept_addr_dial(self, peer: PeerId | None, addr: Multiaddr) -> bool: ...

    def intercept_accept(
        self, local_addr: Multiaddr | None, remote_addr: Multiaddr | None
    ) -> bool: ...

    def intercept_secured(
        self, direction: str, peer: PeerId, remote_addr: Multiaddr | None
    ) -> bool: ...

    def intercept_upgraded(self, conn: Connection) -> bool: ...


class AllowAll:
    """Allows everything; a base class for gaters that override some hooks."""

    def intercept_peer_dial(self, peer: PeerId) -> bool:
        return True

    def intercept_addr_dial(self, peer: PeerId | None, addr: Multiaddr) -> bool:
        return True

    def intercept_accept(self, local_addr: Multiaddr | None, remote_addr: Multiaddr | None) -> bool:
        return True

    def intercept_secured(
        self, direction: str, peer: PeerId, remote_addr: Multiaddr | None
    ) -> bool:
        return True

    def intercept_upgraded(self, conn: Connection) -> bool:
        return True


def _ip_of(addr: Any) -> str | None:
    if addr is None:
        return None
    parts = str(addr).split("/")
    if len(parts) > 2 and parts[1] in ("ip4", "ip6"):
        return parts[2]
    return None


class ListGater(AllowAll):
    """Denies listed peers and networks (CIDRs or ``/ip4|ip6`` multiaddrs); with
    ``allow_only=True`` the lists name the only peers and networks allowed instead. A peer
    rule applies where the peer is known (dial, secured), a network rule where an address
    is (dial, accept, secured)."""

    def __init__(
        self,
        peers: Iterable[PeerId] = (),
        networks: Iterable[object] = (),
        *,
        allow_only: bool = False,
    ) -> None:
        self.peers: set[Any] = set(peers)
        self.networks = Allowlist(networks)
        self.allow_only = allow_only

    def block_peer(self, peer: PeerId) -> None:
        self.peers.add(peer)

    def unblock_peer(self, peer: PeerId) -> None:
        self.peers.discard(peer)

    def block_network(self, network: object) -> None:
        self.networks.add(network)

    def _peer_ok(self, peer: PeerId | None) -> bool:
        if peer is None or (self.allow_only and not self.peers):
            return True
        return (peer in self.peers) == self.allow_only

    def _addr_ok(self, addr: Any) -> bool:
        ip = _ip_of(addr)
        if ip is None or (self.allow_only and not self.networks.networks):
            return True
        return self.networks.allows(ip) == self.allow_only

    def intercept_peer_dial(self, peer: PeerId) -> bool:
        return self._peer_ok(peer)

    def intercept_addr_dial(self, peer: PeerId | None, addr: Multiaddr) -> bool:
        return self._peer_ok(peer) and self._addr_ok(addr)

    def intercept_accept(self, local_addr: Multiaddr | None, remote_addr: Multiaddr | None) -> bool:
        return self._addr_ok(remote_addr)

    def intercept_secured(
        self, direction: str, peer: PeerId, remote_addr: Multiaddr | None
    ) -> bool:
        return self._peer_ok(peer) and self._addr_ok(remote_addr)
