"""What we know about other peers: addresses with TTLs, keys, protocols, metadata and
certified peer records; in memory or persisted in SQLite."""

from rapidp2p.peerstore.base import (
    ADDRESS_TTL,
    CONNECTED_ADDR_TTL,
    MAX_ADDRS_PER_PEER,
    MAX_METADATA_PER_PEER,
    MAX_PROTOCOLS_PER_PEER,
    PERMANENT_ADDR_TTL,
    RECENTLY_CONNECTED_ADDR_TTL,
    TEMP_ADDR_TTL,
    PeerStore,
)
from rapidp2p.peerstore.memory import MemoryPeerStore
from rapidp2p.peerstore.sqlite import SqlitePeerStore

__all__ = [
    "ADDRESS_TTL",
    "CONNECTED_ADDR_TTL",
    "MAX_ADDRS_PER_PEER",
    "MAX_METADATA_PER_PEER",
    "MAX_PROTOCOLS_PER_PEER",
    "PERMANENT_ADDR_TTL",
    "RECENTLY_CONNECTED_ADDR_TTL",
    "TEMP_ADDR_TTL",
    "MemoryPeerStore",
    "PeerStore",
    "SqlitePeerStore",
]
