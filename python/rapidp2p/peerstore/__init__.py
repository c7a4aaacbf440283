"""What we know about other peers: addresses with TTLs, keys, protocols, metadata and
certified peer records; in memory or persisted in SQLite."""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from rapidp2p.peerstore.sqlite import SqlitePeerStore


def __getattr__(name: str) -> Any:
    # SqlitePeerStore on first use: sqlite3 (and msgpack) cost a memory-only host ~1.4 MiB.
    if name == "SqlitePeerStore":
        from rapidp2p.peerstore.sqlite import SqlitePeerStore

        return SqlitePeerStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
