"""The client side of the DHT (go-libp2p-kad-dht's ``routing.go`` and ``query.go``): lookups
and the public operations built on them (bootstrap, find peer, values, providers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from rapidp2p import _core
from rapidp2p.exceptions import (
    CidError,
    DecodeError,
    InvalidRecordError,
    KadError,
    KadNotFoundError,
    Libp2pError,
    PeerIdMismatch,
    ProtocolNotSupported,
)
from rapidp2p.host.addrs import addrs_for_remote
from rapidp2p.kad._proto import KadMessage, KadPeer, KadRecord, MessageType
from rapidp2p.kad.handlers import rfc3339
from rapidp2p.kad.lookup import LookupResult, run_lookup
from rapidp2p.kad.store import ProviderEntry, StoredRecord
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo
from rapidp2p.peer._text import bad_cid

if TYPE_CHECKING:
    from rapidp2p.kad.dht import KadDHT

__all__ = ["KadOperations", "provider_key"]

log = logging.getLogger("rapidp2p.kad")

#: Metric label of a lookup, by the message it sends (rust-libp2p's query types).
_QUERY_TYPES: dict[int, str] = {
    MessageType.FIND_NODE: "get_closest_peers",
    MessageType.GET_VALUE: "get_record",
    MessageType.GET_PROVIDERS: "get_providers",
}


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


async def _quiet(coro: Awaitable[object]) -> None:
    with contextlib.suppress(
        Libp2pError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError
    ):
        await coro


class KadOperations:
    """Lookups and the public operations of one DHT node (``KadDHT`` delegates to it)."""

    def __init__(self, dht: KadDHT) -> None:
        self._dht = dht

    # ---- lookups -----------------------------------------------------------------------

    def _rpc_failed(self, peer: PeerId, exc: BaseException) -> None:
        log.debug("kad request to %s failed: %r", peer, exc)
        self._dht.membership.remove(peer)

    async def lookup(
        self,
        key: bytes,
        msg: KadMessage,
        on_answer: Callable[[PeerId, KadMessage], bool] | None = None,
    ) -> LookupResult:
        dht = self._dht
        cfg = dht.config
        dht.routing.touch(key)
        started = dht._loop_clock()
        result = await run_lookup(
            key,
            dht.routing.closest(key, cfg.k),
            lambda p: dht.messenger.request(p, msg),
            dht.membership.learn,
            local=dht.peer_id,
            alpha=cfg.alpha,
            k=cfg.k,
            request_timeout=cfg.request_timeout,
            query_timeout=cfg.query_timeout,
            on_answer=on_answer,
            on_failure=self._rpc_failed,
        )
        dht.lookup_hops.append(result.hops)
        del dht.lookup_hops[:-1024]
        metrics = dht.host.metrics
        if metrics is not None:
            metrics.kad_query(
                _QUERY_TYPES.get(msg.type, "other"),
                dht._loop_clock() - started,
                result.requests,
                result.failures,
                result.hops,
            )
        return result

    # ---- routing -----------------------------------------------------------------------

    async def bootstrap(self, peers: Iterable[PeerInfo | Multiaddr | str] = ()) -> int:
        dht = self._dht
        given = list(peers)
        answered = 0
        failures: list[str] = []

        async def one(p: PeerInfo | Multiaddr | str) -> bool:
            try:
                conn = await dht.host.connect(p)
                msg = KadMessage(MessageType.FIND_NODE, dht.peer_id.to_bytes())
                answer = await dht.messenger.request(conn.remote_peer, msg)
            except (Libp2pError, OSError, asyncio.TimeoutError) as exc:
                log.debug("bootstrap peer %s failed: %r", p, exc)
                failures.append(_bootstrap_failure(p, exc, dht.protocol))
                return False
            dht.membership.learn(answer.closer_peers)
            return True

        if given:
            answered = sum(await asyncio.gather(*(one(p) for p in given)))
            if not answered:
                raise KadError("no bootstrap peer answered: " + "; ".join(failures))
        await self.refresh()
        return len(dht.routing)

    async def refresh(self) -> None:
        dht = self._dht
        dht._last_refresh = dht._loop_clock()
        await self.get_closest_peers(dht.peer_id)
        rng = random.Random()
        for bucket in dht.routing.stale_buckets(
            dht.config.refresh_interval, dht.config.refresh_max_cpl
        ):
            target = dht.routing.random_id_in_bucket(bucket, rng.getrandbits(64))
            if target is None:
                continue
            await self.lookup(target, KadMessage(MessageType.FIND_NODE, target))
            dht.routing.mark_refreshed(bucket)

    async def get_closest_peers(self, key: bytes | PeerId) -> list[PeerId]:
        raw = key.to_bytes() if isinstance(key, PeerId) else key
        res = await self.lookup(raw, KadMessage(MessageType.FIND_NODE, raw))
        return res.closest

    async def find_peer(self, peer: PeerId) -> PeerInfo:
        dht = self._dht
        if dht.host.is_connected(peer):
            return PeerInfo(peer, dht.membership.addrs(peer))
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

        await self.lookup(raw, KadMessage(MessageType.FIND_NODE, raw), on_answer)
        if not found:
            raise KadNotFoundError(f"peer {peer} not found")
        return found[0]

    # ---- values ------------------------------------------------------------------------

    async def put_value(self, key: bytes, value: bytes) -> int:
        dht = self._dht
        dht.validator.validate(key, value)
        now = dht._now()
        rec = StoredRecord(key, value, now, now + dht.config.record_ttl, originated=True)
        if not dht.records.put(rec, now):
            raise KadError("local record store refused the record (cap)")
        return await self.put_to_closest(key, value)

    async def put_to_closest(self, key: bytes, value: bytes) -> int:
        dht = self._dht
        peers = await self.get_closest_peers(key)
        msg = KadMessage(MessageType.PUT_VALUE, key, KadRecord(key, value, rfc3339(dht._now())))
        results = await asyncio.gather(
            *(dht.messenger.request(p, msg) for p in peers), return_exceptions=True
        )
        return sum(1 for r in results if isinstance(r, KadMessage))

    async def get_value(self, key: bytes, quorum: int | None = None) -> bytes:
        dht = self._dht
        quorum = dht.config.quorum if quorum is None else max(1, quorum)
        values: list[bytes] = []
        holders: list[PeerId | None] = []
        local = dht.records.get(key, dht._now())
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
                dht.validator.validate(key, rec.value)
            except InvalidRecordError:
                return False
            values.append(rec.value)
            holders.append(peer)
            return len(values) >= quorum

        await self.lookup(key, KadMessage(MessageType.GET_VALUE, key), on_answer)
        if not values:
            raise KadNotFoundError(f"no value for key {key!r}")
        best = values[dht.validator.select(key, values)]
        outdated = [h for v, h in zip(values, holders, strict=True) if v != best and h is not None]
        if outdated:
            msg = KadMessage(MessageType.PUT_VALUE, key, KadRecord(key, best, rfc3339(dht._now())))
            for p in outdated:
                dht._spawn(_quiet(dht.messenger.request(p, msg)))
        return best

    # ---- providers ---------------------------------------------------------------------

    def self_provider(self, remote: Multiaddr | None = None) -> KadPeer:
        """Our provider record; for a peer seen at ``remote``, only the addresses it could
        dial (identify's scope rule: no loopback for a LAN peer, only public ones for a public
        peer), as go-libp2p and kubo announce."""
        dht = self._dht
        addrs = addrs_for_remote(list(dht.host.addrs), remote)
        return KadPeer(dht.peer_id.to_bytes(), tuple(a.to_bytes() for a in addrs))

    async def provide(self, key: bytes | str) -> int:
        dht = self._dht
        raw = provider_key(key)
        now = dht._now()
        me = self.self_provider()
        dht.providers.add(
            raw, ProviderEntry(me.peer_id, me.addrs, now + dht.config.provider_ttl), now
        )
        dht._provided[raw] = now
        peers = await self.get_closest_peers(raw)

        def announce(p: PeerId) -> KadMessage:
            conn = dht.host.live_connection(p)
            mine = self.self_provider(conn.remote_addr if conn is not None else None)
            return KadMessage(MessageType.ADD_PROVIDER, raw, provider_peers=(mine,))

        results = await asyncio.gather(
            *(dht.messenger.request(p, announce(p), reply=False) for p in peers),
            return_exceptions=True,
        )
        return sum(1 for r in results if isinstance(r, KadMessage))

    async def find_providers(self, key: bytes | str, count: int = 20) -> AsyncIterator[PeerInfo]:
        dht = self._dht
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
            if kp.addrs and pid != dht.peer_id:
                dht.membership.record_addrs(pid, kp.addrs)
            seen.add(kp.peer_id)
            queue.put_nowait(PeerInfo(pid, addrs))

        for e in dht.providers.get(raw, dht._now(), count):
            offer(KadPeer(e.peer, e.addrs))

        def on_answer(_: PeerId, answer: KadMessage) -> bool:
            for kp in answer.provider_peers:
                offer(kp)
            return len(seen) >= count

        async def run() -> None:
            try:
                if len(seen) < count:
                    await self.lookup(raw, KadMessage(MessageType.GET_PROVIDERS, raw), on_answer)
            finally:
                queue.put_nowait(None)

        task = dht._spawn(run())
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
