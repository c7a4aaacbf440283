"""Kademlia DHT settings with the defaults of the libp2p implementations."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROTOCOL_ID", "KadConfig"]

PROTOCOL_ID = "/ipfs/kad/1.0.0"


@dataclass
class KadConfig:
    """Parameters of one DHT node (times in seconds)."""

    protocol: str = PROTOCOL_ID
    #: "server" answers queries and advertises the protocol; "client" only asks; "auto" is
    #: client until the node knows it is reachable, then server: a public listen address, an
    #: inbound connection, a peer met on loopback or a private network while listening on
    #: an address of that kind (a local network, where go's and js's LAN DHTs always serve),
    #: or ``KadDHT.set_reachable(True)``. A host that does not listen stays a client.
    mode: str = "auto"
    k: int = 20
    alpha: int = 3
    #: One RPC (dial + request + answer).
    request_timeout: float = 10.0
    #: A whole lookup.
    query_timeout: float = 60.0
    max_message_size: int = 64 * 1024
    #: Inbound streams served at once per connection (the host enforces it: the DHT registers
    #: its handler with this cap instead of ``Limits.max_inbound_streams_per_protocol``).
    max_inbound_streams_per_connection: int = 32
    #: An inbound stream with no request for this long is closed.
    stream_idle_timeout: float = 60.0
    refresh_interval: float = 600.0
    #: Common-prefix lengths refreshed with random-ID lookups (go-libp2p-kad-dht: 15).
    refresh_max_cpl: int = 15
    #: How often the maintenance loop wakes up (refresh, expiry, republish checks).
    maintenance_interval: float = 60.0
    record_ttl: float = 36 * 3600.0
    record_republish_interval: float = 22 * 3600.0
    provider_ttl: float = 48 * 3600.0
    provider_republish_interval: float = 22 * 3600.0
    #: Valid answers a get_value waits for (the local copy counts as one).
    quorum: int = 3
    #: Cap peers per /16 (IPv4) or /32 (IPv6): 2 per bucket, 3 per table.
    diversity_filter: bool = False
    #: Timeout of the liveness check before a full bucket evicts its least-recently-seen peer.
    check_timeout: float = 5.0
    #: TTL of addresses learned from closer-peer and provider lists.
    learned_addr_ttl: float = 3600.0
