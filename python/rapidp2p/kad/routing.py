"""The routing table in PeerId terms, over the Rust ``_core.kad.RoutingTable``.

Adds what the Rust table leaves to its caller: PeerId objects, the network group of a peer
for the diversity filter, and the liveness check of a full bucket's least-recently-seen
peer (the caller supplies the async ``check``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from rapidp2p import _core
from rapidp2p.peer import Multiaddr, PeerId

__all__ = ["RoutingTable", "network_group"]

Check = Callable[[PeerId], Awaitable[bool]]


def network_group(addrs: Iterable[Multiaddr]) -> bytes | None:
    """The /16 of the first IPv4 address or the /32 of the first IPv6 one."""
    for a in addrs:
        for name, value in a.items():
            if name == "ip4" and value:
                return b"4" + ipaddress.IPv4Address(value).packed[:2]
            if name == "ip6" and value:
                return b"6" + ipaddress.IPv6Address(value).packed[:4]
    return None


class RoutingTable:
    def __init__(
        self,
        local: PeerId,
        k: int = 20,
        *,
        diversity: bool = False,
        clock: Callable[[], float],
    ) -> None:
        self.local = local
        self._clock = clock
        self._rt = _core.kad.RoutingTable(
            local.to_bytes(),
            k,
            2 if diversity else None,
            3 if diversity else None,
            clock(),
        )
        self.diversity = diversity
        self._checks: set[asyncio.Task[None]] = set()

    @property
    def raw(self) -> _core.kad.RoutingTable:
        return self._rt

    def __len__(self) -> int:
        return len(self._rt)

    def __contains__(self, peer: PeerId) -> bool:
        return peer.to_bytes() in self._rt

    def peers(self) -> list[PeerId]:
        return [PeerId._trusted(p) for p in self._rt.peers()]

    def closest(self, key: bytes, n: int) -> list[PeerId]:
        """Up to ``n`` peers closest to SHA-256(``key``)."""
        return [PeerId._trusted(p) for p in self._rt.closest_to(key, n)]

    def update(
        self, peer: PeerId, addrs: Iterable[Multiaddr] = (), check: Check | None = None
    ) -> bool:
        """``peer`` was seen alive; True if it is in the table now. A full bucket asks
        ``check`` about its least-recently-seen peer (in a task) before evicting it."""
        group = network_group(addrs) if self.diversity else None
        code, lrs = self._rt.update(peer.to_bytes(), self._clock(), group)
        if code == _core.kad.UPDATE_PENDING and lrs is not None and check is not None:
            task = asyncio.ensure_future(self._check(PeerId._trusted(lrs), check))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)
        return code in (_core.kad.UPDATE_INSERTED, _core.kad.UPDATE_REFRESHED)

    async def _check(self, lrs: PeerId, check: Check) -> None:
        alive = False
        with contextlib.suppress(Exception):
            alive = await check(lrs)
        self._rt.resolve_pending(lrs.to_bytes(), alive, self._clock())

    def remove(self, peer: PeerId) -> None:
        self._rt.remove(peer.to_bytes())

    def stale_buckets(self, interval: float, max_cpl: int) -> list[int]:
        return list(self._rt.stale_buckets(self._clock(), interval, max_cpl))

    def random_id_in_bucket(self, bucket: int, seed: int) -> bytes | None:
        return self._rt.random_peer_id_in_bucket(bucket, seed & 0xFFFFFFFFFFFFFFFF)

    def mark_refreshed(self, bucket: int) -> None:
        self._rt.mark_refreshed(bucket, self._clock())

    def touch(self, key: bytes) -> None:
        """A lookup for SHA-256(``key``) ran: its bucket counts as refreshed."""
        self._rt.touch(_core.kad.key(key), self._clock())

    def close(self) -> None:
        for t in self._checks:
            t.cancel()
