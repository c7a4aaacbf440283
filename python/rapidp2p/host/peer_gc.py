"""Peer store lifecycle: forget what we learned about peers that left.

Like go-libp2p's peer store manager: when a peer's last connection closes, its data (key,
addresses, protocols, records) is removed after ``grace`` seconds unless a keeper says to
keep it: connected again, tagged or protected in the connection manager, or in the Kademlia
routing table (services register keepers with :meth:`Host.add_peer_keeper`). Peer stores
that record write times (memory, SQLite) also forget, every ``expire_interval``, peers not
written for ``max_age`` seconds that nobody keeps: entries persisted by an earlier run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rapidp2p.peerstore import PeerStore

__all__ = ["PeerGC", "PeerGCConfig"]

Keeper = Callable[[Any], bool]


@dataclass
class PeerGCConfig:
    """Seconds; ``grace`` None keeps disconnected peers' data forever."""

    grace: float | None = 15 * 60.0
    max_age: float | None = 24 * 3600.0
    expire_interval: float = 600.0


class PeerGC:
    """Tracks disconnected peers and forgets them once their grace period ends."""

    def __init__(
        self,
        peerstore: PeerStore,
        config: PeerGCConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.peerstore = peerstore
        self.config = config
        self._clock = clock
        self.keepers: list[Keeper] = []
        #: Called with each peer forgotten after its grace period (the connection manager
        #: drops its tags).
        self.on_forget: list[Callable[[Any], None]] = []
        self._gone: dict[Any, float] = {}  # peer -> when its last connection closed
        self._next_expire = clock() + config.expire_interval
        #: Peers forgotten so far (for metrics).
        self.forgotten = 0

    def keep(self, peer: Any) -> bool:
        return any(k(peer) for k in self.keepers)

    def connected(self, peer: Any) -> None:
        self._gone.pop(peer, None)

    def disconnected(self, peer: Any) -> None:
        if self.config.grace is not None:
            self._gone[peer] = self._clock()

    def run(self) -> int:
        """Forgets every peer whose grace period ended and nobody keeps; returns how many."""
        grace = self.config.grace
        now = self._clock()
        n = 0
        if grace is not None and self._gone:
            for peer, at in list(self._gone.items()):
                if now - at < grace:
                    break  # oldest first: the rest are younger
                del self._gone[peer]
                if self.keep(peer):
                    continue
                self.peerstore.remove_peer(peer)
                n += 1
                for cb in self.on_forget:
                    cb(peer)
        max_age = self.config.max_age
        if max_age is not None and now >= self._next_expire:
            self._next_expire = now + self.config.expire_interval
            n += int(self.peerstore.expire(max_age, self.keep))
        self.forgotten += n
        return n
