"""DCUtR, Direct Connection Upgrade through Relay (``/libp2p/dcutr``): hole punching.

:class:`HolePunchService` runs on every host with the relay client (turn it off with
``HostConfig(enable_hole_punching=False)``): a relayed connection we accepted is upgraded to a
direct one by a coordinated TCP simultaneous open or QUIC hole punch, reported on the event bus
as :class:`~rapidp2p.host.events.HolePunchSucceeded` or
:class:`~rapidp2p.host.events.HolePunchFailed`. The wire format and address rules are in
``_proto``.
"""

from __future__ import annotations

from rapidp2p.protocols.dcutr._proto import (
    MAX_ADDRS,
    MAX_ATTEMPTS,
    MAX_MESSAGE_SIZE,
    PROTOCOL_ID,
    HolePunch,
    HolePunchError,
    HolePunchType,
    MalformedHolePunch,
    punchable_addrs,
)
from rapidp2p.protocols.dcutr.service import HolePunchConfig, HolePunchService

__all__ = [
    "MAX_ADDRS",
    "MAX_ATTEMPTS",
    "MAX_MESSAGE_SIZE",
    "PROTOCOL_ID",
    "HolePunch",
    "HolePunchConfig",
    "HolePunchError",
    "HolePunchService",
    "HolePunchType",
    "MalformedHolePunch",
    "punchable_addrs",
]
