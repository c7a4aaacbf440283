"""The services every host runs: ping and identify (+ push), from ``rapidp2p.protocols``.

Both follow the :class:`~rapidp2p.host.service.Service` shape, as every other service does;
the host adds them first when it starts (unless disabled in its config). The wire logic lives
in the protocols package; these classes only wire it to the host (handlers, peerstore
updates, events).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rapidp2p._aio.stream import Stream
from rapidp2p.host.service import ServiceBase
from rapidp2p.protocols.ping import PROTOCOL_ID as PING_PROTOCOL_ID
from rapidp2p.protocols.ping import handle_ping, ping
from rapidp2p.protocols.streams import close_quietly

if TYPE_CHECKING:
    from rapidp2p.host.host import Host
    from rapidp2p.host.service import Service
    from rapidp2p.peer import Multiaddr, PeerId, PeerInfo

__all__ = ["PingService", "default_services"]


class PingService(ServiceBase):
    """Serves ``/ipfs/ping/1.0.0`` and measures round trips to peers."""

    protocols = (PING_PROTOCOL_ID,)
    service_name = "libp2p.ping"

    def __init__(self, host: Host) -> None:
        self.host = host
        self.protocol = PING_PROTOCOL_ID

    async def _start(self) -> None:
        self.host.set_stream_handler(self.protocol, self._handle)

    async def close(self) -> None:
        await super().close()

    async def _handle(self, stream: Stream) -> None:
        await handle_ping(stream)
        await stream.close()

    async def ping(
        self,
        peer: PeerId | PeerInfo | Multiaddr | str,
        count: int = 1,
        *,
        timeout: float | None = 10.0,
    ) -> list[float]:
        """``count`` sequential pings on one stream; each round-trip time in seconds."""
        stream = await self.host.new_stream(peer, self.protocol)
        try:
            return await ping(stream, count, timeout=timeout)
        finally:
            await close_quietly(stream)  # the ping result (or its error) wins


def default_services(host: Host) -> list[Service]:
    """Ping, identify, the relay client, DCUtR and the port mapper for ``host`` (as its config
    enables them), not started yet."""
    services: list[Service] = []
    if host.config.enable_ping:
        services.append(PingService(host))
    if host.config.enable_identify:
        from rapidp2p.host.identify import IdentifyService

        services.append(IdentifyService(host))
    if host.config.enable_relay_client:
        from rapidp2p.relay.client import RelayClient

        services.append(RelayClient(host))
        if host.config.enable_hole_punching:
            from rapidp2p.protocols.dcutr.service import HolePunchService

            services.append(HolePunchService(host))
    if host.config.port_mapping:
        from rapidp2p.nat.service import PortMapper, config_of

        services.append(PortMapper(host, config_of(host.config.port_mapping)))
    return services
