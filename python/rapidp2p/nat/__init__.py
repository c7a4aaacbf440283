"""Port mapping on the LAN's gateway: UPnP IGD (v1, v2), PCP and NAT-PMP.

:class:`PortMapper` is the host service (opt-in: ``HostConfig(port_mapping=True)``); the
protocol clients live in :mod:`rapidp2p.nat.gateway` over the sans-IO codecs
``_upnp`` (SSDP, device description, SOAP, HTTP) and ``_pmp`` (NAT-PMP, PCP).

No third-party library: ``async-upnp-client`` would bring aiohttp and four more packages for
the four SOAP actions used here, ``miniupnpc`` is blocking C (a thread per call) and covers
UPnP only, ``py-natpmp`` is unmaintained and blocking; PCP and NAT-PMP are fixed binary
formats of a few dozen bytes (RFC 6887, RFC 6886).
"""

from __future__ import annotations

from rapidp2p.nat.errors import GatewayReplyError, MappingRefused, NoGatewayError, PortMapError
from rapidp2p.nat.service import PortMapConfig, PortMapper, PortMapping, PortMappingChanged

__all__ = [
    "GatewayReplyError",
    "MappingRefused",
    "NoGatewayError",
    "PortMapConfig",
    "PortMapError",
    "PortMapper",
    "PortMapping",
    "PortMappingChanged",
]
