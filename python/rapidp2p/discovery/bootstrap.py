"""A bootstrap list as a discovery source: dials the configured peers at start, and again
whenever the host's connected peers fall below ``min_peers`` (go-libp2p's bootstrap
behaviour in kubo). ``/dnsaddr`` entries are resolved first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from rapidp2p.discovery.base import DiscoveryFeed
from rapidp2p.discovery.dnsaddr import DnsaddrError, DnsaddrResolver, is_dnsaddr
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = ["BootstrapSource", "group_by_peer"]

log = logging.getLogger(__name__)


def group_by_peer(addrs: Iterable[Multiaddr]) -> list[PeerInfo]:
    """``.../p2p/<id>`` addresses grouped into one PeerInfo per peer (addresses without a
    peer ID are skipped: a bootstrap peer must be authenticated)."""
    peers: dict[PeerId, list[Multiaddr]] = {}
    for addr in addrs:
        rest, pid = addr.split_peer_id()
        if pid is None or rest is None:
            continue
        peers.setdefault(pid, [])
        if rest not in peers[pid]:
            peers[pid].append(rest)
    return [PeerInfo(p, a) for p, a in peers.items()]


class BootstrapSource:
    """Resolves and dials a fixed list of peers (``name = "bootstrap"``)."""

    name = "bootstrap"
    protocols: tuple[str, ...] = ()

    def __init__(
        self,
        addrs: Iterable[Multiaddr | str],
        *,
        resolver: DnsaddrResolver | None = None,
        min_peers: int = 4,
        check_interval: float = 30.0,
        dial_timeout: float = 10.0,
    ) -> None:
        self.addrs = [a if isinstance(a, Multiaddr) else Multiaddr(a) for a in addrs]
        self.resolver = resolver or DnsaddrResolver()
        self.min_peers = min_peers
        self.check_interval = check_interval
        self.dial_timeout = dial_timeout
        self.feed = DiscoveryFeed(self.name)
        self._host: Host | None = None
        self._task: asyncio.Task[None] | None = None
        #: Peer IDs connected by the last round (for the CLI and tests).
        self.connected: set[PeerId] = set()

    def __aiter__(self) -> AsyncIterator[PeerInfo]:
        return self.feed.subscribe()

    async def resolve(self) -> list[PeerInfo]:
        """The list, ``/dnsaddr`` entries resolved, grouped by peer."""
        flat: list[Multiaddr] = []
        for addr in self.addrs:
            if is_dnsaddr(addr):
                try:
                    flat += await self.resolver.resolve(addr)
                except DnsaddrError as exc:
                    log.warning("bootstrap: cannot resolve %s: %s", addr, exc)
            else:
                flat.append(addr)
        return group_by_peer(flat)

    def on_connection(self, conn: object) -> None:
        """Nothing to do per connection (a discovery source only dials)."""

    async def start(self, host: Host) -> None:
        self._host = host
        self.feed.attach(host)
        await host.add_service(self)  # registers first: the nested start is skipped
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def bootstrap_once(self) -> int:
        """Resolves the list and dials every peer not yet connected; returns how many are
        connected afterwards."""
        host = self._host
        assert host is not None
        peers = await self.resolve()
        for info in peers:
            self.feed.found(info)

        async def dial(info: PeerInfo) -> None:
            try:
                await host.connect(info, timeout=self.dial_timeout)
                self.connected.add(info.peer_id)
            except Exception as exc:
                log.info("bootstrap: %s unreachable: %s", info.peer_id, exc)

        await asyncio.gather(*(dial(p) for p in peers if not host.is_connected(p.peer_id)))
        return sum(1 for p in peers if host.is_connected(p.peer_id))

    async def _run(self) -> None:
        host = self._host
        assert host is not None
        while True:
            if len({c.remote_peer for c in host.connections()}) < self.min_peers:
                await self.bootstrap_once()
            await asyncio.sleep(self.check_interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.feed.close()
