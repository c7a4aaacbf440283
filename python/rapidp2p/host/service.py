"""The one shape every protocol service on a host has (ping, identify, perf, DHT, pubsub, ...).

A service is an object the host starts, tells about new connections and closes::

    dht = await host.add_service(KadDHT(host))   # returns once it serves
    ...
    await host.close()                            # closes every service first

:meth:`Host.add_service <rapidp2p.Host.add_service>` is awaitable, in the manner of
``loop.create_server``: it starts the host if it is not started yet, starts the service, hands
it the connections that already exist, and returns once the service serves. The host then
calls :meth:`Service.on_connection` for every new connection and :meth:`Service.close` when
it closes. ``await service.start()`` on a service built with its host does the same (it
registers through ``add_service``), so both spellings are one lifecycle.

Stream handlers are registered by the service in :meth:`Service.start` with
:meth:`Host.set_stream_handler <rapidp2p.Host.set_stream_handler>` (with the service's own
inbound-stream cap where the host's default does not fit).

Every stream of a service's :attr:`~Service.protocols`, inbound or outbound, is accounted in
the resource manager's ``service:<name>`` scope as well as its ``protocol:<id>`` scope (as
go-libp2p's services call ``SetService`` on their streams), so one limit caps, say, every
GossipSub stream whichever of its four protocol ids it speaks. The name is the service's
``service_name`` (the built-ins use go-libp2p's ``libp2p.<name>`` spelling), else its class
name; :func:`service_name` says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from rapidp2p.exceptions import LocalProtocolError

if TYPE_CHECKING:
    from rapidp2p.host.host import Host
    from rapidp2p.transport.contracts import Connection

__all__ = ["Service", "ServiceBase", "service_name"]


def service_name(service: object) -> str:
    """The name of ``service``'s resource scope (``service:<name>``): its ``service_name``
    attribute when set, else its class name."""
    name = getattr(service, "service_name", "")
    return name if isinstance(name, str) and name else type(service).__name__


class Service(Protocol):
    """What the host needs from a protocol service."""

    @property
    def protocols(self) -> Sequence[str]:
        """The protocol ids this service serves or opens streams with (a DHT client serves
        none but opens them); their streams are accounted in the service's resource scope."""
        ...

    async def start(self, host: Host) -> None:
        """Registers handlers and starts background work; called once by the host."""
        ...

    def on_connection(self, conn: Connection) -> None:
        """A connection joined the host (called for existing ones at start too)."""
        ...

    async def close(self) -> None:
        """Stops the service (idempotent); the host calls it when it closes."""
        ...


class ServiceBase:
    """The lifecycle glue shared by the built-in services; subclasses implement
    :meth:`_start` (and override :meth:`on_connection` / :meth:`close` where they need to).

    ``start()`` is idempotent and, called directly, registers the service with its host
    (``await svc.start()`` and ``await host.add_service(svc)`` are the same thing).
    """

    host: Host
    protocols: Sequence[str] = ()
    #: The service's resource scope is ``service:<service_name>`` (class name when empty).
    service_name: str = ""
    _started: bool = False
    _closed: bool = False

    async def start(self, host: Host | None = None) -> None:
        """Starts serving on the service's host; returns once it serves."""
        if host is not None and host is not self.host:
            raise ValueError("a service starts on the host it was built for")
        if self._closed:
            raise LocalProtocolError(f"{type(self).__name__} is closed; create a new one")
        if self._started:
            return
        if not self.host.services.is_registered(self):
            await self.host.add_service(self)  # which calls start(host) back, registered
            return
        self._started = True
        try:
            await self._start()
        except BaseException:
            self._started = False
            raise

    async def _start(self) -> None:
        """The service's own start (handlers, tasks)."""

    def on_connection(self, conn: Connection) -> None:
        """No per-connection work by default."""

    async def close(self) -> None:
        """Marks the service closed (subclasses stop their work, then call this)."""
        self._closed = True
