"""Identify (``/ipfs/id/1.0.0``) and identify-push (``/ipfs/id/push/1.0.0``)."""

from rapidp2p.protocols.identify._proto import (
    MAX_LISTEN_ADDRS,
    MAX_MESSAGE_SIZE,
    MAX_PROTOCOLS,
    PROTOCOL_ID,
    PUSH_PROTOCOL_ID,
    IdentifyInfo,
    IdentifyMessage,
    build_identify,
    seal_peer_record,
    validate_identify,
)
from rapidp2p.protocols.identify.service import (
    IdentifyHost,
    handle_identify,
    handle_identify_push,
    identify,
    push_identify,
    read_identify,
    record_identify,
)

__all__ = [
    "MAX_LISTEN_ADDRS",
    "MAX_MESSAGE_SIZE",
    "MAX_PROTOCOLS",
    "PROTOCOL_ID",
    "PUSH_PROTOCOL_ID",
    "IdentifyHost",
    "IdentifyInfo",
    "IdentifyMessage",
    "build_identify",
    "handle_identify",
    "handle_identify_push",
    "identify",
    "push_identify",
    "read_identify",
    "record_identify",
    "seal_peer_record",
    "validate_identify",
]
