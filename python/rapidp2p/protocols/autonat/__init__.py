"""AutoNAT: learn whether peers can dial us (libp2p/specs autonat).

v1 (``/libp2p/autonat/1.0.0``): :class:`AutoNAT` is both the client (probes in the
background, sets :attr:`Host.reachability <rapidp2p.Host.reachability>`) and, with
``AutoNATConfig(serve=True)``, the dial-back server.

v2 (``/libp2p/autonat/2/dial-request`` and ``/dial-back``): :class:`AutoNATv2` checks one
address per request, verified by a nonce, with the dial-data amplification protection.

The wire format and the pure rules
(which addresses may be dialed, rate limits, the verdict) are in ``_proto``.
"""

from __future__ import annotations

from rapidp2p.host.reachability import Reachability
from rapidp2p.protocols.autonat._proto import (
    PROTOCOL_ID,
    AutoNATError,
    DialRequest,
    DialResponse,
    DialThrottle,
    ReachabilityTracker,
    ResponseStatus,
    decode_message,
    dial_back_addrs,
    encode_dial,
    encode_dial_response,
)
from rapidp2p.protocols.autonat.service import AutoNAT, AutoNATConfig, ProbeResult
from rapidp2p.protocols.autonat.v2 import AutoNATv2, AutoNATv2Config, CheckResult

__all__ = [
    "PROTOCOL_ID",
    "AutoNAT",
    "AutoNATConfig",
    "AutoNATError",
    "AutoNATv2",
    "AutoNATv2Config",
    "CheckResult",
    "DialRequest",
    "DialResponse",
    "DialThrottle",
    "ProbeResult",
    "Reachability",
    "ReachabilityTracker",
    "ResponseStatus",
    "decode_message",
    "dial_back_addrs",
    "encode_dial",
    "encode_dial_response",
]
