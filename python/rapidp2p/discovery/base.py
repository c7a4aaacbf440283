"""The discovery interface: sources of :class:`PeerInfo`, as async iterators and host events.

Every source (mDNS, rendezvous, bootstrap lists, delegated routing) owns a
:class:`DiscoveryFeed`. What it finds goes to every ``async for`` over the source (each with its
own bounded queue; a slow reader loses its oldest finds, never blocks the source) and, once the
source is started on a host, to ``host.events`` as :class:`PeerDiscovered`. An
:class:`AutoDialer` turns those events into connections, up to a target count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rapidp2p.host.events import Event, Subscription
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = [
    "AutoDialer",
    "DiscoveryFeed",
    "DiscoverySource",
    "PeerDiscovered",
]

log = logging.getLogger(__name__)

#: How long addresses learned by discovery stay in the peerstore (go-libp2p's TempAddrTTL is
#: 2 minutes; discovered LAN peers are re-announced well within 10).
DISCOVERED_ADDR_TTL = 600.0


@dataclass(frozen=True)
class PeerDiscovered(Event):
    """A discovery source found ``peer_id`` at ``addrs``; ``source`` names it ("mdns", ...)."""

    addrs: tuple[Multiaddr, ...] = ()
    source: str = ""


@runtime_checkable
class DiscoverySource(Protocol):
    """What every discovery source offers: a name, an async iterator of finds, a lifecycle."""

    name: str

    def __aiter__(self) -> AsyncIterator[PeerInfo]: ...

    async def start(self, host: Host) -> None: ...

    async def close(self) -> None: ...


class _Reader:
    """One ``async for`` over a feed: a bounded queue; None marks the end."""

    def __init__(self, feed: DiscoveryFeed, maxsize: int) -> None:
        self._feed = feed
        self._queue: asyncio.Queue[PeerInfo | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, info: PeerInfo | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(info)

    def __aiter__(self) -> _Reader:
        return self

    async def __anext__(self) -> PeerInfo:
        info = await self._queue.get()
        if info is None:
            self._feed._readers.discard(self)
            raise StopAsyncIteration
        return info

    async def aclose(self) -> None:
        self._feed._readers.discard(self)


class DiscoveryFeed:
    """Fan-out of one source's finds to its readers and its host's event bus."""

    def __init__(self, source: str, *, maxsize: int = 256) -> None:
        self.source = source
        self.maxsize = maxsize
        self._readers: set[_Reader] = set()
        self._host: Host | None = None
        self._closed = False
        #: Finds delivered so far (for ``rapidp2p peers`` and tests).
        self.found_count = 0

    def attach(self, host: Host) -> None:
        """Finds are emitted on ``host.events`` and their addresses kept in its peerstore."""
        self._host = host

    def subscribe(self) -> _Reader:
        reader = _Reader(self, self.maxsize)
        if self._closed:
            reader.offer(None)
        else:
            self._readers.add(reader)
        return reader

    def found(self, info: PeerInfo) -> None:
        """Delivers one find (never our own peer, never one without addresses)."""
        if self._closed or not info.addrs:
            return
        host = self._host
        if host is not None:
            if info.peer_id == host.peer_id:
                return
            host.peerstore.add_addrs(info.peer_id, info.addrs, DISCOVERED_ADDR_TTL)
            host.events.emit(PeerDiscovered(info.peer_id, tuple(info.addrs), self.source))
        self.found_count += 1
        for reader in list(self._readers):
            reader.offer(PeerInfo(info.peer_id, info.addrs))

    def close(self) -> None:
        """Ends every reader's iteration."""
        if self._closed:
            return
        self._closed = True
        for reader in list(self._readers):
            reader.offer(None)
        self._readers.clear()


class AutoDialer:
    """Dials discovered peers while the host has fewer than ``target`` connected peers.

    One dial per peer at a time, at most ``concurrency`` at once; a peer that failed is not
    retried for ``retry_after`` seconds. The connection manager still trims above its high
    watermark, so ``target`` should stay below it (go-libp2p's backoff connector does the same).
    """

    def __init__(
        self,
        target: int = 8,
        *,
        concurrency: int = 4,
        dial_timeout: float = 10.0,
        retry_after: float = 60.0,
    ) -> None:
        self.target = target
        self.concurrency = concurrency
        self.dial_timeout = dial_timeout
        self.retry_after = retry_after
        self.protocols: tuple[str, ...] = ()
        self._host: Host | None = None
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._dialing: dict[PeerId, asyncio.Task[None]] = {}
        self._failed: dict[PeerId, float] = {}
        #: Peers this dialer connected (for ``rapidp2p peers``).
        self.connected: list[PeerId] = []

    async def start(self, host: Host) -> None:
        self._host = host
        self._sub = host.events.subscribe(PeerDiscovered)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _connected_peers(self) -> int:
        assert self._host is not None
        return len({c.remote_peer for c in self._host.connections()})

    async def _run(self) -> None:
        assert self._sub is not None
        async for event in self._sub:
            assert isinstance(event, PeerDiscovered)
            self.consider(event.peer_id, event.addrs)

    def consider(self, peer_id: PeerId, addrs: tuple[Multiaddr, ...]) -> None:
        """Starts a dial to ``peer_id`` if the host is below target and nothing forbids it."""
        host = self._host
        if host is None or peer_id == host.peer_id or host.is_connected(peer_id):
            return
        if peer_id in self._dialing or len(self._dialing) >= self.concurrency:
            return
        if self._connected_peers() + len(self._dialing) >= self.target:
            return
        loop = asyncio.get_running_loop()
        failed_at = self._failed.get(peer_id)
        if failed_at is not None and loop.time() - failed_at < self.retry_after:
            return
        self._dialing[peer_id] = loop.create_task(self._dial(peer_id, addrs))

    async def _dial(self, peer_id: PeerId, addrs: tuple[Multiaddr, ...]) -> None:
        assert self._host is not None
        try:
            await self._host.connect(PeerInfo(peer_id, addrs), timeout=self.dial_timeout)
            self.connected.append(peer_id)
            del self.connected[:-1024]
        except Exception as exc:
            log.debug("auto-dial of discovered %s failed: %s", peer_id, exc)
            self._failed[peer_id] = asyncio.get_running_loop().time()
            if len(self._failed) > 4096:
                self._failed.pop(next(iter(self._failed)))
        finally:
            self._dialing.pop(peer_id, None)

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
        tasks: list[asyncio.Task[Any]] = list(self._dialing.values())
        if self._task is not None:
            tasks.append(self._task)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._dialing.clear()
