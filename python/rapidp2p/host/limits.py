"""Admission control for connections: totals, pending handshakes, per-IP cap and rate.

Plain counters, checked when a socket is accepted (before any handshake work) and released
when the connection ends, so a flood costs one ``accept`` each (ROBUSTNESS 20, 21).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConnectionLimiter", "Limits"]


@dataclass
class Limits:
    """Safe defaults, close to go-libp2p's resource manager."""

    max_connections: int = 128
    max_pending_handshakes: int = 64
    max_connections_per_ip: int = 16
    #: New inbound connections per IP and second (token bucket refill) and the burst size.
    connection_rate_per_ip: float = 16.0
    connection_burst_per_ip: int = 32
    max_streams_per_connection: int = 512
    max_inbound_streams_per_protocol: int = 256


class ConnectionLimiter:
    """Counts connections; ``admit_inbound`` says whether a new socket may proceed."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.connections = 0
        self.pending = 0
        self.per_ip: dict[str, int] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # ip -> (tokens, last time)

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

    def admit_inbound(self, ip: str | None, now: float) -> str | None:
        """None when admitted (counters taken), else the reason for refusing."""
        lim = self.limits
        if self.connections + self.pending >= lim.max_connections:
            return "connection limit reached"
        if self.pending >= lim.max_pending_handshakes:
            return "too many pending handshakes"
        if ip is not None:
            if self.per_ip.get(ip, 0) >= lim.max_connections_per_ip:
                return f"per-IP connection limit reached for {ip}"
            if not self._take_token(ip, now):
                return f"connection rate limit reached for {ip}"
            self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        self.pending += 1
        return None

    def admit_outbound(self, ip: str | None) -> str | None:
        if self.connections + self.pending >= self.limits.max_connections:
            return "connection limit reached"
        if ip is not None:
            self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        self.pending += 1
        return None

    def handshake_done(self, ok: bool, ip: str | None) -> None:
        self.pending -= 1
        if ok:
            self.connections += 1
        else:
            self._release_ip(ip)

    def connection_closed(self, ip: str | None) -> None:
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
