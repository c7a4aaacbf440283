"""The host's services: started in order, told about connections, closed in order.

One registry per host (``host.services``). It only sequences the :class:`Service` calls;
what each service does is its own business (see :mod:`rapidp2p.host.service`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from rapidp2p.host.host import Host
    from rapidp2p.host.service import Service
    from rapidp2p.transport.contracts import Connection

__all__ = ["ServiceRegistry"]

log = logging.getLogger("rapidp2p.host")

_S = TypeVar("_S")


class ServiceRegistry:
    """The services attached to one host, in the order they were added."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self._services: list[Service] = []
        #: Protocol id -> the name of the service whose scope accounts its streams.
        self._scope_of: dict[str, str] = {}

    def scope_of(self, protocol: str) -> str | None:
        """The service (resource scope name) that owns ``protocol``'s streams, if any."""
        return self._scope_of.get(protocol)

    def _claim(self, service: Service) -> None:
        # after start: a service may settle its protocol ids there (the DHT's, pubsub's)
        from rapidp2p.host.service import service_name

        name = service_name(service)
        for proto in service.protocols:
            self._scope_of.setdefault(proto, name)

    def __iter__(self) -> Iterator[Service]:
        return iter(list(self._services))

    def __len__(self) -> int:
        return len(self._services)

    def is_registered(self, service: object) -> bool:
        return any(s is service for s in self._services)

    def find(self, kind: type[_S]) -> _S | None:
        """The first service of class ``kind`` (a typed lookup, e.g. the identify service)."""
        for svc in self._services:
            if isinstance(svc, kind):
                return svc
        return None

    async def add(self, service: Service) -> None:
        """Registers and starts ``service`` (the host is started), then hands it the
        connections that already exist. A service that fails to start is not kept."""
        if self.is_registered(service):
            return
        self._services.append(service)
        try:
            await service.start(self._host)
        except BaseException:
            self._services.remove(service)
            raise
        self._claim(service)
        for conn in self._host.connections():
            self.connection_added(conn, only=service)

    def connection_added(self, conn: Connection, *, only: Service | None = None) -> None:
        """Tells the services (or ``only`` one) about a new connection. One failing service
        does not keep the others from hearing of it."""
        for svc in [only] if only is not None else list(self._services):
            try:
                svc.on_connection(conn)
            except Exception:
                log.exception("service %r failed on a new connection", svc)

    async def close_all(self) -> None:
        """Closes every service in order; one failing service does not keep the host open."""
        for svc in list(self._services):
            try:
                await svc.close()
            except Exception:
                log.exception("closing service %r failed", svc)
