"""Kademlia DHT (libp2p kad-dht): peer routing, values with validators, provider records.

The routing table and the lookup state machine are Rust (``_core.kad.RoutingTable``,
``_core.kad.Query``); the service on a host, the stores and the validators are Python.
"""

from __future__ import annotations

from rapidp2p.kad._proto import ConnectionType, KadMessage, KadPeer, KadRecord, MessageType
from rapidp2p.kad.config import PROTOCOL_ID, KadConfig
from rapidp2p.kad.dht import KadDHT, provider_key
from rapidp2p.kad.lookup import LookupResult
from rapidp2p.kad.routing import RoutingTable
from rapidp2p.kad.store import (
    MemoryProviderStore,
    MemoryRecordStore,
    ProviderEntry,
    ProviderStore,
    RecordStore,
    SqliteProviderStore,
    SqliteRecordStore,
    StoredRecord,
)
from rapidp2p.kad.validator import (
    NamespacedValidator,
    PermissiveValidator,
    PublicKeyValidator,
    Validator,
    default_validator,
)

__all__ = [
    "PROTOCOL_ID",
    "ConnectionType",
    "KadConfig",
    "KadDHT",
    "KadMessage",
    "KadPeer",
    "KadRecord",
    "LookupResult",
    "MemoryProviderStore",
    "MemoryRecordStore",
    "MessageType",
    "NamespacedValidator",
    "PermissiveValidator",
    "ProviderEntry",
    "ProviderStore",
    "PublicKeyValidator",
    "RecordStore",
    "RoutingTable",
    "SqliteProviderStore",
    "SqliteRecordStore",
    "StoredRecord",
    "Validator",
    "default_validator",
    "provider_key",
]
