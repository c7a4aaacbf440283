"""The server side of the DHT (go-libp2p-kad-dht's ``handlers.go``): answers FIND_NODE,
GET_VALUE, PUT_VALUE, GET_PROVIDERS, ADD_PROVIDER and PING on inbound streams, several
requests per stream (the spec's requirement). The host caps the streams served at once per
connection (``KadConfig.max_inbound_streams_per_connection`` is the cap the DHT registers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import (
    DecodeError,
    FrameTooLarge,
    InvalidRecordError,
    RemoteProtocolError,
)
from rapidp2p.host.addrs import addrs_for_remote, ip_scope
from rapidp2p.kad._proto import ConnectionType, KadMessage, KadPeer, KadRecord, MessageType
from rapidp2p.kad.rpc import FrameReader
from rapidp2p.kad.store import ProviderEntry, StoredRecord
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.framing import encode_delimited

if TYPE_CHECKING:
    from rapidp2p.kad.dht import KadDHT

__all__ = ["KadHandlers", "rfc3339"]

log = logging.getLogger("rapidp2p.kad")

#: How long a closer-peers entry is reused (its connectedness is a hint: may be this stale).
_ENTRY_TTL = 1.0
#: Entries cached at most (the cache starts over beyond).
_ENTRY_CACHE_MAX = 4096

#: Metric label of an inbound request.
_REQUEST_NAMES: dict[int, str] = {t: t.name.lower() for t in MessageType}


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dialable_by(addrs: tuple[bytes, ...], remote: Multiaddr | None) -> tuple[bytes, ...]:
    """A provider's addresses a requester seen at ``remote`` could dial (identify's scope
    rule): a peer on a LAN is not told loopback addresses, a public peer only public ones.
    Loopback and unknown requesters (tests, memory transports) get them all, undecoded."""
    if ip_scope(remote) in (None, "loopback"):
        return addrs
    decoded: list[Multiaddr] = []
    for raw in addrs:
        with contextlib.suppress(DecodeError, ValueError):
            decoded.append(Multiaddr.from_bytes(raw))
    return tuple(a.to_bytes() for a in addrs_for_remote(decoded, remote))


class KadHandlers:
    """Serves the kad protocol for one DHT node."""

    def __init__(self, dht: KadDHT) -> None:
        self._dht = dht
        #: Closer-peers entries per peer, kept for ``_ENTRY_TTL`` s: every answer lists k
        #: peers, mostly the same ones, and building an entry (addresses, connectedness)
        #: cost more than the rest of the answer.
        self._entries: dict[PeerId, tuple[KadPeer | None, float]] = {}

    async def handle(self, stream: Stream) -> None:
        """The stream handler: requests until EOF, idle timeout or a bad request (reset)."""
        cfg = self._dht.config
        peer: PeerId = stream.remote_peer
        reader = FrameReader(stream, cfg.max_message_size)
        while True:
            try:
                data = await asyncio.wait_for(reader.next(), cfg.stream_idle_timeout)
                if data is None:
                    break
                msg = KadMessage.decode(data, cfg.max_message_size, cfg.k)
                answer = self.dispatch(peer, msg, stream.conn.remote_addr)
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

    def dispatch(
        self, peer: PeerId, msg: KadMessage, remote: Multiaddr | None = None
    ) -> KadMessage | None:
        """The answer to one request (None for ADD_PROVIDER, which has none); ``remote`` is
        where the requester was seen, which decides the provider addresses it is told."""
        dht = self._dht
        t = msg.type
        metrics = dht.host.metrics
        if metrics is not None:
            metrics.kad_inbound_request(_REQUEST_NAMES.get(t, "unknown"))
        now = dht._now()
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
            addr_bytes = dht.membership.addr_bytes
            entries = dht.providers.get(msg.key, now, dht.config.k)
            provs = tuple(
                KadPeer(
                    e.peer, _dialable_by(e.addrs or addr_bytes(PeerId._trusted(e.peer)), remote)
                )
                for e in entries
            )
            return KadMessage(
                t, msg.key, closer_peers=self._closer(msg.key, peer), provider_peers=provs
            )
        raise RemoteProtocolError(f"unknown kad message type {t}")

    def _closer(self, key: bytes, requester: PeerId) -> tuple[KadPeer, ...]:
        dht = self._dht
        k = dht.config.k
        out: list[KadPeer] = []
        now = dht._loop_clock()
        cache = self._entries
        for p in dht.routing.closest(key, k + 1):
            if p == requester:
                continue
            hit = cache.get(p)
            if hit is not None and hit[1] > now:
                entry: KadPeer | None = hit[0]
            else:
                entry = self._entry(p)
                if len(cache) >= _ENTRY_CACHE_MAX:
                    cache.clear()
                cache[p] = (entry, now + _ENTRY_TTL)
            if entry is None:
                continue
            out.append(entry)
            if len(out) >= k:
                break
        return tuple(out)

    def _entry(self, p: PeerId) -> KadPeer | None:
        """``p`` as a closer-peers entry (None without an address to give)."""
        dht = self._dht
        addrs = dht.membership.addr_bytes(p)
        if not addrs:
            return None
        connected = dht.host.is_connected(p)
        conn = ConnectionType.CONNECTED if connected else ConnectionType.NOT_CONNECTED
        return KadPeer(p.to_bytes(), addrs, conn)

    def _local_record(self, key: bytes, now: float) -> KadRecord | None:
        dht = self._dht
        rec = dht.records.get(key, now)
        if rec is not None:
            return KadRecord(key, rec.value, rfc3339(rec.received))
        if key.startswith(b"/pk/"):
            with contextlib.suppress(Exception):
                pk = dht.host.peerstore.pubkey(PeerId.from_bytes(key[4:]))
                if pk is not None:
                    return KadRecord(key, pk.to_protobuf(), rfc3339(now))
        return None

    def _store_put(self, msg: KadMessage, now: float) -> None:
        dht = self._dht
        rec = msg.record
        if rec is None or rec.key != msg.key:
            raise InvalidRecordError("PUT_VALUE without a record for its key")
        dht.validator.validate(rec.key, rec.value)
        old = dht.records.get(rec.key, now)
        if (
            old is not None
            and old.value != rec.value
            and dht.validator.select(rec.key, [old.value, rec.value]) == 0
        ):
            return  # ours is better: keep it (the sender learns on its next get)
        originated = old.originated if old is not None else False
        expires = now + dht.config.record_ttl
        if not dht.records.put(StoredRecord(rec.key, rec.value, now, expires, originated), now):
            raise InvalidRecordError("record store full or record too large")

    def _store_providers(self, peer: PeerId, msg: KadMessage, now: float) -> None:
        dht = self._dht
        raw = peer.to_bytes()
        for kp in msg.provider_peers:
            if kp.peer_id != raw:
                continue  # only the sender may announce itself
            addrs = kp.addrs
            entry = ProviderEntry(raw, addrs, now + dht.config.provider_ttl)
            dht.providers.add(msg.key, entry, now)
            if addrs:
                dht.membership.record_addrs(peer, addrs)
            break
