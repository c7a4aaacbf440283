"""The services every host runs: ping and identify (+ push), from ``rapidp2p.protocols``.

A service object may have ``on_connection(mux)`` (called for every new connection) and
``close()``; the host calls them. The wire logic lives in the protocols package; this module
only wires it to the host (handlers, peerstore updates, events).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import Libp2pError

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = ["PingService", "install_default_services"]


class PingService:
    """Serves ``/ipfs/ping/1.0.0`` and measures round trips to peers."""

    def __init__(self, host: Host) -> None:
        from rapidp2p.protocols.ping import PROTOCOL_ID

        self.host = host
        self.protocol = PROTOCOL_ID
        host.set_stream_handler(PROTOCOL_ID, self._handle)

    async def _handle(self, stream: Stream) -> None:
        from rapidp2p.protocols.ping import handle_ping

        await handle_ping(stream)
        await stream.close()

    async def ping(self, peer: Any, count: int = 1, *, timeout: float | None = 10.0) -> list[float]:
        """``count`` sequential pings on one stream; each round-trip time in seconds."""
        from rapidp2p.protocols.ping import ping

        stream = await self.host.new_stream(peer, self.protocol)
        try:
            return await ping(stream, count, timeout=timeout)
        finally:
            with contextlib.suppress(Libp2pError):  # the ping result (or its error) wins
                await stream.close()


def install_default_services(host: Host) -> list[Any]:
    """Registers ping and identify on ``host`` (as configured); returns the service objects."""
    services: list[Any] = []
    if host.config.enable_ping:
        services.append(PingService(host))
    if host.config.enable_identify:
        try:
            from rapidp2p.host.identify import IdentifyService
        except ImportError:  # identify glue not available in this build
            pass
        else:
            services.append(IdentifyService(host))
    return services
