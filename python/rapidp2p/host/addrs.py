"""What a host tells other peers about where it listens.

Two rules from go-libp2p (kubo behaves the same):

* An unspecified listen address (``/ip4/0.0.0.0``, ``/ip6/::``) is not dialable: it is
  expanded to every address of the machine's interfaces of that family, with the listener's
  real port (:func:`expand_unspecified`). IPv6 link-local addresses are left out (they need
  a zone, which a multiaddr cannot carry).
* A peer hears only the addresses it could use (:func:`addrs_for_remote`): a peer on
  loopback gets them all, a peer on a private network gets no loopback ones, a peer on a
  public address gets only public ones.

Interface addresses come from the ``ifaddr`` package: pure Python, no dependencies of its
own, and one ``getifaddrs``/``GetAdaptersAddresses`` call on every OS (the standard library
has no portable way: ``socket.if_nameindex`` gives names only, and the ioctl or
``/proc/net/if_inet6`` routes work on Linux alone; ``psutil`` would bring compiled code for
one function). The list is cached for a few seconds, as go-libp2p caches it, because every
identify answer reads it.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rapidp2p.exceptions import DecodeError
from rapidp2p.peer import Multiaddr
from rapidp2p.transport.base import parse_components

if TYPE_CHECKING:
    from rapidp2p.transport.contracts import Connection

__all__ = [
    "addrs_for_remote",
    "expand_unspecified",
    "interface_ips",
    "ip_scope",
    "leading_ip",
    "set_local_addr",
]

log = logging.getLogger("rapidp2p.host")

#: Seconds an interface listing is reused.
INTERFACE_CACHE_TTL = 10.0

_cache: tuple[float, list[str]] | None = None


def _list_interface_ips() -> list[str]:
    try:
        import ifaddr
    except ImportError:  # pragma: no cover - a dependency; loopback keeps the host usable
        log.warning("ifaddr is not installed: advertising loopback only for 0.0.0.0 / ::")
        return ["127.0.0.1", "::1"]
    out: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            if text not in out:
                out.append(text)
    return out


#: Replaceable (tests): returns the IP texts of every local interface.
list_interface_ips: Callable[[], list[str]] = _list_interface_ips


def interface_ips() -> list[str]:
    """Every IP address of this machine's interfaces (cached briefly)."""
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < INTERFACE_CACHE_TTL:
        return _cache[1]
    try:
        ips = list_interface_ips()
    except OSError as exc:  # interfaces unreadable: loopback keeps the host usable
        log.warning("cannot list network interfaces: %s", exc)
        ips = ["127.0.0.1", "::1"]
    _cache = (now, ips)
    return ips


def clear_interface_cache() -> None:
    """Forgets the cached interface list (after a network change, or in tests)."""
    global _cache
    _cache = None


def _sort_key(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, int]:
    # Loopback first, then private, then public: the first address printed works locally.
    scope = 0 if ip.is_loopback else 1 if ip.is_private else 2
    return scope, int(ip)


def expand_unspecified(addrs: Iterable[Multiaddr]) -> list[Multiaddr]:
    """Each ``/ip4/0.0.0.0/...`` or ``/ip6/::/...`` replaced by one address per interface IP
    of that family (same suffix); other addresses kept; duplicates dropped, order kept."""
    out: list[Multiaddr] = []
    seen: set[Multiaddr] = set()
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] | None = None
    for addr in addrs:
        comps = parse_components(addr)
        expanded = [addr]
        if comps and comps[0][0] in ("ip4", "ip6"):
            try:
                head = ipaddress.ip_address(comps[0][1])
            except ValueError:
                head = None
            if head is not None and head.is_unspecified:
                if ips is None:
                    ips = sorted(_parse_ips(interface_ips()), key=_sort_key)
                text = str(addr)
                prefix = f"/{comps[0][0]}/{comps[0][1]}"
                suffix = text[len(prefix) :]
                proto = comps[0][0]
                expanded = [
                    Multiaddr(f"/{proto}/{ip}{suffix}")
                    for ip in ips
                    if ip.version == head.version and not (ip.version == 6 and ip.is_link_local)
                ]
        for a in expanded:
            if a not in seen:
                seen.add(a)
                out.append(a)
    return out


def _parse_ips(texts: Iterable[str]) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    out = []
    for t in texts:
        try:
            out.append(ipaddress.ip_address(t.split("%", 1)[0]))
        except ValueError:
            continue
    return out


def leading_ip(
    addr: Multiaddr | None, *, direct_only: bool = True
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP an ``/ip4|ip6/...`` multiaddr starts with; None for any other address, for text
    that is not a multiaddr and, when ``direct_only``, for a relayed (``/p2p-circuit``) one,
    whose socket is the relay's. The one reading of "the IP of this address" that observed
    addresses and AutoNAT share."""
    if addr is None:
        return None
    try:
        comps = parse_components(addr)
    except DecodeError:
        return None
    if not comps or comps[0][0] not in ("ip4", "ip6"):
        return None
    if direct_only and any(name == "p2p-circuit" for name, _ in comps):
        return None
    try:
        return ipaddress.ip_address(comps[0][1])
    except ValueError:
        return None


def ip_scope(addr: Multiaddr | None) -> str | None:
    """``"loopback"``, ``"private"``, ``"public"`` for an IP multiaddr, else None (DNS names,
    memory addresses, unknown)."""
    if addr is None:
        return None
    comps = parse_components(addr)
    if not comps or comps[0][0] not in ("ip4", "ip6"):
        return None
    try:
        ip = ipaddress.ip_address(comps[0][1])
    except ValueError:
        return None
    if ip.is_loopback:
        return "loopback"
    if ip.is_global:
        return "public"
    return "private"


def addrs_for_remote(addrs: list[Multiaddr], remote: Multiaddr | None) -> list[Multiaddr]:
    """The subset of our addresses worth telling a peer seen at ``remote`` (go-libp2p's
    identify rule): all for a loopback or unknown peer, no loopback ones for a peer on a
    private network, only public ones (DNS names kept) for a public peer."""
    scope = ip_scope(remote)
    if scope is None or scope == "loopback":
        return addrs
    if scope == "private":
        return [a for a in addrs if ip_scope(a) != "loopback"]
    return [a for a in addrs if ip_scope(a) in ("public", None)]


def set_local_addr(mux: Connection) -> None:
    """Fills ``mux.local_addr`` from its socket (the local end identify's observations are
    about) when the transport did not set it."""
    if mux.local_addr is not None:
        return
    transport = getattr(mux, "transport", None)
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2 and sockname[0] != "memory":
        from rapidp2p.transport.tcp import sockaddr_to_multiaddr

        try:
            mux.local_addr = sockaddr_to_multiaddr(sockname)
        except (ValueError, TypeError):
            return
