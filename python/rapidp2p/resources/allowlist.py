"""Networks whose connections skip the per-IP cap and rate and use the allowlisted scopes.

go-libp2p exempts allowlisted multiaddrs from the system and transient limits; loopback is on
the list by default so a local test network (20 nodes bootstrapping from one) never hits a
limit meant for the open Internet. Entries are CIDRs (``"10.0.0.0/8"``, ``"::1/128"``), plain
IPs, or multiaddrs (``/ip4/10.0.0.0/ipcidr/8``, ``/ip6/::1``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["DEFAULT_ALLOWLIST", "Allowlist", "parse_network"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Loopback only: a local test network is never throttled, a public node is.
DEFAULT_ALLOWLIST: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

#: Answers remembered per IP (accepts repeat the same few addresses).
_CACHE_MAX = 4096


def parse_network(entry: object) -> IPNetwork:
    """A network from a CIDR, an IP, or an ``/ip4|ip6/<addr>[/ipcidr/<bits>]`` multiaddr."""
    text = str(entry).strip()
    if text.startswith("/"):
        parts = [p for p in text.split("/") if p]
        if len(parts) < 2 or parts[0] not in ("ip4", "ip6"):
            raise ValueError(f"allowlist entry {text!r} is not an /ip4 or /ip6 multiaddr")
        bits = None
        if len(parts) >= 4 and parts[2] == "ipcidr":
            bits = parts[3]
        elif len(parts) > 2:
            raise ValueError(f"allowlist entry {text!r}: only /ipcidr may follow the address")
        text = parts[1] if bits is None else f"{parts[1]}/{bits}"
    return ipaddress.ip_network(text, strict=False)


class Allowlist:
    """A set of networks; :meth:`allows` answers for an IP address text."""

    def __init__(self, entries: Iterable[object] = DEFAULT_ALLOWLIST) -> None:
        self._nets: list[IPNetwork] = []
        self._cache: dict[str, bool] = {}
        for e in entries:
            self.add(e)

    def add(self, entry: object) -> None:
        """Adds a CIDR, IP or multiaddr (see :func:`parse_network`)."""
        self._nets.append(parse_network(entry))
        self._cache.clear()

    def remove(self, entry: object) -> None:
        net = parse_network(entry)
        self._nets = [n for n in self._nets if n != net]
        self._cache.clear()

    @property
    def networks(self) -> list[IPNetwork]:
        return list(self._nets)

    def allows(self, ip: str | None) -> bool:
        """True when ``ip`` (an address text, an IPv6 zone allowed) is in a listed network."""
        if ip is None or not self._nets:
            return False
        hit = self._cache.get(ip)
        if hit is not None:
            return hit
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            hit = False
        else:
            mapped = getattr(addr, "ipv4_mapped", None)
            if mapped is not None:
                addr = mapped
            hit = any(addr.version == n.version and addr in n for n in self._nets)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[ip] = hit
        return hit

    def __repr__(self) -> str:
        return f"Allowlist({[str(n) for n in self._nets]!r})"
