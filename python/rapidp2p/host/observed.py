"""Which of the addresses peers say they see us at are worth believing (sans-IO).

Identify tells us, on every connection, the address the remote sees us at. One peer's word is
cheap (a malicious or confused peer can say anything), so an observed address is trusted only
when :data:`ACTIVATION_THRESHOLD` observers from distinct IP groups reported it (go-libp2p's
rule: an IPv4 observer is its address, an IPv6 observer its /56 prefix, so one host with many
IPv6 addresses counts once). Only observations made on a connection whose local end is one of
our listen ports count: that is the mapping a NAT keeps for the listener, while a dial from an
ephemeral port tells nothing about where others can reach us.

Time is passed in (``now``; the host passes ``time.monotonic()``); every table is capped
(tests/ROBUSTNESS_COVERAGE.md, N1 and N7).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidp2p.exceptions import MultiaddrError
from rapidp2p.host.addrs import leading_ip
from rapidp2p.peer import Multiaddr
from rapidp2p.transport.base import parse_components

__all__ = [
    "ACTIVATION_THRESHOLD",
    "MAX_OBSERVED_ADDRS",
    "OBSERVATION_TTL",
    "ObservedAddrManager",
    "observer_group",
]

#: Distinct observer groups that must report an address before it is trusted (go-libp2p: 4).
ACTIVATION_THRESHOLD = 4
#: Seconds an observation counts after it was last made (go-libp2p's observed-address TTL
#: of the past: 30 minutes); refreshed by every identify that repeats it.
OBSERVATION_TTL = 30 * 60.0
#: Distinct observed addresses tracked at once; the least recently seen is dropped first.
MAX_OBSERVED_ADDRS = 64
#: Observer groups remembered per observed address (only the threshold matters).
MAX_OBSERVERS_PER_ADDR = 32
#: Trusted addresses returned per local listen address (go-libp2p keeps 3).
MAX_ADDRS_PER_LISTENER = 3
#: Distinct IPs peers saw us at (on any connection) kept for :meth:`ip_guesses`.
MAX_OBSERVED_IPS = 8

_Waist = tuple[str, str]  # (transport, port): "tcp"/"udp" and the port text


def observer_group(addr: Multiaddr | None) -> str | None:
    """The group an observer counts in: its IPv4 address, or its IPv6 /56 prefix; None for a
    non-IP address (relayed, memory), which never counts as an observer."""
    ip = leading_ip(addr)
    if ip is None:
        return None
    if ip.version == 4:
        return str(ip)
    return str(ipaddress.ip_network(f"{ip}/56", strict=False))


def _thin_waist(addr: Multiaddr | None) -> tuple[str, _Waist] | None:
    """(IP text, (transport, port)) of an ``/ip4|ip6/../tcp|udp/..`` address, else None."""
    if addr is None:
        return None
    try:
        comps = parse_components(addr)
    except MultiaddrError:
        return None
    if len(comps) < 2 or comps[0][0] not in ("ip4", "ip6") or comps[1][0] not in ("tcp", "udp"):
        return None
    if any(name == "p2p-circuit" for name, _ in comps):
        return None
    return comps[0][1], (comps[1][0], comps[1][1])


@dataclass
class _Entry:
    waist: _Waist  # our local listen (transport, port) the observation was made on
    last_seen: float = 0.0
    observers: dict[str, float] = field(default_factory=dict)  # group -> last seen


class ObservedAddrManager:
    """Collects identify's observed addresses and says which ones are confirmed."""

    def __init__(
        self,
        *,
        threshold: int = ACTIVATION_THRESHOLD,
        ttl: float = OBSERVATION_TTL,
        max_addrs: int = MAX_OBSERVED_ADDRS,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold
        self.ttl = ttl
        self.max_addrs = max_addrs
        self._entries: dict[Multiaddr, _Entry] = {}
        self._ips: dict[str, float] = {}  # IP peers saw us at -> last seen

    def record(
        self,
        observed: Multiaddr,
        *,
        local: Multiaddr | None,
        observer: Multiaddr | None,
        listen_addrs: Iterable[Multiaddr],
        now: float,
    ) -> bool:
        """Records that the peer at ``observer`` sees us at ``observed`` on the connection
        whose local address is ``local``. Returns False (nothing recorded) when the
        observation cannot count: no IP observer, an observed address that is not
        ``ip/tcp|udp``, a local end that is not one of ``listen_addrs``' ports, or an
        observed address that is one of our listen addresses already. The observed IP is
        kept either way (see :meth:`ip_guesses`)."""
        group = observer_group(observer)
        obs = _thin_waist(observed)
        loc = _thin_waist(local)
        if group is None or obs is None or loc is None:
            return False
        self._ips.pop(obs[0], None)
        self._ips[obs[0]] = now
        if len(self._ips) > MAX_OBSERVED_IPS:
            del self._ips[next(iter(self._ips))]
        local_ip, local_waist = loc
        if obs[1][0] != local_waist[0]:
            return False  # a TCP connection cannot tell us a UDP mapping
        listening = False
        observed_ip = ipaddress.ip_address(obs[0])
        for la in listen_addrs:
            lw = _thin_waist(la)
            if lw is None or lw[1] != local_waist:
                continue
            listen_ip = ipaddress.ip_address(lw[0])
            if lw[0] == local_ip or listen_ip.is_unspecified:
                listening = True
            if listen_ip == observed_ip and lw[1] == obs[1]:
                return False  # they see us where we listen: nothing new
        if not listening:
            return False
        key = _strip_peer(observed)
        entry = self._entries.get(key)
        if entry is None:
            self._expire(now)
            if len(self._entries) >= self.max_addrs:
                oldest = min(self._entries, key=lambda k: self._entries[k].last_seen)
                del self._entries[oldest]
            entry = self._entries[key] = _Entry(local_waist)
        entry.waist = local_waist
        entry.last_seen = now
        entry.observers.pop(group, None)
        entry.observers[group] = now
        if len(entry.observers) > MAX_OBSERVERS_PER_ADDR:
            del entry.observers[next(iter(entry.observers))]
        return True

    def _expire(self, now: float) -> None:
        cutoff = now - self.ttl
        for key in list(self._entries):
            entry = self._entries[key]
            entry.observers = {g: t for g, t in entry.observers.items() if t >= cutoff}
            if not entry.observers:
                del self._entries[key]

    def observers(self, addr: Multiaddr, now: float) -> int:
        """How many distinct observer groups currently vouch for ``addr``."""
        entry = self._entries.get(_strip_peer(addr))
        if entry is None:
            return 0
        cutoff = now - self.ttl
        return sum(1 for t in entry.observers.values() if t >= cutoff)

    def candidates(self, now: float) -> list[Multiaddr]:
        """Every observed address still within its TTL, most observers first (what an
        AutoNAT probe may ask a server to test, confirmed or not)."""
        self._expire(now)
        ranked = sorted(self._entries.items(), key=lambda kv: -len(kv[1].observers))
        return [addr for addr, _ in ranked]

    def addrs(self, now: float) -> list[Multiaddr]:
        """The confirmed observed addresses: seen by at least ``threshold`` distinct
        observer groups within the TTL, at most :data:`MAX_ADDRS_PER_LISTENER` per local
        listen port (the most observed first)."""
        self._expire(now)
        per_waist: dict[_Waist, int] = {}
        out: list[Multiaddr] = []
        ranked = sorted(self._entries.items(), key=lambda kv: -len(kv[1].observers))
        for addr, entry in ranked:
            if len(entry.observers) < self.threshold:
                continue
            n = per_waist.get(entry.waist, 0)
            if n >= MAX_ADDRS_PER_LISTENER:
                continue
            per_waist[entry.waist] = n + 1
            out.append(addr)
        return out

    def ip_guesses(self, listen_addrs: Iterable[Multiaddr], now: float) -> list[Multiaddr]:
        """Our listen ports on each IP peers saw us at (on any connection, outbound ones
        from an ephemeral port included), within the TTL: what a port-preserving NAT or a
        port forward would make reachable. Unverified guesses, for an AutoNAT v2 check to
        confirm or refute; never advertised as they are."""
        cutoff = now - self.ttl
        out: list[Multiaddr] = []
        listen = [w for w in (_thin_waist(a) for a in listen_addrs) if w is not None]
        for ip_text, seen in reversed(self._ips.items()):
            if seen < cutoff:
                continue
            ip = ipaddress.ip_address(ip_text)
            for lip, (transport, port) in listen:
                if ipaddress.ip_address(lip).version != ip.version or lip == ip_text:
                    continue
                family = "ip6" if ip.version == 6 else "ip4"
                guess = Multiaddr(f"/{family}/{ip_text}/{transport}/{port}")
                if guess not in out:
                    out.append(guess)
        return out

    def clear(self) -> None:
        """Forgets every observation (after our addresses changed)."""
        self._entries.clear()
        self._ips.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _strip_peer(addr: Multiaddr) -> Multiaddr:
    """``addr`` without a trailing ``/p2p/<id>`` (observations are about our addresses)."""
    base, _peer = addr.split_peer_id()
    return base if base is not None else addr
