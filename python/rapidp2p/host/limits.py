"""Admission control for connections: totals, pending handshakes, per-IP cap and rate.

Plain counters, checked when a socket is accepted (before any handshake work) and released
when the connection ends, so a flood costs one ``accept`` each (ROBUSTNESS 20, 21).

- Allowlisted addresses (loopback by default, :class:`~rapidp2p.resources.Allowlist`) skip
  the per-IP cap and rate and have their own totals, so a local test network is never
  throttled by limits meant for the open Internet.
- Pending handshakes are cheap to drop: when the table is full, the oldest pending connection
  that made the least progress (stage: first byte, multistream, security, muxer) is evicted
  for the newcomer instead of refusing it, so silent sockets cannot keep honest peers out.
  Each IP may hold at most ``max_pending_per_ip`` of them.
- Every refusal is a :class:`~rapidp2p.exceptions.ResourceLimitExceeded` naming its scope
  (``system``, ``transient`` for unfinished handshakes, ``ip:<address>``, ``allowlist``)
  and the limit hit.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from rapidp2p.exceptions import ResourceLimitExceeded
from rapidp2p.resources.allowlist import Allowlist
from rapidp2p.resources.limits import ResourceLimits, ScopeLimit

__all__ = ["STAGE_NAMES", "ConnectionLimiter", "Limits", "raise_resource_limits"]

#: Upgrade stages, in order: what a pending connection waits for next.
STAGE_NAMES = ("first byte", "multistream", "security", "muxer")
#: Pending connections at this stage or past it (secured) are never evicted.
_NEVER_EVICT_FROM = 3


@dataclass
class Limits:
    """Safe defaults, close to go-libp2p's resource manager."""

    max_connections: int = 128
    max_pending_handshakes: int = 64
    #: Unfinished handshakes one IP may hold (the rest of its dials are refused).
    max_pending_per_ip: int = 8
    max_connections_per_ip: int = 16
    #: New inbound connections per IP and second (token bucket refill) and the burst size.
    connection_rate_per_ip: float = 16.0
    connection_burst_per_ip: int = 32
    max_streams_per_connection: int = 512
    max_inbound_streams_per_protocol: int = 256
    #: Allowlisted addresses' own limits: no per-IP cap or rate, these totals instead.
    allowlist_max_connections: int = 1024
    allowlist_max_pending_handshakes: int = 256


class _Pending:
    __slots__ = ("allowlisted", "evict", "ip", "stage", "started")

    def __init__(
        self, ip: str | None, allowlisted: bool, started: float, evict: Callable[[], None] | None
    ) -> None:
        self.ip = ip
        self.allowlisted = allowlisted
        self.started = started
        self.stage = 0
        self.evict = evict


class ConnectionLimiter:
    """Counts connections; ``admit_inbound`` says whether a new socket may proceed.

    Every admitted connection is keyed (its connection object) until ``handshake_done`` and,
    when the handshake succeeded, ``connection_closed``; unknown keys are ignored there, so an
    evicted connection's late ``handshake_done`` gives nothing back twice.
    """

    def __init__(self, limits: Limits, allowlist: Allowlist | None = None) -> None:
        self.limits = limits
        self.allowlist = allowlist if allowlist is not None else Allowlist()
        #: Established connections (allowlisted ones counted apart).
        self.connections = 0
        self.allowlisted_connections = 0
        self.per_ip: dict[str, int] = {}
        self.pending_per_ip: dict[str, int] = {}
        #: Refusals and evictions so far, by scope/limit (``"transient/pending"``, ...).
        self.blocked: dict[str, int] = {}
        self.evicted = 0
        self._pending: dict[Hashable, _Pending] = {}
        self._established: dict[Hashable, tuple[str | None, bool]] = {}
        self._pending_plain = 0
        self._buckets: dict[str, tuple[float, float]] = {}  # ip -> (tokens, last time)

    @property
    def pending(self) -> int:
        """Connections admitted whose handshake has not finished yet."""
        return len(self._pending)

    def _take_token(self, ip: str, now: float) -> bool:
        lim = self.limits
        tokens, last = self._buckets.get(ip, (float(lim.connection_burst_per_ip), now))
        tokens = min(
            float(lim.connection_burst_per_ip), tokens + (now - last) * lim.connection_rate_per_ip
        )
        if tokens < 1.0:
            self._buckets[ip] = (tokens, now)
            return False
        self._buckets[ip] = (tokens - 1.0, now)
        if len(self._buckets) > 4096:  # forget the fullest buckets first: bounded memory
            for key in [
                k for k, (t, _) in self._buckets.items() if t >= lim.connection_burst_per_ip - 1
            ]:
                if len(self._buckets) <= 2048:
                    break
                del self._buckets[key]
        return True

    def _refuse(self, scope: str, limit: str, detail: str) -> ResourceLimitExceeded:
        key = f"{scope.split(':', 1)[0]}/{limit}"
        self.blocked[key] = self.blocked.get(key, 0) + 1
        return ResourceLimitExceeded(scope, limit, detail)

    def _victim(self) -> Hashable | None:
        """The oldest of the least-progressed evictable pending connections."""
        best: tuple[int, float] | None = None
        victim: Hashable | None = None
        for key, p in self._pending.items():
            if p.allowlisted or p.evict is None or p.stage >= _NEVER_EVICT_FROM:
                continue
            rank = (p.stage, p.started)
            if best is None or rank < best:
                best, victim = rank, key
        return victim

    def admit_inbound(
        self,
        ip: str | None,
        now: float,
        key: Hashable | None = None,
        evict: Callable[[], None] | None = None,
    ) -> ResourceLimitExceeded | None:
        """None when admitted (counters taken), else the refusal.

        ``evict`` drops this connection if a later newcomer needs its pending slot.
        """
        lim = self.limits
        if key is None:
            key = object()
        if self.allowlist.allows(ip):
            # The allowlist's own totals, never below the general ones.
            max_conns = max(lim.allowlist_max_connections, lim.max_connections)
            max_pending = max(lim.allowlist_max_pending_handshakes, lim.max_pending_handshakes)
            if self.allowlisted_connections + self._allowlisted_pending() >= max_conns:
                return self._refuse("allowlist", "conns", f"{max_conns} connections")
            if self._allowlisted_pending() >= max_pending:
                return self._refuse("allowlist", "pending", f"{max_pending} handshakes")
            self._pending[key] = _Pending(ip, True, now, evict)
            return None
        if self.connections >= lim.max_connections:
            return self._refuse("system", "conns", f"{lim.max_connections} connections")
        if ip is not None:
            if self.per_ip.get(ip, 0) >= lim.max_connections_per_ip:
                return self._refuse(
                    f"ip:{ip}", "conns", f"{lim.max_connections_per_ip} connections per IP"
                )
            if self.pending_per_ip.get(ip, 0) >= lim.max_pending_per_ip:
                return self._refuse(
                    f"ip:{ip}", "pending", f"{lim.max_pending_per_ip} pending handshakes per IP"
                )
        if self._pending_plain >= lim.max_pending_handshakes or (
            self.connections + self._pending_plain >= lim.max_connections
        ):
            victim = self._victim()
            if victim is None:
                return self._refuse(
                    "transient", "pending", f"{lim.max_pending_handshakes} pending handshakes"
                )
            self._evict(victim)
        if ip is not None:
            if not self._take_token(ip, now):
                return self._refuse(
                    f"ip:{ip}", "rate", f"{lim.connection_rate_per_ip:g} connections/s per IP"
                )
            self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
            self.pending_per_ip[ip] = self.pending_per_ip.get(ip, 0) + 1
        self._pending_plain += 1
        self._pending[key] = _Pending(ip, False, now, evict)
        return None

    def _allowlisted_pending(self) -> int:
        return len(self._pending) - self._pending_plain

    def _evict(self, key: Hashable) -> None:
        p = self._pending[key]
        self.evicted += 1
        self.blocked["transient/evicted"] = self.blocked.get("transient/evicted", 0) + 1
        self._drop_pending(key, ok=False)
        if p.evict is not None:
            p.evict()

    def admit_outbound(
        self, ip: str | None, key: Hashable | None = None, now: float = 0.0
    ) -> ResourceLimitExceeded | None:
        if key is None:
            key = object()
        allowlisted = self.allowlist.allows(ip)
        total = self.connections + self._pending_plain
        if not allowlisted and total >= self.limits.max_connections:
            return self._refuse("system", "conns", f"{self.limits.max_connections} connections")
        if not allowlisted:
            if ip is not None:
                self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
            self._pending_plain += 1
        # Outbound dials are never evicted: we chose to make them.
        p = _Pending(None if allowlisted else ip, allowlisted, now, None)
        self._pending[key] = p
        return None

    def progress(self, key: Hashable, stage: int) -> None:
        """The pending connection ``key`` reached upgrade stage ``stage`` (1..4)."""
        p = self._pending.get(key)
        if p is not None and stage > p.stage:
            p.stage = stage

    def handshake_done(self, key: Hashable, ok: bool) -> None:
        """The upgrade of ``key`` ended; on success it now counts as a connection."""
        p = self._pending.get(key)
        if p is None:
            return
        self._drop_pending(key, ok)
        if ok:
            if p.allowlisted:
                self.allowlisted_connections += 1
            else:
                self.connections += 1
            self._established[key] = (p.ip, p.allowlisted)

    def _drop_pending(self, key: Hashable, ok: bool) -> None:
        p = self._pending.pop(key)
        if p.allowlisted:
            return
        self._pending_plain -= 1
        ip = p.ip
        if ip is not None:
            n = self.pending_per_ip.get(ip, 0) - 1
            if n <= 0:
                self.pending_per_ip.pop(ip, None)
            else:
                self.pending_per_ip[ip] = n
            if not ok:
                self._release_ip(ip)

    def connection_closed(self, key: Hashable) -> None:
        entry = self._established.pop(key, None)
        if entry is None:
            return
        ip, allowlisted = entry
        if allowlisted:
            self.allowlisted_connections -= 1
            return
        self.connections -= 1
        self._release_ip(ip)

    def _release_ip(self, ip: str | None) -> None:
        if ip is None:
            return
        n = self.per_ip.get(ip, 0) - 1
        if n <= 0:
            self.per_ip.pop(ip, None)
        else:
            self.per_ip[ip] = n

    def stat(self) -> dict[str, object]:
        """A snapshot for metrics: counts and refusals by scope/limit."""
        return {
            "connections": self.connections,
            "allowlisted_connections": self.allowlisted_connections,
            "pending": self._pending_plain,
            "allowlisted_pending": self._allowlisted_pending(),
            "ips": len(self.per_ip),
            "evicted": self.evicted,
            "blocked": dict(self.blocked),
        }


def raise_resource_limits(limits: Limits, base: ResourceLimits) -> ResourceLimits:
    """``base`` with every limit at least what ``limits`` (the flat caps) allows where those
    were raised from their defaults, so raising a flat cap (a benchmark, a test network) is
    never undone by a scoped one, while the scoped defaults and files apply otherwise."""
    import dataclasses

    default = Limits()

    def raised(name: str) -> int:
        value: int = getattr(limits, name)
        return value if value > getattr(default, name) else 0

    def at_least(lim: ScopeLimit, **mins: int) -> ScopeLimit:
        return dataclasses.replace(lim, **{k: max(getattr(lim, k), v) for k, v in mins.items()})

    conns = raised("max_connections")
    pending = raised("max_pending_handshakes")
    streams = raised("max_streams_per_connection")
    per_proto = raised("max_inbound_streams_per_protocol")
    # The allowlist's own totals apply as they are (not only when raised): they are what
    # keeps a local test network clear of limits meant for the open Internet.
    allow = limits.allowlist_max_connections
    allow_pending = limits.allowlist_max_pending_handshakes
    return dataclasses.replace(
        base,
        system=at_least(
            base.system,
            conns_inbound=conns,
            conns_outbound=conns,
            conns=conns,
            streams_inbound=max(streams, per_proto),
            streams_outbound=streams,
            streams=max(streams, per_proto),
        ),
        # Every connection may open a stream at once: unnegotiated streams wait in transient.
        transient=at_least(
            base.transient,
            conns_inbound=pending,
            conns=pending,
            streams_inbound=max(streams, per_proto, conns),
            streams=max(streams, per_proto, conns),
        ),
        allowlisted_system=at_least(
            base.allowlisted_system,
            conns_inbound=max(allow, conns),
            conns_outbound=max(allow, conns),
            conns=max(allow, conns),
            streams_inbound=max(streams, per_proto),
            streams=max(streams, per_proto),
        ),
        allowlisted_transient=at_least(
            base.allowlisted_transient,
            conns_inbound=max(allow_pending, pending),
            conns=max(allow_pending, pending),
            streams_inbound=max(streams, per_proto, conns, allow),
            streams=max(streams, per_proto, conns, allow),
        ),
        peer=at_least(
            base.peer, streams_inbound=streams, streams_outbound=streams, streams=streams
        ),
        protocol=at_least(
            base.protocol, streams_inbound=per_proto, streams_outbound=per_proto, streams=per_proto
        ),
    )
