"""Errors of the port mapper (all :class:`~rapidp2p.exceptions.Libp2pError` subclasses)."""

from __future__ import annotations

from rapidp2p.exceptions import DecodeError, Libp2pError

__all__ = ["GatewayReplyError", "MappingRefused", "NoGatewayError", "PortMapError"]


class PortMapError(Libp2pError):
    """Port mapping failed (no gateway, a refusal, a bad reply, a timeout)."""


class NoGatewayError(PortMapError):
    """No UPnP IGD answered the search and no NAT-PMP/PCP gateway answered on port 5351."""


class GatewayReplyError(PortMapError, DecodeError):
    """A gateway's reply does not parse (malformed SSDP, XML, SOAP, HTTP or NAT-PMP/PCP
    datagram, or one over its size cap); the reply is dropped, the host is not affected."""


class MappingRefused(PortMapError):
    """The gateway understood the request and said no; ``code`` is its result or UPnP error
    code (718: the external port is taken; 725: only permanent leases)."""

    def __init__(self, message: str, *, code: int = 0) -> None:
        super().__init__(message)
        self.code = code
