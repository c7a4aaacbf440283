"""The libp2p host: connections, streams, handlers, services (ping and identify by default)."""

from __future__ import annotations

from rapidp2p.host.connmgr import ConnectionManager, ConnManagerConfig, DecayingTag
from rapidp2p.host.events import (
    Event,
    EventBus,
    HolePunchFailed,
    HolePunchSucceeded,
    LocalAddressesChanged,
    PeerConnected,
    PeerDisconnected,
    PeerIdentified,
    ProtocolsChanged,
    ReachabilityChanged,
    Subscription,
)
from rapidp2p.host.gater import AllowAll, ConnectionGater, ListGater
from rapidp2p.host.host import Host, HostConfig, StreamHandler
from rapidp2p.host.limits import Limits
from rapidp2p.host.observed import ObservedAddrManager
from rapidp2p.host.peer_gc import PeerGCConfig
from rapidp2p.host.reachability import Reachability
from rapidp2p.host.registry import ServiceRegistry
from rapidp2p.host.service import Service, ServiceBase
from rapidp2p.host.upgrader import MuxerOptions, StageTimeouts, Upgrader

__all__ = [
    "AllowAll",
    "ConnManagerConfig",
    "ConnectionGater",
    "ConnectionManager",
    "DecayingTag",
    "Event",
    "EventBus",
    "HolePunchFailed",
    "HolePunchSucceeded",
    "Host",
    "HostConfig",
    "Limits",
    "ListGater",
    "LocalAddressesChanged",
    "MuxerOptions",
    "ObservedAddrManager",
    "PeerConnected",
    "PeerDisconnected",
    "PeerGCConfig",
    "PeerIdentified",
    "ProtocolsChanged",
    "Reachability",
    "ReachabilityChanged",
    "Service",
    "ServiceBase",
    "ServiceRegistry",
    "StageTimeouts",
    "StreamHandler",
    "Subscription",
    "Upgrader",
]
