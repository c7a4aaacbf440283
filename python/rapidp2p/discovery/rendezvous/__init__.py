"""Rendezvous (``/rendezvous/1.0.0``): a server peers register with under namespaces, and the
client that registers and discovers."""

from rapidp2p.discovery.rendezvous._proto import (
    DEFAULT_TTL,
    PROTOCOL_ID,
    RendezvousError,
    ResponseStatus,
    ServerLimits,
)
from rapidp2p.discovery.rendezvous.client import Discovered, RendezvousClient
from rapidp2p.discovery.rendezvous.server import RendezvousServer

__all__ = [
    "DEFAULT_TTL",
    "PROTOCOL_ID",
    "Discovered",
    "RendezvousClient",
    "RendezvousError",
    "RendezvousServer",
    "ResponseStatus",
    "ServerLimits",
]
