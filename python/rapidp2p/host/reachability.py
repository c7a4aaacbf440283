"""Whether other peers can dial us: the host's reachability (AutoNAT decides it).

:class:`Reachability` is a ``str`` enum so it prints and compares as ``"public"``,
``"private"`` or ``"unknown"``. The host keeps the current value
(:attr:`Host.reachability <rapidp2p.Host.reachability>`) and emits
:class:`~rapidp2p.host.events.ReachabilityChanged` when a service (AutoNAT v1 or v2) changes
it; until one does, it is unknown.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["Reachability"]


class Reachability(str, Enum):
    """Can peers on the internet dial us directly?"""

    UNKNOWN = "unknown"
    PUBLIC = "public"
    PRIVATE = "private"

    def __str__(self) -> str:
        return self.value
