"""The relay's bookkeeping, sans-IO: who holds a reservation until when, how many circuits
run, and the limits on both (time is passed in; every table is capped).

Defaults follow go-libp2p's relay v2 resources (128 reservations, 8 per IP, 1 hour TTL, 16
circuits per peer) and the spec's limited relay (2 minutes and 128 KiB per direction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rapidp2p.peer import PeerId
from rapidp2p.relay._proto import Status

__all__ = ["RelayLimits", "ReservationBook", "ReservationEntry"]


@dataclass(frozen=True)
class RelayLimits:
    """What a relay grants (all counts are caps; ``None`` durations or sizes: unlimited)."""

    #: Seconds a reservation lasts (the client refreshes before it runs out).
    reservation_ttl: float = 3600.0
    #: Live reservations in total, per IP address, and per peer (a refresh replaces its own).
    max_reservations: int = 128
    max_reservations_per_ip: int = 8
    #: Relayed connections at once in total, and per peer (as source or as target).
    max_circuits: int = 64
    max_circuits_per_peer: int = 16
    #: The limited relay: seconds and bytes per direction of one relayed connection.
    circuit_duration: float | None = 120.0
    circuit_bytes: int | None = 128 * 1024
    #: Seconds to wait for a client's request, and for the target's answer on ``stop``.
    handshake_timeout: float = 60.0
    connect_timeout: float = 30.0


@dataclass
class ReservationEntry:
    """One live reservation."""

    peer: PeerId
    ip: str | None
    expires_at: float  # loop time
    expire_unix: int  # what the client was told


class ReservationBook:
    """Reservations and circuit counts of one relay."""

    def __init__(self, limits: RelayLimits | None = None) -> None:
        self.limits = limits or RelayLimits()
        self._rsvp: dict[PeerId, ReservationEntry] = {}
        self._circuits: dict[PeerId, int] = {}
        self._circuit_total = 0

    # ---- reservations ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rsvp)

    def prune(self, now: float, connected: Callable[[PeerId], bool]) -> list[PeerId]:
        """Drops expired reservations and those whose peer disconnected (spec: a
        reservation holds only while the peer stays connected); returns their peers."""
        gone = [p for p, e in self._rsvp.items() if e.expires_at <= now or not connected(p)]
        for p in gone:
            del self._rsvp[p]
        return gone

    def reserve(
        self, peer: PeerId, ip: str | None, now: float, unix_now: float
    ) -> ReservationEntry | Status:
        """Grants (or refreshes) ``peer``'s reservation, or says why not
        (``RESERVATION_REFUSED`` over the total or per-IP cap)."""
        lim = self.limits
        existing = self._rsvp.get(peer)
        if existing is None:
            if len(self._rsvp) >= lim.max_reservations:
                return Status.RESERVATION_REFUSED
            if ip is not None:
                same_ip = sum(1 for e in self._rsvp.values() if e.ip == ip)
                if same_ip >= lim.max_reservations_per_ip:
                    return Status.RESERVATION_REFUSED
        entry = ReservationEntry(
            peer, ip, now + lim.reservation_ttl, int(unix_now + lim.reservation_ttl)
        )
        self._rsvp[peer] = entry
        return entry

    def has_reservation(self, peer: PeerId, now: float) -> bool:
        e = self._rsvp.get(peer)
        return e is not None and e.expires_at > now

    def get(self, peer: PeerId) -> ReservationEntry | None:
        return self._rsvp.get(peer)

    def cancel(self, peer: PeerId) -> None:
        self._rsvp.pop(peer, None)

    # ---- circuits ----------------------------------------------------------------------

    @property
    def circuits(self) -> int:
        return self._circuit_total

    def circuits_of(self, peer: PeerId) -> int:
        return self._circuits.get(peer, 0)

    def open_circuit(self, src: PeerId, dst: PeerId) -> Status | None:
        """Counts a circuit from ``src`` to ``dst``; ``RESOURCE_LIMIT_EXCEEDED`` when a cap
        is reached (nothing counted then)."""
        lim = self.limits
        if self._circuit_total >= lim.max_circuits:
            return Status.RESOURCE_LIMIT_EXCEEDED
        for p in (src, dst):
            if self._circuits.get(p, 0) >= lim.max_circuits_per_peer:
                return Status.RESOURCE_LIMIT_EXCEEDED
        for p in (src, dst):
            self._circuits[p] = self._circuits.get(p, 0) + 1
        self._circuit_total += 1
        return None

    def close_circuit(self, src: PeerId, dst: PeerId) -> None:
        for p in (src, dst):
            n = self._circuits.get(p, 0) - 1
            if n > 0:
                self._circuits[p] = n
            else:
                self._circuits.pop(p, None)
        self._circuit_total = max(0, self._circuit_total - 1)
