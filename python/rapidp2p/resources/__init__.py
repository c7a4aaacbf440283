"""Resource accounting in go-libp2p's model: scopes, limits, allowlist.

- :class:`ResourceManager` (``host.resource_manager``): scopes system, transient (and their
  allowlisted twins), service, protocol, peer, connection and stream; ``stat()`` and
  ``blocked`` are the snapshots metrics read.
- :class:`ResourceLimits` / :class:`ScopeLimit`: the limits; :func:`autoscale` computes them
  from the machine's memory and fd limit, :func:`load_limits` reads a limits file.
- :class:`Allowlist`: networks exempt from the per-IP limits (loopback by default).
"""

from __future__ import annotations

from rapidp2p.resources.allowlist import DEFAULT_ALLOWLIST, Allowlist, parse_network
from rapidp2p.resources.limits import (
    UNLIMITED,
    ResourceLimits,
    ScopeLimit,
    autoscale,
    load_limits,
)
from rapidp2p.resources.manager import ConnectionScope, ResourceManager, StreamScope
from rapidp2p.resources.scope import ResourceScope

__all__ = [
    "DEFAULT_ALLOWLIST",
    "UNLIMITED",
    "Allowlist",
    "ConnectionScope",
    "ResourceLimits",
    "ResourceManager",
    "ResourceScope",
    "ScopeLimit",
    "StreamScope",
    "autoscale",
    "load_limits",
    "parse_network",
]
