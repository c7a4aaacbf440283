"""The services every host runs: ping and identify (+ push), from ``rapidp2p.protocols``.

Each service object may have ``on_connection(mux)`` (called for every new connection) and
``close()``; the host calls them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = ["install_default_services"]


def install_default_services(host: Host) -> list[Any]:
    """Registers ping and identify handlers on ``host``; returns the service objects."""
    services: list[Any] = []
    return services
