"""The peerstore interface and the logic shared by every backend.

A peerstore holds what we know about other peers: addresses (each with an expiry), the public
key, supported protocols, free-form metadata and the latest certified (signed) peer record.
Backends store one small mapping per peer (:class:`_PeerData` as plain dicts/lists, so the
same code serves the in-memory and the SQLite store) and only provide load/save/delete and a
transaction; all rules live here.

Bounds (peers are untrusted and identify feeds this store):
- :data:`MAX_ADDRS_PER_PEER` (64): past it, the addresses expiring soonest are dropped.
- :data:`MAX_PROTOCOLS_PER_PEER` (128): extra protocols are ignored (first ones kept).
- :data:`MAX_METADATA_PER_PEER` (64) keys; new keys past it raise PeerStoreError.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rapidp2p.exceptions import PeerIdError, PeerStoreError, RecordError

if TYPE_CHECKING:
    from rapidp2p.crypto import PublicKey
    from rapidp2p.peer import Multiaddr, PeerId
    from rapidp2p.records import Envelope, PeerRecord

MAX_ADDRS_PER_PEER = 64
MAX_PROTOCOLS_PER_PEER = 128
MAX_METADATA_PER_PEER = 64

PERMANENT_ADDR_TTL = math.inf
"""Addresses that never expire (our own, or configured bootstrap peers)."""
ADDRESS_TTL = 3600.0
"""Default TTL: addresses learned from a peer (go-libp2p's AddressTTL, one hour)."""
RECENTLY_CONNECTED_ADDR_TTL = 15 * 60.0
CONNECTED_ADDR_TTL = 24 * 3600.0
TEMP_ADDR_TTL = 120.0

Clock = Callable[[], float]
_PeerData = dict[str, Any]
"""``{"addrs": {ma_bytes: expiry}, "key": bytes|None, "protos": [str], "meta": {str: Any},
"record": bytes|None, "seq": int}``."""


def _empty() -> _PeerData:
    return {"addrs": {}, "key": None, "protos": [], "meta": {}, "record": None, "seq": -1}


_EMPTY: _PeerData = _empty()
"""What reads see for an unknown peer (never mutated: reads only)."""


class PeerStore(ABC):
    """What the host and the protocols need to know about peers. Every method is synchronous
    and atomic; keys are :class:`~rapidp2p.peer.PeerId`."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock

    # ---- backend hooks -------------------------------------------------------------------

    @abstractmethod
    def _load(self, peer: bytes) -> _PeerData | None:
        """The stored data of a peer (a copy the caller may mutate), or None."""

    def _peek(self, peer: bytes) -> _PeerData | None:
        """The stored data for reading only (the caller never mutates it): backends that
        hold it in memory return it without a copy."""
        return self._load(peer)

    @abstractmethod
    def _save(self, peer: bytes, data: _PeerData) -> None: ...

    @abstractmethod
    def _delete(self, peer: bytes) -> None: ...

    @abstractmethod
    def _peer_keys(self) -> list[bytes]: ...

    @abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        """All hook calls inside are committed together or not at all."""

    @abstractmethod
    def close(self) -> None:
        """Releases the backend."""

    # ---- shared read-modify-write ----------------------------------------------------------

    @contextlib.contextmanager
    def _edit(self, peer: PeerId) -> Iterator[_PeerData]:
        key = peer.to_bytes()
        with self._transaction():
            data = self._load(key) or _empty()
            yield data
            self._save(key, data)

    def _view(self, peer: PeerId) -> _PeerData:
        return self._peek(peer.to_bytes()) or _EMPTY

    # ---- peers -------------------------------------------------------------------------------

    def peers(self) -> list[PeerId]:
        """Every peer the store knows anything about."""
        from rapidp2p.peer import PeerId

        return [PeerId.from_bytes(k) for k in self._peer_keys()]

    def remove_peer(self, peer: PeerId) -> None:
        with self._transaction():
            self._delete(peer.to_bytes())

    def __len__(self) -> int:
        """How many peers the store holds anything about."""
        return len(self._peer_keys())

    def expire(self, max_age: float, keep: Callable[[PeerId], bool] | None = None) -> int:
        """Forgets peers whose data was last written over ``max_age`` seconds ago, except
        those ``keep`` says to keep (connected, tagged, in the routing table); returns how
        many were forgotten."""
        from rapidp2p.peer import PeerId

        cutoff = self._clock() - max_age
        gone = 0
        for key in self._stale_keys(cutoff):
            if keep is not None and keep(PeerId.from_bytes(key)):
                continue
            with self._transaction():
                self._delete(key)
            gone += 1
        return gone

    def _stale_keys(self, cutoff: float) -> list[bytes]:
        """Peers last written before ``cutoff`` (backends that record write times override)."""
        return []

    # ---- addresses -----------------------------------------------------------------------

    def add_addrs(self, peer: PeerId, addrs: Iterable[Multiaddr], ttl: float = ADDRESS_TTL) -> None:
        """Adds addresses valid for ``ttl`` seconds; an address already known keeps the later
        of its current and its new expiry. ``ttl <= 0`` adds nothing."""
        if ttl <= 0:
            return
        now = self._clock()
        expiry = now + ttl
        with self._edit(peer) as data:
            book: dict[bytes, float] = data["addrs"]
            for ma in addrs:
                b = ma.to_bytes()
                if book.get(b, -math.inf) < expiry:
                    book[b] = expiry
            data["addrs"] = _bound_addrs(book, now)

    def set_addrs(self, peer: PeerId, addrs: Iterable[Multiaddr], ttl: float) -> None:
        """Sets these addresses' expiry to exactly ``now + ttl`` (``ttl <= 0`` removes them)."""
        now = self._clock()
        with self._edit(peer) as data:
            book: dict[bytes, float] = data["addrs"]
            for ma in addrs:
                if ttl <= 0:
                    book.pop(ma.to_bytes(), None)
                else:
                    book[ma.to_bytes()] = now + ttl
            data["addrs"] = _bound_addrs(book, now)

    def addrs(self, peer: PeerId) -> list[Multiaddr]:
        """The unexpired addresses, longest-lived first."""
        from rapidp2p.peer import Multiaddr

        now = self._clock()
        book: dict[bytes, float] = self._view(peer)["addrs"]
        live = sorted(((exp, b) for b, exp in book.items() if exp > now), reverse=True)
        return [Multiaddr.from_bytes(b) for _, b in live]

    def clear_addrs(self, peer: PeerId) -> None:
        with self._edit(peer) as data:
            data["addrs"] = {}

    def peers_with_addrs(self) -> list[PeerId]:
        from rapidp2p.peer import PeerId

        now = self._clock()
        out = []
        for k in self._peer_keys():
            data = self._peek(k)
            if data and any(exp > now for exp in data["addrs"].values()):
                out.append(PeerId.from_bytes(k))
        return out

    # ---- keys ------------------------------------------------------------------------------

    def add_pubkey(self, peer: PeerId, key: PublicKey) -> None:
        """Stores ``key``; raises PeerIdError if it is not the key ``peer`` was derived from."""
        from rapidp2p.peer import PeerId

        encoded = key.to_protobuf()
        if self._view(peer)["key"] == encoded:
            return  # already stored (checked when it was)
        if PeerId.from_public_key(key) != peer:
            raise PeerIdError(f"public key does not belong to {peer}")
        with self._edit(peer) as data:
            data["key"] = encoded

    def pubkey(self, peer: PeerId) -> PublicKey | None:
        """The stored key, else the one inlined in an identity peer ID, else None."""
        from rapidp2p.crypto import public_key_from_protobuf

        raw = self._view(peer)["key"]
        if raw is not None:
            return public_key_from_protobuf(raw)
        return peer.extract_public_key()

    # ---- protocols -------------------------------------------------------------------------

    def set_protocols(self, peer: PeerId, protocols: Iterable[str]) -> None:
        """Replaces the peer's protocols (the first MAX_PROTOCOLS_PER_PEER are kept)."""
        with self._edit(peer) as data:
            data["protos"] = _bound_protos([], protocols)

    def add_protocols(self, peer: PeerId, protocols: Iterable[str]) -> None:
        with self._edit(peer) as data:
            data["protos"] = _bound_protos(data["protos"], protocols)

    def remove_protocols(self, peer: PeerId, protocols: Iterable[str]) -> None:
        drop = set(protocols)
        with self._edit(peer) as data:
            data["protos"] = [p for p in data["protos"] if p not in drop]

    def get_protocols(self, peer: PeerId) -> list[str]:
        return list(self._view(peer)["protos"])

    def supports_protocols(self, peer: PeerId, protocols: Sequence[str]) -> list[str]:
        """Those of ``protocols`` the peer supports, in the order given."""
        known = set(self._view(peer)["protos"])
        return [p for p in protocols if p in known]

    def first_supported_protocol(self, peer: PeerId, protocols: Sequence[str]) -> str | None:
        found = self.supports_protocols(peer, protocols)
        return found[0] if found else None

    # ---- metadata ----------------------------------------------------------------------------

    def put(self, peer: PeerId, key: str, value: Any) -> None:
        """Stores a msgpack-serialisable value (str, bytes, numbers, lists, dicts, None)."""
        _check_storable(value)
        with self._edit(peer) as data:
            meta: dict[str, Any] = data["meta"]
            if key not in meta and len(meta) >= MAX_METADATA_PER_PEER:
                raise PeerStoreError(f"over {MAX_METADATA_PER_PEER} metadata keys for {peer}")
            meta[key] = copy.deepcopy(value) if isinstance(value, (list, dict)) else value

    def get(self, peer: PeerId, key: str, default: Any = None) -> Any:
        value = self._view(peer)["meta"].get(key, default)
        return copy.deepcopy(value) if isinstance(value, (list, dict)) else value

    # ---- certified records ---------------------------------------------------------------------

    def consume_peer_record(
        self, envelope: Envelope, record: PeerRecord, ttl: float = ADDRESS_TTL
    ) -> bool:
        """Stores a verified record (from ``Envelope.open``) if its seq is higher than the one
        held, and adds its addresses; returns False (and changes nothing) otherwise."""
        from rapidp2p.peer import PeerId

        if PeerId.from_public_key(envelope.public_key) != record.peer_id:
            raise RecordError("peer record not signed by its peer")
        now = self._clock()
        with self._edit(record.peer_id) as data:
            if record.seq <= data["seq"]:
                return False
            data["seq"] = record.seq
            data["record"] = envelope.raw
            if ttl > 0:
                book: dict[bytes, float] = data["addrs"]
                for ma in record.addrs:
                    b = ma.to_bytes()
                    book[b] = max(book.get(b, -math.inf), now + ttl)
                data["addrs"] = _bound_addrs(book, now)
        return True

    def get_peer_record(self, peer: PeerId) -> tuple[Envelope, PeerRecord] | None:
        """The latest certified record, re-verified, or None."""
        from rapidp2p.records import PeerRecord

        raw = self._view(peer)["record"]
        if raw is None:
            return None
        return PeerRecord.open_envelope(raw)


def _bound_addrs(book: dict[bytes, float], now: float) -> dict[bytes, float]:
    live = {b: exp for b, exp in book.items() if exp > now}
    if len(live) <= MAX_ADDRS_PER_PEER:
        return live
    keep = sorted(live.items(), key=lambda kv: kv[1], reverse=True)[:MAX_ADDRS_PER_PEER]
    return dict(keep)


def _bound_protos(current: list[str], new: Iterable[str]) -> list[str]:
    out = list(current)
    seen = set(out)
    for p in new:
        if len(out) >= MAX_PROTOCOLS_PER_PEER:
            break
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _check_storable(value: Any, depth: int = 0) -> None:
    if depth > 16:
        raise PeerStoreError("metadata value nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_storable(v, depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, bytes, int)):
                raise PeerStoreError(f"metadata map key {k!r} is not str, bytes or int")
            _check_storable(v, depth + 1)
        return
    raise PeerStoreError(f"metadata value of type {type(value).__name__} is not storable")
