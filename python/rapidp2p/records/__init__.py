"""Signed envelopes (RFC 0002) and the signed peer records they carry (RFC 0003)."""

from rapidp2p.records.envelope import Envelope, Record, register_record_type, signing_buffer
from rapidp2p.records.peer_record import (
    PEER_RECORD_DOMAIN,
    PEER_RECORD_PAYLOAD_TYPE,
    PeerRecord,
)

__all__ = [
    "PEER_RECORD_DOMAIN",
    "PEER_RECORD_PAYLOAD_TYPE",
    "Envelope",
    "PeerRecord",
    "Record",
    "register_record_type",
    "signing_buffer",
]
