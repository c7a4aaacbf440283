"""Peer records as rendezvous carries them: the spec's (libp2p RFC 0003: domain
``libp2p-peer-record``, payload type 0x0301) and rust-libp2p's older variant (domain
``libp2p-routing-state``, payload type ``/libp2p/routing-state-record``, the same payload),
which its rendezvous behaviour still sends and is the only one it accepts.

A server stores whichever arrives and re-serves it verbatim; a client opens both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rapidp2p.crypto import PrivateKey
from rapidp2p.exceptions import Libp2pError, RecordError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.records.envelope import Envelope, register_record_type
from rapidp2p.records.peer_record import PeerRecord

__all__ = ["LEGACY_DOMAIN", "LegacyPeerRecord", "open_record", "seal_record"]

LEGACY_DOMAIN = "libp2p-routing-state"
LEGACY_PAYLOAD_TYPE = b"/libp2p/routing-state-record"


@register_record_type
@dataclass(frozen=True)
class LegacyPeerRecord(PeerRecord):
    """rust-libp2p's peer record envelope (same fields, other domain and payload type)."""

    DOMAIN: ClassVar[str] = LEGACY_DOMAIN
    PAYLOAD_TYPE: ClassVar[bytes] = LEGACY_PAYLOAD_TYPE


def open_record(data: bytes) -> PeerRecord:
    """The verified record in a signed envelope of either kind; raises RecordError."""
    try:
        return PeerRecord.open_envelope(data)[1]
    except Libp2pError as first:
        try:
            _env, record = Envelope.open(data, LEGACY_DOMAIN)
        except Libp2pError:
            raise RecordError(f"not a signed peer record: {first}") from first
        if not isinstance(record, PeerRecord):
            raise RecordError("envelope does not carry a peer record") from None
        return record


def seal_record(
    key: PrivateKey, peer_id: PeerId, addrs: list[Multiaddr], *, legacy: bool = False
) -> bytes:
    """Our record for ``addrs`` in a signed envelope (rust-libp2p's kind when ``legacy``)."""
    cls = LegacyPeerRecord if legacy else PeerRecord
    record = cls.create(peer_id, addrs)
    return Envelope.seal(key, record).to_bytes()
