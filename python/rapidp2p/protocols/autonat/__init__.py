"""AutoNAT: learn whether peers can dial us (libp2p/specs autonat).

v1 (``/libp2p/autonat/1.0.0``): :class:`AutoNAT` is both the client (probes in the
background, sets :attr:`Host.reachability <rapidp2p.Host.reachability>`) and, with
``AutoNATConfig(serve=True)``, the dial-back server. The wire format and the pure rules
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

__all__ = [
    "PROTOCOL_ID",
    "AutoNAT",
    "AutoNATConfig",
    "AutoNATError",
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
