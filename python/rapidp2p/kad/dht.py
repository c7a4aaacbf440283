"""The Kademlia DHT service on a :class:`~rapidp2p.host.Host` (``/ipfs/kad/1.0.0``).

```python
dht = KadDHT(host, KadConfig(mode="server"))
await dht.start()
await dht.bootstrap(["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooW..."])
await dht.put_value(b"/pk/...", value)
async for provider in dht.find_providers(cid): ...
```

Server mode registers the stream handler, so identify advertises the protocol; client mode
registers nothing, so it never enters other nodes' routing tables. Peers enter ours only when
they advertise the protocol (identify) or answer one of our requests. One request per
outbound stream; an inbound stream may carry several (the spec's requirement).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rapidp2p import _core
from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import (
    CidError,
    DecodeError,
    FrameTooLarge,
    InvalidRecordError,
    KadError,
    KadNotFoundError,
    Libp2pError,
    PeerIdMismatch,
    ProtocolNotSupported,
    RemoteProtocolError,
)
from rapidp2p.host.addrs import ip_scope
from rapidp2p.host.events import PeerConnected, PeerIdentified, ProtocolsChanged
from rapidp2p.kad._proto import ConnectionType, KadMessage, KadPeer, KadRecord, MessageType
from rapidp2p.kad.config import KadConfig
from rapidp2p.kad.lookup import LookupResult, run_lookup
from rapidp2p.kad.routing import RoutingTable
from rapidp2p.kad.store import (
    MemoryProviderStore,
    MemoryRecordStore,
    ProviderEntry,
    ProviderStore,
    RecordStore,
    StoredRecord,
)
from rapidp2p.kad.validator import Validator, default_validator
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo
from rapidp2p.peer._text import bad_cid
from rapidp2p.protocols.framing import encode_delimited, read_delimited

if TYPE_CHECKING:
    from rapidp2p.host import Host

__all__ = ["KadDHT", "is_public_addr", "provider_key"]

log = logging.getLogger("rapidp2p.kad")

#: The connection-manager tag of routing-table peers (go-libp2p kad's "kbucket", value 5).
KAD_TAG = "kbucket"
KAD_TAG_VALUE = 5

_ADDR_CACHE_TTL = 30.0


#: Metric label of a lookup, by the message it sends (rust-libp2p's query types).
_QUERY_TYPES: dict[int, str] = {
    MessageType.FIND_NODE: "get_closest_peers",
    MessageType.GET_VALUE: "get_record",
    MessageType.GET_PROVIDERS: "get_providers",
}
#: Metric label of an inbound request.
_REQUEST_NAMES: dict[int, str] = {t: t.name.lower() for t in MessageType}


def provider_key(key: bytes | str) -> bytes:
    """The kad key of content: a CID's multihash (go-libp2p-kad-dht keys providers by the
    multihash, so CIDv0 and CIDv1 of the same content meet); raw bytes are used as given."""
    if isinstance(key, bytes):
        return key
    try:
        decoded = _core.wire.cid_decode(key)
    except DecodeError as exc:
        raise CidError(bad_cid(key, exc)) from None
    return bytes(decoded[-1])


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


def _reachable_via(conn: object, our_addrs: Sequence[Multiaddr]) -> str | None:
    """Why ``conn`` shows that its peer can dial us back, or None.

    go-libp2p decides with AutoNAT (peers dial back); rapidp2p has no AutoNAT yet, so: an
    inbound connection proves a remote node dialled one of our addresses, and a peer met on
    loopback or a private network (an outbound connection) can dial our listen address of the
    same kind -- the local-network assumption go-libp2p's and js-libp2p's LAN DHT make when
    they always run as servers. A node behind NAT that only meets public peers stays a client.
    """
    if not our_addrs:
        return None  # not listening: nobody can dial us
    if getattr(conn, "direction", None) == "inbound":
        return "inbound connection"
    scope = ip_scope(getattr(conn, "remote_addr", None))
    if scope in ("loopback", "private") and any(ip_scope(a) == scope for a in our_addrs):
        return f"peer on a {scope} address, and we listen on one"
    return None


def _bootstrap_failure(peer: object, exc: BaseException, protocol: str) -> str:
    """Why one bootstrap peer failed, in words: a peer-ID mismatch is named as such."""
    errors = [exc, *getattr(exc, "errors", {}).values()]
    for err in errors:
        if isinstance(err, PeerIdMismatch):
            return f"{peer}: peer id mismatch ({err})"
    if isinstance(exc, ProtocolNotSupported):
        return f"{peer}: does not serve {protocol} (not a DHT server, or another DHT protocol)"
    if isinstance(exc, asyncio.TimeoutError):
        return f"{peer}: no answer in time"
    return str(exc) if str(peer) in str(exc) else f"{peer}: {exc}"


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KadDHT:
    """One DHT node. ``start()`` before use, ``close()`` after (or ``async with``).

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
        self._inbound: dict[Any, int] = {}
        self._addr_cache: dict[PeerId, tuple[tuple[bytes, ...], float]] = {}
        self._provided: dict[bytes, float] = {}  # key -> last announce (wall clock)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self._last_refresh = 0.0
        self._started = False
        self._closed = False
        #: Hop counts of finished lookups (most recent last, bounded), for measurements.
        self.lookup_hops: list[int] = []
        if host.metrics is not None:
            host.metrics.watch_service(self)  # routing table size at scrape time

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Picks the mode, registers the handler (server) and the identify hooks."""
        if self._started:
            return
        self._started = True
        mode = self.config.mode
        addrs = self.host.addrs
        self.reachable = any(is_public_addr(a) for a in addrs) or any(
            _reachable_via(c, addrs) is not None for c in self.host.connections()
        )
        if mode == "auto":
            mode = "server" if self.reachable else "client"
        self.set_mode(mode)
        self.host.events.on(PeerIdentified, self._on_identified)
        self.host.events.on(ProtocolsChanged, self._on_protocols_changed)
        self.host.events.on(PeerConnected, self._on_connected)
        add_keeper = getattr(self.host, "add_peer_keeper", None)
        if add_keeper is not None:  # the peer store keeps what the routing table needs
            add_keeper(self.keeps_peer)
        me = self.peer_id.to_bytes()
        for key, entry in self.providers.provided_by(me, self._now()):
            # A persistent store remembers what we provide: keep republishing it.
            self._provided[key] = entry.expires - self.config.provider_ttl
        self._last_refresh = self._loop_clock()
        self._maintenance = asyncio.ensure_future(self._maintain())

    def set_mode(self, mode: str) -> None:
        """Switches between "server" and "client" (identify-push tells connected peers)."""
        if mode not in ("server", "client"):
            raise ValueError(f"unknown DHT mode {mode!r}")
        self.mode = mode
        if mode == "server":
            self.host.set_stream_handler(self.protocol, self._handle)
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

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- routing table membership --------------------------------------------------------

    def _addrs(self, peer: PeerId) -> list[Multiaddr]:
        with contextlib.suppress(Exception):
            return list(self.host.peerstore.addrs(peer))
        return []

    def _addr_bytes(self, peer: PeerId) -> tuple[bytes, ...]:
        """The peer's addresses as bytes, cached briefly: answers list k peers each and a
        peerstore read is not free."""
        now = self._loop_clock()
        hit = self._addr_cache.get(peer)
        if hit is not None and hit[1] > now:
            return hit[0]
        addrs = tuple(a.to_bytes() for a in self._addrs(peer))
        if len(self._addr_cache) >= 4096:
            self._addr_cache.clear()
        self._addr_cache[peer] = (addrs, now + _ADDR_CACHE_TTL)
        return addrs

    def _record_addrs(self, peer: PeerId, raw: Sequence[bytes]) -> None:
        """Stores addresses learned from the wire (unless the cache already has them all)."""
        hit = self._addr_cache.get(peer)
        if hit is not None and hit[1] > self._loop_clock() and set(raw) <= set(hit[0]):
            return
        addrs = []
        for a in raw:
            with contextlib.suppress(DecodeError, ValueError):
                addrs.append(Multiaddr.from_bytes(a))
        if addrs:
            with contextlib.suppress(Exception):
                self.host.peerstore.add_addrs(peer, addrs, self.config.learned_addr_ttl)
            self._addr_cache.pop(peer, None)

    def _add_peer(self, peer: PeerId) -> None:
        if peer == self.peer_id or self._closed:
            return
        if self.routing.update(peer, self._addrs(peer), self._check_alive):
            cm = getattr(self.host, "connmgr", None)
            if cm is not None:  # the connection manager trims routing-table peers last
                cm.tag_peer(peer, KAD_TAG, KAD_TAG_VALUE)

    def _remove_peer(self, peer: PeerId) -> None:
        self.routing.remove(peer)
        cm = getattr(self.host, "connmgr", None)
        if cm is not None:
            cm.untag_peer(peer, KAD_TAG)

    def keeps_peer(self, peer: PeerId) -> bool:
        """True for routing-table peers (the peer store keeps their data)."""
        return peer in self.routing

    async def _check_alive(self, peer: PeerId) -> bool:
        try:
            await asyncio.wait_for(
                self._rpc(peer, KadMessage(MessageType.PING)), self.config.check_timeout
            )
        except (Libp2pError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            return False
        return True

    def _on_identified(self, ev: PeerIdentified) -> None:
        if self.protocol in ev.protocols:
            self._add_peer(ev.peer_id)

    def _on_protocols_changed(self, ev: ProtocolsChanged) -> None:
        if ev.peer_id == self.peer_id:
            return
        if self.protocol in ev.added:
            self._add_peer(ev.peer_id)
        elif self.protocol in ev.removed:
            self._remove_peer(ev.peer_id)

    def _learn(self, peers: Iterable[KadPeer]) -> list[bytes]:
        """Checks peer IDs, records addresses; returns the IDs worth asking."""
        out: list[bytes] = []
        for kp in peers:
            try:
                pid = PeerId.from_bytes(kp.peer_id)
            except DecodeError:
                continue
            if pid == self.peer_id:
                continue
            if kp.addrs:
                self._record_addrs(pid, kp.addrs)
            if kp.addrs or self.host.is_connected(pid):
                out.append(pid.to_bytes())
        return out

    # ---- RPC (outbound) -------------------------------------------------------------------

    async def _rpc(self, peer: PeerId, msg: KadMessage, *, reply: bool = True) -> KadMessage:
        timeout = self.config.request_timeout
        stream = await asyncio.wait_for(self.host.new_stream(peer, self.protocol), timeout)
        try:
            stream.write(encode_delimited(msg.encode()))
            await stream.drain()
            if not reply:
                # A one-way message counts as delivered only once the peer read it: it closes
                # its side after reading our EOF (a FIN of ours alone proves nothing).
                await stream.close(wait=True, timeout=timeout)
                return msg
            data = await asyncio.wait_for(
                read_delimited(stream, self.config.max_message_size), timeout
            )
            if data is None:
                raise RemoteProtocolError("kad stream closed before the answer")
            answer = KadMessage.decode(data, self.config.max_message_size, self.config.k)
        except BaseException:
            stream.reset()
            raise
        with contextlib.suppress(Libp2pError):
            await stream.close()
        if answer.type != msg.type:
            raise RemoteProtocolError(f"kad answer type {answer.type} for request {msg.type}")
        self._add_peer(peer)  # it answered: a server
        return answer

    def _rpc_failed(self, peer: PeerId, exc: BaseException) -> None:
        log.debug("kad request to %s failed: %r", peer, exc)
        self._remove_peer(peer)

    async def _lookup(
        self,
        key: bytes,
        msg: KadMessage,
        on_answer: Callable[[PeerId, KadMessage], bool] | None = None,
    ) -> LookupResult:
        cfg = self.config
        self.routing.touch(key)
        started = self._loop_clock()
        result = await run_lookup(
            key,
            self.routing.closest(key, cfg.k),
            lambda p: self._rpc(p, msg),
            self._learn,
            local=self.peer_id,
            alpha=cfg.alpha,
            k=cfg.k,
            request_timeout=cfg.request_timeout,
            query_timeout=cfg.query_timeout,
            on_answer=on_answer,
            on_failure=self._rpc_failed,
        )
        self.lookup_hops.append(result.hops)
        del self.lookup_hops[:-1024]
        metrics = self.host.metrics
        if metrics is not None:
            metrics.kad_query(
                _QUERY_TYPES.get(msg.type, "other"),
                self._loop_clock() - started,
                result.requests,
                result.failures,
                result.hops,
            )
        return result

    # ---- public operations ----------------------------------------------------------------

    async def bootstrap(self, peers: Iterable[PeerInfo | Multiaddr | str] = ()) -> int:
        """Connects to ``peers``, asks each for our neighbourhood, then refreshes the table.
        Returns the table size; raises KadError if peers were given and none answered."""
        given = list(peers)
        answered = 0
        failures: list[str] = []

        async def one(p: PeerInfo | Multiaddr | str) -> bool:
            try:
                conn = await self.host.connect(p)
                msg = KadMessage(MessageType.FIND_NODE, self.peer_id.to_bytes())
                answer = await self._rpc(conn.remote_peer, msg)
            except (Libp2pError, OSError, asyncio.TimeoutError) as exc:
                log.debug("bootstrap peer %s failed: %r", p, exc)
                failures.append(_bootstrap_failure(p, exc, self.protocol))
                return False
            self._learn(answer.closer_peers)
            return True

        if given:
            answered = sum(await asyncio.gather(*(one(p) for p in given)))
            if not answered:
                raise KadError("no bootstrap peer answered: " + "; ".join(failures))
        await self.refresh()
        return len(self.routing)

    async def refresh(self) -> None:
        """A lookup of our own ID, then one random-ID lookup per stale bucket."""
        self._last_refresh = self._loop_clock()
        await self.get_closest_peers(self.peer_id)
        rng = random.Random()
        for bucket in self.routing.stale_buckets(
            self.config.refresh_interval, self.config.refresh_max_cpl
        ):
            target = self.routing.random_id_in_bucket(bucket, rng.getrandbits(64))
            if target is None:
                continue
            await self._lookup(target, KadMessage(MessageType.FIND_NODE, target))
            self.routing.mark_refreshed(bucket)

    async def get_closest_peers(self, key: bytes | PeerId) -> list[PeerId]:
        """The k closest peers to ``key`` (peer IDs are looked up by their bytes)."""
        raw = key.to_bytes() if isinstance(key, PeerId) else key
        res = await self._lookup(raw, KadMessage(MessageType.FIND_NODE, raw))
        return res.closest

    async def find_peer(self, peer: PeerId) -> PeerInfo:
        """The addresses of ``peer``: from a live connection, else from a lookup."""
        if self.host.is_connected(peer):
            return PeerInfo(peer, self._addrs(peer))
        raw = peer.to_bytes()
        found: list[PeerInfo] = []

        def on_answer(_: PeerId, answer: KadMessage) -> bool:
            for kp in answer.closer_peers:
                if kp.peer_id == raw and kp.addrs:
                    addrs = []
                    for a in kp.addrs:
                        with contextlib.suppress(DecodeError, ValueError):
                            addrs.append(Multiaddr.from_bytes(a))
                    if addrs:
                        found.append(PeerInfo(peer, addrs))
                        return True
            return False

        await self._lookup(raw, KadMessage(MessageType.FIND_NODE, raw), on_answer)
        if not found:
            raise KadNotFoundError(f"peer {peer} not found")
        return found[0]

    async def put_value(self, key: bytes, value: bytes) -> int:
        """Validates, stores locally, sends PUT_VALUE to the k closest peers; returns how
        many of them stored it."""
        self.validator.validate(key, value)
        now = self._now()
        rec = StoredRecord(key, value, now, now + self.config.record_ttl, originated=True)
        if not self.records.put(rec, now):
            raise KadError("local record store refused the record (cap)")
        return await self._put_to_closest(key, value)

    async def _put_to_closest(self, key: bytes, value: bytes) -> int:
        peers = await self.get_closest_peers(key)
        msg = KadMessage(MessageType.PUT_VALUE, key, KadRecord(key, value, _rfc3339(self._now())))
        results = await asyncio.gather(*(self._rpc(p, msg) for p in peers), return_exceptions=True)
        return sum(1 for r in results if isinstance(r, KadMessage))

    async def get_value(self, key: bytes, quorum: int | None = None) -> bytes:
        """The best valid value of ``key`` once ``quorum`` answers agree to look (the local
        copy counts as one); peers that returned worse values are sent the best."""
        quorum = self.config.quorum if quorum is None else max(1, quorum)
        values: list[bytes] = []
        holders: list[PeerId | None] = []
        local = self.records.get(key, self._now())
        if local is not None:
            values.append(local.value)
            holders.append(None)
            if quorum <= 1:
                return local.value

        def on_answer(peer: PeerId, answer: KadMessage) -> bool:
            rec = answer.record
            if rec is None or rec.key != key:
                return False
            try:
                self.validator.validate(key, rec.value)
            except InvalidRecordError:
                return False
            values.append(rec.value)
            holders.append(peer)
            return len(values) >= quorum

        await self._lookup(key, KadMessage(MessageType.GET_VALUE, key), on_answer)
        if not values:
            raise KadNotFoundError(f"no value for key {key!r}")
        best = values[self.validator.select(key, values)]
        outdated = [h for v, h in zip(values, holders, strict=True) if v != best and h is not None]
        if outdated:
            msg = KadMessage(
                MessageType.PUT_VALUE, key, KadRecord(key, best, _rfc3339(self._now()))
            )
            for p in outdated:
                self._spawn(self._quiet(self._rpc(p, msg)))
        return best

    @staticmethod
    async def _quiet(coro: Any) -> None:
        with contextlib.suppress(
            Libp2pError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError
        ):
            await coro

    def _self_provider(self) -> KadPeer:
        return KadPeer(self.peer_id.to_bytes(), tuple(a.to_bytes() for a in self.host.addrs))

    async def provide(self, key: bytes | str) -> int:
        """Announces this node as a provider of ``key`` (a CID text or raw key bytes) to the
        k closest peers; returns how many consumed the ADD_PROVIDER message (read it and
        closed their side of the stream), not merely how many it was written to."""
        raw = provider_key(key)
        now = self._now()
        me = self._self_provider()
        self.providers.add(
            raw, ProviderEntry(me.peer_id, me.addrs, now + self.config.provider_ttl), now
        )
        self._provided[raw] = now
        peers = await self.get_closest_peers(raw)
        msg = KadMessage(MessageType.ADD_PROVIDER, raw, provider_peers=(me,))
        results = await asyncio.gather(
            *(self._rpc(p, msg, reply=False) for p in peers), return_exceptions=True
        )
        return sum(1 for r in results if isinstance(r, KadMessage))

    async def find_providers(self, key: bytes | str, count: int = 20) -> AsyncIterator[PeerInfo]:
        """Providers of ``key`` as they arrive (local ones first), up to ``count``."""
        raw = provider_key(key)
        seen: set[bytes] = set()
        queue: asyncio.Queue[PeerInfo | None] = asyncio.Queue()

        def offer(kp: KadPeer) -> None:
            if kp.peer_id in seen or len(seen) >= count:
                return
            try:
                pid = PeerId.from_bytes(kp.peer_id)
            except DecodeError:
                return
            addrs = []
            for a in kp.addrs:
                with contextlib.suppress(DecodeError, ValueError):
                    addrs.append(Multiaddr.from_bytes(a))
            if kp.addrs and pid != self.peer_id:
                self._record_addrs(pid, kp.addrs)
            seen.add(kp.peer_id)
            queue.put_nowait(PeerInfo(pid, addrs))

        for e in self.providers.get(raw, self._now(), count):
            offer(KadPeer(e.peer, e.addrs))

        def on_answer(_: PeerId, answer: KadMessage) -> bool:
            for kp in answer.provider_peers:
                offer(kp)
            return len(seen) >= count

        async def run() -> None:
            try:
                if len(seen) < count:
                    await self._lookup(raw, KadMessage(MessageType.GET_PROVIDERS, raw), on_answer)
            finally:
                queue.put_nowait(None)

        task = self._spawn(run())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                yield item
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    # ---- inbound ---------------------------------------------------------------------------

    async def _handle(self, stream: Stream) -> None:
        mux = stream.conn
        n = self._inbound.get(mux, 0)
        if n >= self.config.max_inbound_streams_per_connection:
            stream.reset()  # ROBUSTNESS 28: excess inbound streams are dropped
            return
        self._inbound[mux] = n + 1
        try:
            await self._serve(stream)
        finally:
            left = self._inbound[mux] - 1
            if left:
                self._inbound[mux] = left
            else:
                del self._inbound[mux]

    async def _serve(self, stream: Stream) -> None:
        cfg = self.config
        peer: PeerId = stream.remote_peer
        while True:
            try:
                data = await asyncio.wait_for(
                    read_delimited(stream, cfg.max_message_size), cfg.stream_idle_timeout
                )
                if data is None:
                    break
                msg = KadMessage.decode(data, cfg.max_message_size, cfg.k)
                answer = self._dispatch(peer, msg)
            except (FrameTooLarge, DecodeError, InvalidRecordError, RemoteProtocolError) as exc:
                log.debug("bad kad request from %s: %s", peer, exc)
                stream.reset()
                return
            except asyncio.TimeoutError:
                stream.reset()
                return
            if answer is not None:
                stream.write(encode_delimited(answer.encode()))
                await stream.drain()
        await stream.close()

    def _closer(self, key: bytes, requester: PeerId) -> tuple[KadPeer, ...]:
        out: list[KadPeer] = []
        for p in self.routing.closest(key, self.config.k + 1):
            if p == requester:
                continue
            addrs = self._addr_bytes(p)
            if not addrs:
                continue
            connected = self.host.is_connected(p)
            conn = ConnectionType.CONNECTED if connected else ConnectionType.NOT_CONNECTED
            out.append(KadPeer(p.to_bytes(), addrs, conn))
            if len(out) >= self.config.k:
                break
        return tuple(out)

    def _dispatch(self, peer: PeerId, msg: KadMessage) -> KadMessage | None:
        t = msg.type
        metrics = self.host.metrics
        if metrics is not None:
            metrics.kad_inbound_request(_REQUEST_NAMES.get(t, "unknown"))
        now = self._now()
        if t == MessageType.FIND_NODE:
            return KadMessage(t, msg.key, closer_peers=self._closer(msg.key, peer))
        if t == MessageType.PING:
            return KadMessage(t)
        if t == MessageType.GET_VALUE:
            rec = self._local_record(msg.key, now)
            return KadMessage(t, msg.key, rec, self._closer(msg.key, peer))
        if t == MessageType.PUT_VALUE:
            self._store_put(msg, now)
            return msg
        if t == MessageType.ADD_PROVIDER:
            self._store_providers(peer, msg, now)
            return None
        if t == MessageType.GET_PROVIDERS:
            provs = tuple(
                KadPeer(e.peer, e.addrs or self._addr_bytes(PeerId._trusted(e.peer)))
                for e in self.providers.get(msg.key, now, self.config.k)
            )
            return KadMessage(
                t, msg.key, closer_peers=self._closer(msg.key, peer), provider_peers=provs
            )
        raise RemoteProtocolError(f"unknown kad message type {t}")

    def _local_record(self, key: bytes, now: float) -> KadRecord | None:
        rec = self.records.get(key, now)
        if rec is not None:
            return KadRecord(key, rec.value, _rfc3339(rec.received))
        if key.startswith(b"/pk/"):
            with contextlib.suppress(Exception):
                pk = self.host.peerstore.pubkey(PeerId.from_bytes(key[4:]))
                if pk is not None:
                    return KadRecord(key, pk.to_protobuf(), _rfc3339(now))
        return None

    def _store_put(self, msg: KadMessage, now: float) -> None:
        rec = msg.record
        if rec is None or rec.key != msg.key:
            raise InvalidRecordError("PUT_VALUE without a record for its key")
        self.validator.validate(rec.key, rec.value)
        old = self.records.get(rec.key, now)
        if (
            old is not None
            and old.value != rec.value
            and self.validator.select(rec.key, [old.value, rec.value]) == 0
        ):
            return  # ours is better: keep it (the sender learns on its next get)
        originated = old.originated if old is not None else False
        expires = now + self.config.record_ttl
        if not self.records.put(StoredRecord(rec.key, rec.value, now, expires, originated), now):
            raise InvalidRecordError("record store full or record too large")

    def _store_providers(self, peer: PeerId, msg: KadMessage, now: float) -> None:
        raw = peer.to_bytes()
        for kp in msg.provider_peers:
            if kp.peer_id != raw:
                continue  # only the sender may announce itself
            addrs = kp.addrs
            entry = ProviderEntry(raw, addrs, now + self.config.provider_ttl)
            self.providers.add(msg.key, entry, now)
            if addrs:
                self._record_addrs(peer, addrs)
            break

    # ---- maintenance -----------------------------------------------------------------------

    async def _maintain(self) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(min(cfg.maintenance_interval, cfg.refresh_interval))
            try:
                await self.maintain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kad maintenance failed")

    async def maintain_once(self) -> None:
        """Refresh when due, expire stores, republish what we originated when due."""
        cfg = self.config
        if self._loop_clock() - self._last_refresh >= cfg.refresh_interval and len(self.routing):
            await self.refresh()
        now = self._now()
        self.records.expire(now)
        self.providers.expire(now)
        for rec in self.records.originated():
            if now - rec.received >= cfg.record_republish_interval:
                fresh = StoredRecord(rec.key, rec.value, now, now + cfg.record_ttl, True)
                self.records.put(fresh, now)
                await self._put_to_closest(rec.key, rec.value)
        for key, last in list(self._provided.items()):
            if now - last >= cfg.provider_republish_interval:
                await self.provide(key)

    def provided_keys(self) -> list[bytes]:
        """Keys this node announces itself for and republishes."""
        return list(self._provided)

    def stop_providing(self, key: bytes | str) -> None:
        """Stops republishing ``key`` (remote records expire on their own)."""
        self._provided.pop(provider_key(key), None)

    def closest_local(self, key: bytes, n: int | None = None) -> Sequence[PeerId]:
        """The closest peers to SHA-256(``key``) in our own table."""
        return self.routing.closest(key, n or self.config.k)
