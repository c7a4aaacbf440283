"""Who is in the routing table, and what we know of their addresses (go-libp2p-kad-dht's
``dht.go`` peer handling): peers join when identify shows they serve the DHT protocol or when
they answer a request, leave when a request fails or they stop advertising it; routing-table
peers are tagged in the connection manager and kept by the peer store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rapidp2p.exceptions import DecodeError, Libp2pError
from rapidp2p.host.events import PeerIdentified, ProtocolsChanged
from rapidp2p.kad._proto import KadMessage, KadPeer, MessageType
from rapidp2p.peer import Multiaddr, PeerId

if TYPE_CHECKING:
    from rapidp2p.kad.dht import KadDHT

__all__ = ["KAD_TAG", "KAD_TAG_VALUE", "RoutingMembership"]

#: The connection-manager tag of routing-table peers (go-libp2p kad's "kbucket", value 5).
KAD_TAG = "kbucket"
KAD_TAG_VALUE = 5

_ADDR_CACHE_TTL = 30.0
_ADDR_CACHE_MAX = 4096


class RoutingMembership:
    """Routing-table membership and the peer-address cache of one DHT node."""

    def __init__(self, dht: KadDHT) -> None:
        self._dht = dht
        self._addr_cache: dict[PeerId, tuple[tuple[bytes, ...], float]] = {}

    # ---- addresses ---------------------------------------------------------------------

    def addrs(self, peer: PeerId) -> list[Multiaddr]:
        with contextlib.suppress(Exception):
            return list(self._dht.host.peerstore.addrs(peer))
        return []

    def addr_bytes(self, peer: PeerId) -> tuple[bytes, ...]:
        """The peer's addresses as bytes, cached briefly: answers list k peers each and a
        peerstore read is not free."""
        now = self._dht._loop_clock()
        hit = self._addr_cache.get(peer)
        if hit is not None and hit[1] > now:
            return hit[0]
        addrs = tuple(a.to_bytes() for a in self.addrs(peer))
        if len(self._addr_cache) >= _ADDR_CACHE_MAX:
            self._addr_cache.clear()
        self._addr_cache[peer] = (addrs, now + _ADDR_CACHE_TTL)
        return addrs

    def record_addrs(self, peer: PeerId, raw: Sequence[bytes]) -> None:
        """Stores addresses learned from the wire (unless the cache already has them all)."""
        dht = self._dht
        hit = self._addr_cache.get(peer)
        if hit is not None and hit[1] > dht._loop_clock() and set(raw) <= set(hit[0]):
            return
        addrs = []
        for a in raw:
            with contextlib.suppress(DecodeError, ValueError):
                addrs.append(Multiaddr.from_bytes(a))
        if addrs:
            with contextlib.suppress(Exception):
                dht.host.peerstore.add_addrs(peer, addrs, dht.config.learned_addr_ttl)
            self._addr_cache.pop(peer, None)

    # ---- membership --------------------------------------------------------------------

    def add(self, peer: PeerId) -> None:
        dht = self._dht
        if peer == dht.peer_id or dht.is_closed:
            return
        if dht.routing.update(peer, self.addrs(peer), self._check_alive):
            # The connection manager trims routing-table peers last.
            dht.host.connmgr.tag_peer(peer, KAD_TAG, KAD_TAG_VALUE)

    def remove(self, peer: PeerId) -> None:
        self._dht.routing.remove(peer)
        self._dht.host.connmgr.untag_peer(peer, KAD_TAG)

    def keeps(self, peer: PeerId) -> bool:
        """True for routing-table peers (the peer store keeps their data)."""
        return peer in self._dht.routing

    async def _check_alive(self, peer: PeerId) -> bool:
        dht = self._dht
        try:
            await asyncio.wait_for(
                dht.messenger.request(peer, KadMessage(MessageType.PING)),
                dht.config.check_timeout,
            )
        except (Libp2pError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            return False
        return True

    def learn(self, peers: Iterable[KadPeer]) -> list[bytes]:
        """Checks peer IDs, records addresses; returns the IDs worth asking."""
        dht = self._dht
        out: list[bytes] = []
        for kp in peers:
            try:
                pid = PeerId.from_bytes(kp.peer_id)
            except DecodeError:
                continue
            if pid == dht.peer_id:
                continue
            if kp.addrs:
                self.record_addrs(pid, kp.addrs)
            if kp.addrs or dht.host.is_connected(pid):
                out.append(pid.to_bytes())
        return out

    # ---- host events -------------------------------------------------------------------

    def on_identified(self, ev: PeerIdentified) -> None:
        if self._dht.protocol in ev.protocols:
            self.add(ev.peer_id)

    def on_protocols_changed(self, ev: ProtocolsChanged) -> None:
        dht = self._dht
        if ev.peer_id == dht.peer_id:
            return
        if dht.protocol in ev.added:
            self.add(ev.peer_id)
        elif dht.protocol in ev.removed:
            self.remove(ev.peer_id)
