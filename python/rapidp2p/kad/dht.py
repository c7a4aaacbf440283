"""The Kademlia DHT service on a :class:`~rapidp2p.host.Host` (``/ipfs/kad/1.0.0``).

```python
dht = await host.add_service(KadDHT(host, KadConfig(mode="server")))  # or: await dht.start()
await dht.bootstrap(["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooW..."])
await dht.put_value(b"/pk/...", value)
async for provider in dht.find_providers(cid): ...
```

Server mode registers the stream handler, so identify advertises the protocol; client mode
registers nothing, so it never enters other nodes' routing tables. Peers enter ours only when
they advertise the protocol (identify) or answer one of our requests. One request per
outbound stream; an inbound stream may carry several (the spec's requirement).

This module is the service and its lifecycle; the work is split as go-libp2p-kad-dht splits
it: :mod:`~rapidp2p.kad.membership` (who is in the routing table),
:mod:`~rapidp2p.kad.rpc` (one request), :mod:`~rapidp2p.kad.handlers` (the server side),
:mod:`~rapidp2p.kad.operations` (lookups and the public operations),
:mod:`~rapidp2p.kad.maintenance` (refresh, expiry, republish) and :mod:`~rapidp2p.kad.store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rapidp2p.host.addrs import ip_scope
from rapidp2p.host.events import PeerConnected, PeerIdentified, ProtocolsChanged
from rapidp2p.host.service import ServiceBase
from rapidp2p.kad._proto import KadPeer
from rapidp2p.kad.config import KadConfig
from rapidp2p.kad.handlers import KadHandlers
from rapidp2p.kad.maintenance import Maintenance
from rapidp2p.kad.membership import KAD_TAG, KAD_TAG_VALUE, RoutingMembership
from rapidp2p.kad.operations import KadOperations, provider_key
from rapidp2p.kad.routing import RoutingTable
from rapidp2p.kad.rpc import Messenger
from rapidp2p.kad.store import (
    MemoryProviderStore,
    MemoryRecordStore,
    ProviderStore,
    RecordStore,
)
from rapidp2p.kad.validator import Validator, default_validator
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo

if TYPE_CHECKING:
    from rapidp2p.host import Host
    from rapidp2p.transport.contracts import Connection

__all__ = ["KAD_TAG", "KAD_TAG_VALUE", "KadDHT", "is_public_addr", "provider_key"]

log = logging.getLogger("rapidp2p.kad")


def is_public_addr(addr: Multiaddr) -> bool:
    """Whether ``addr`` is one other nodes on the internet could dial: a DNS name or a
    globally routable IP (not loopback, private, link-local, shared or unspecified)."""
    protos = addr.protocols()
    if not protos:
        return False
    first = str(protos[0].name)
    if first in ("dns", "dns4", "dns6", "dnsaddr"):
        host = addr.value_for_protocol(first) or ""
        return host != "localhost" and not host.endswith(".local")
    if first not in ("ip4", "ip6"):
        return False
    try:
        ip = ipaddress.ip_address(addr.value_for_protocol(first) or "")
    except ValueError:
        return False
    return ip.is_global and not ip.is_multicast


def _reachable_via(conn: Connection, our_addrs: Sequence[Multiaddr]) -> str | None:
    """Why ``conn`` shows that its peer can dial us back, or None.

    go-libp2p decides with AutoNAT (peers dial back); here AutoNAT's verdict arrives only
    through :meth:`KadDHT.set_reachable`, and on its own the DHT reasons from connections: an
    inbound connection proves a remote node dialled one of our addresses, and a peer met on
    loopback or a private network (an outbound connection) can dial our listen address of the
    same kind -- the local-network assumption go-libp2p's and js-libp2p's LAN DHT make when
    they always run as servers. A node behind NAT that only meets public peers stays a client.
    """
    if not our_addrs:
        return None  # not listening: nobody can dial us
    if conn.direction == "inbound":
        return "inbound connection"
    scope = ip_scope(conn.remote_addr)
    if scope in ("loopback", "private") and any(ip_scope(a) == scope for a in our_addrs):
        return f"peer on a {scope} address, and we listen on one"
    return None


class KadDHT(ServiceBase):
    """One DHT node, a host service: ``await host.add_service(KadDHT(host))`` (or ``await
    dht.start()``, or ``async with``) before use; it closes with the host, or on ``close()``.

    Defaults: ``KadConfig()`` (mode "auto": a server once reachable, which on a local network
    means as soon as it meets a peer there, see :class:`KadConfig`) and
    :func:`~rapidp2p.kad.validator.default_validator` (records only under ``/pk/``; pass
    ``validator=default_validator({"myapp": PermissiveValidator()})`` to store others). The
    ``rapidp2p`` CLI uses the same defaults.
    """

    def __init__(
        self,
        host: Host,
        config: KadConfig | None = None,
        *,
        validator: Validator | None = None,
        record_store: RecordStore | None = None,
        provider_store: ProviderStore | None = None,
    ) -> None:
        self.host = host
        self.config = config or KadConfig()
        if self.config.mode not in ("server", "client", "auto"):
            raise ValueError(f"unknown DHT mode {self.config.mode!r}")
        self.validator: Validator = validator or default_validator()
        # `is None`, not `or`: an empty store has len() 0 and would be replaced.
        self.records = record_store if record_store is not None else MemoryRecordStore()
        self.providers = provider_store if provider_store is not None else MemoryProviderStore()
        self.protocol = self.config.protocol
        #: What this node serves in server mode (nothing in client mode).
        self.protocols = (self.protocol,)
        self.service_name = "libp2p.kad"
        self.peer_id: PeerId = host.peer_id
        self._loop_clock: Callable[[], float] = time.monotonic
        #: Wall clock of record and provider times (stores keep them across restarts);
        #: replaceable so tests can move time forward.
        self._now: Callable[[], float] = time.time
        self.routing = RoutingTable(
            host.peer_id,
            self.config.k,
            diversity=self.config.diversity_filter,
            clock=self._loop_clock,
        )
        self.mode = "client"
        #: Whether this node is known to be dialable (auto mode serves once it is).
        self.reachable = False
        self._provided: dict[bytes, float] = {}  # key -> last announce (wall clock)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self._last_refresh = 0.0
        #: Hop counts of finished lookups (most recent last, bounded), for measurements.
        self.lookup_hops: list[int] = []
        #: The parts (see the module docstring).
        self.membership = RoutingMembership(self)
        self.messenger = Messenger(self)
        self.handlers = KadHandlers(self)
        self.operations = KadOperations(self)
        self.maintenance = Maintenance(self)
        if host.metrics is not None:
            host.metrics.watch_service(self)  # routing table size at scrape time

    # ---- lifecycle -----------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def _start(self) -> None:
        """Picks the mode, registers the handler (server) and the identify hooks."""
        mode = self.config.mode
        addrs = self.host.addrs
        self.reachable = any(is_public_addr(a) for a in addrs) or any(
            _reachable_via(c, addrs) is not None for c in self.host.connections()
        )
        if mode == "auto":
            mode = "server" if self.reachable else "client"
        self.set_mode(mode)
        self.host.events.on(PeerIdentified, self.membership.on_identified)
        self.host.events.on(ProtocolsChanged, self.membership.on_protocols_changed)
        self.host.events.on(PeerConnected, self._on_connected)
        # The peer store keeps what the routing table needs.
        self.host.add_peer_keeper(self.keeps_peer)
        me = self.peer_id.to_bytes()
        for key, entry in self.providers.provided_by(me, self._now()):
            # A persistent store remembers what we provide: keep republishing it.
            self._provided[key] = entry.expires - self.config.provider_ttl
        self._last_refresh = self._loop_clock()
        self._maintenance = asyncio.ensure_future(self.maintenance.run())

    def set_mode(self, mode: str) -> None:
        """Switches between "server" and "client" (identify-push tells connected peers)."""
        if mode not in ("server", "client"):
            raise ValueError(f"unknown DHT mode {mode!r}")
        self.mode = mode
        if mode == "server":
            # The host caps the inbound streams served at once per connection.
            self.host.set_stream_handler(
                self.protocol,
                self.handlers.handle,
                max_inbound_streams=self.config.max_inbound_streams_per_connection,
            )
        else:
            self.host.remove_stream_handler(self.protocol)

    def set_reachable(self, reachable: bool) -> None:
        """Tells the DHT whether other nodes can dial this one (e.g. from an AutoNAT probe or
        a port-forward the application knows of). In "auto" mode it switches to server when
        reachable and back to client when not; fixed modes only record it."""
        self.reachable = reachable
        if self.config.mode == "auto" and self._started and not self._closed:
            want = "server" if reachable else "client"
            if want != self.mode:
                log.info("kad auto mode: now %s", want)
                self.set_mode(want)

    def _on_connected(self, ev: PeerConnected) -> None:
        if self.reachable or self.config.mode != "auto" or self._closed:
            return
        reason = _reachable_via(ev.conn, self.host.addrs)
        if reason is not None:
            log.info("kad auto mode: reachable (%s)", reason)
            self.set_reachable(True)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.messenger.close()
        if self.mode == "server":
            with contextlib.suppress(Exception):
                self.host.remove_stream_handler(self.protocol)
        tasks = [t for t in (self._maintenance, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        self.routing.close()

    async def __aenter__(self) -> KadDHT:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def keeps_peer(self, peer: PeerId) -> bool:
        """True for routing-table peers (the peer store keeps their data)."""
        return self.membership.keeps(peer)

    # ---- public operations (see rapidp2p.kad.operations) ---------------------------------

    async def bootstrap(self, peers: Iterable[PeerInfo | Multiaddr | str] = ()) -> int:
        """Connects to ``peers``, asks each for our neighbourhood, then refreshes the table.
        Returns the table size; raises KadError if peers were given and none answered."""
        return await self.operations.bootstrap(peers)

    async def refresh(self) -> None:
        """A lookup of our own ID, then one random-ID lookup per stale bucket."""
        await self.operations.refresh()

    async def get_closest_peers(self, key: bytes | PeerId) -> list[PeerId]:
        """The k closest peers to ``key`` (peer IDs are looked up by their bytes)."""
        return await self.operations.get_closest_peers(key)

    async def find_peer(self, peer: PeerId) -> PeerInfo:
        """The addresses of ``peer``: from a live connection, else from a lookup."""
        return await self.operations.find_peer(peer)

    async def put_value(self, key: bytes, value: bytes) -> int:
        """Validates, stores locally, sends PUT_VALUE to the k closest peers; returns how
        many of them stored it."""
        return await self.operations.put_value(key, value)

    async def get_value(self, key: bytes, quorum: int | None = None) -> bytes:
        """The best valid value of ``key`` once ``quorum`` answers agree to look (the local
        copy counts as one); peers that returned worse values are sent the best."""
        return await self.operations.get_value(key, quorum)

    def _self_provider(self) -> KadPeer:
        return self.operations.self_provider()

    async def provide(self, key: bytes | str) -> int:
        """Announces this node as a provider of ``key`` (a CID text or raw key bytes) to the
        k closest peers; returns how many consumed the ADD_PROVIDER message (read it and
        closed their side of the stream), not merely how many it was written to."""
        return await self.operations.provide(key)

    def find_providers(self, key: bytes | str, count: int = 20) -> AsyncIterator[PeerInfo]:
        """Providers of ``key`` as they arrive (local ones first), up to ``count``."""
        return self.operations.find_providers(key, count)

    # ---- maintenance (see rapidp2p.kad.maintenance) ----------------------------------------

    async def maintain_once(self) -> None:
        """Refresh when due, expire stores, republish what we originated when due."""
        await self.maintenance.once()

    def provided_keys(self) -> list[bytes]:
        """Keys this node announces itself for and republishes."""
        return list(self._provided)

    def stop_providing(self, key: bytes | str) -> None:
        """Stops republishing ``key`` (remote records expire on their own)."""
        self._provided.pop(provider_key(key), None)

    def closest_local(self, key: bytes, n: int | None = None) -> Sequence[PeerId]:
        """The closest peers to SHA-256(``key``) in our own table."""
        return self.routing.closest(key, n or self.config.k)
