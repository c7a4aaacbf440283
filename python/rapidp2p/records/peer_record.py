"""Routing records (libp2p RFC 0003): a peer's addresses, signed by the peer itself."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rapidp2p import _core
from rapidp2p.crypto import PublicKey
from rapidp2p.exceptions import RecordError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.records.envelope import Envelope, register_record_type

PEER_RECORD_DOMAIN = "libp2p-peer-record"
PEER_RECORD_PAYLOAD_TYPE = b"\x03\x01"
"""The multicodec ``libp2p-peer-record`` (0x0301) as an unsigned varint."""
OPENED_CACHE_SIZE = 256
"""Envelopes remembered as opened and verified (a peer sends the same one on every connection
until its addresses change); the opened objects are immutable, so sharing them is safe."""
OPENED_CACHE_MAX_BYTES = 2048
"""Larger envelopes are opened every time (bounds the cache at about 1.5 MiB)."""


@register_record_type
@dataclass(frozen=True)
class PeerRecord:
    """``peer_id`` is reachable at ``addrs``; a higher ``seq`` supersedes a lower one."""

    DOMAIN: ClassVar[str] = PEER_RECORD_DOMAIN
    PAYLOAD_TYPE: ClassVar[bytes] = PEER_RECORD_PAYLOAD_TYPE

    peer_id: PeerId
    seq: int
    addrs: tuple[Multiaddr, ...]

    @classmethod
    def create(
        cls, peer_id: PeerId, addrs: Iterable[Multiaddr], seq: int | None = None
    ) -> PeerRecord:
        """A record with ``seq`` defaulting to the wall clock in nanoseconds (as go-libp2p
        does), so records made later, even after a restart, supersede earlier ones."""
        return cls(peer_id, time.time_ns() if seq is None else seq, tuple(addrs))

    def marshal(self) -> bytes:
        return _core.proto.encode_peer_record(
            self.peer_id.to_bytes(), self.seq, [a.to_bytes() for a in self.addrs]
        )

    @classmethod
    def unmarshal(cls, data: bytes) -> PeerRecord:
        pid, seq, addrs = _core.proto.decode_peer_record(data)
        return cls(PeerId.from_bytes(pid), seq, tuple(Multiaddr.from_bytes(a) for a in addrs))

    @classmethod
    def open_envelope(cls, data: bytes) -> tuple[Envelope, PeerRecord]:
        """``Envelope.open`` under the peer-record domain, typed: raises RecordError unless
        the envelope carries a PeerRecord signed by its own peer."""
        raw = bytes(data)
        known = _opened.get(raw)
        if known is not None:
            _opened.move_to_end(raw)
            return known
        envelope, record = Envelope.open(raw, PEER_RECORD_DOMAIN)
        if not isinstance(record, PeerRecord):
            raise RecordError("envelope does not carry a peer record")
        if len(raw) > OPENED_CACHE_MAX_BYTES:
            return envelope, record
        _opened[raw] = (envelope, record)
        if len(_opened) > OPENED_CACHE_SIZE:
            _opened.popitem(last=False)
        return envelope, record

    def check_signer(self, key: PublicKey) -> None:
        if PeerId.from_public_key(key) != self.peer_id:
            raise RecordError(f"peer record for {self.peer_id} signed by another peer's key")


_opened: OrderedDict[bytes, tuple[Envelope, PeerRecord]] = OrderedDict()
