"""Resource accounting in go-libp2p's model: scopes, limits, allowlist.

See :class:`~rapidp2p.resources.manager.ResourceManager` for the scopes (system, transient,
service, protocol, peer, connection, stream) and :mod:`rapidp2p.resources.limits` for the
limits, their machine-scaled defaults and the limits file.
"""

from __future__ import annotations

from rapidp2p.resources.allowlist import DEFAULT_ALLOWLIST, Allowlist, parse_network

__all__ = ["DEFAULT_ALLOWLIST", "Allowlist", "parse_network"]
