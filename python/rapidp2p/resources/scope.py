"""One resource scope: usage counters checked against a :class:`ScopeLimit`.

A reservation checks the scope and every ancestor first and then takes from all of them, so
a refusal changes nothing and names the first scope that said no. Plain integer counters;
callers account per stream open/close, per connection and per memory grant, never per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rapidp2p.exceptions import ResourceLimitExceeded
from rapidp2p.resources.limits import UNLIMITED, ScopeLimit

__all__ = ["Direction", "ResourceScope"]

Direction = Literal["inbound", "outbound"]


class ResourceScope:
    """Usage of one scope (``system``, ``transient``, ``peer:<id>``, ``protocol:<id>``, ...)."""

    __slots__ = (
        "blocked",
        "conns_in",
        "conns_out",
        "fd",
        "limit",
        "memory",
        "name",
        "streams_in",
        "streams_out",
    )

    def __init__(self, name: str, limit: ScopeLimit) -> None:
        self.name = name
        self.limit = limit
        self.memory = 0
        self.streams_in = 0
        self.streams_out = 0
        self.conns_in = 0
        self.conns_out = 0
        self.fd = 0
        #: Refusals by this scope, per limit kind (for metrics).
        self.blocked: dict[str, int] = {}

    # ---- checks (no side effects) --------------------------------------------------------

    def _refuse(self, kind: str, limit: int) -> ResourceLimitExceeded:
        self.blocked[kind] = self.blocked.get(kind, 0) + 1
        return ResourceLimitExceeded(self.name, kind, f"limit {limit}")

    def check_stream(self, direction: Direction) -> ResourceLimitExceeded | None:
        lim = self.limit
        if direction == "inbound":
            if self.streams_in >= lim.streams_inbound:
                return self._refuse("streams_inbound", lim.streams_inbound)
        elif self.streams_out >= lim.streams_outbound:
            return self._refuse("streams_outbound", lim.streams_outbound)
        if self.streams_in + self.streams_out >= lim.streams:
            return self._refuse("streams", lim.streams)
        return None

    def check_conn(self, direction: Direction, use_fd: bool) -> ResourceLimitExceeded | None:
        lim = self.limit
        if direction == "inbound":
            if self.conns_in >= lim.conns_inbound:
                return self._refuse("conns_inbound", lim.conns_inbound)
        elif self.conns_out >= lim.conns_outbound:
            return self._refuse("conns_outbound", lim.conns_outbound)
        if self.conns_in + self.conns_out >= lim.conns:
            return self._refuse("conns", lim.conns)
        if use_fd and self.fd >= lim.fd:
            return self._refuse("fd", lim.fd)
        return None

    def check_memory(self, n: int, prio: int = 255) -> ResourceLimitExceeded | None:
        """``prio`` (0-255, go-libp2p's reservation priority) lets a reservation use only the
        share ``(prio + 1) / 256`` of the limit: what can wait (window growth) leaves the rest
        to what cannot (bytes already received)."""
        limit = self.limit.memory
        cap = limit if prio >= 255 else limit * (prio + 1) // 256
        if self.memory + n > cap:
            return self._refuse("memory", limit)
        return None

    # ---- changes (after every scope of the chain agreed) ---------------------------------

    def add_stream(self, direction: Direction, n: int = 1) -> None:
        if direction == "inbound":
            self.streams_in += n
        else:
            self.streams_out += n

    def add_conn(self, direction: Direction, use_fd: bool, n: int = 1) -> None:
        if direction == "inbound":
            self.conns_in += n
        else:
            self.conns_out += n
        if use_fd:
            self.fd += n

    def add_memory(self, n: int) -> None:
        self.memory += n

    @property
    def is_idle(self) -> bool:
        return not (
            self.memory or self.streams_in or self.streams_out or self.conns_in or self.conns_out
        )

    def stat(self) -> dict[str, int]:
        """Current usage (and the limits, ``-1`` for unlimited) for metrics and debugging."""

        def lim(v: int) -> int:
            return -1 if v >= UNLIMITED else v

        return {
            "memory": self.memory,
            "streams_inbound": self.streams_in,
            "streams_outbound": self.streams_out,
            "conns_inbound": self.conns_in,
            "conns_outbound": self.conns_out,
            "fd": self.fd,
            "limit_memory": lim(self.limit.memory),
            "limit_streams": lim(self.limit.streams),
            "limit_conns": lim(self.limit.conns),
            "blocked": sum(self.blocked.values()),
        }

    def __repr__(self) -> str:
        return f"<ResourceScope {self.name} {self.stat()}>"


def reserve_stream(chain: Sequence[ResourceScope], direction: Direction) -> None:
    """Takes a stream from every scope of ``chain`` or raises, changing nothing.

    Inlined counters: this runs per stream open (the accounting's hot path)."""
    if direction == "inbound":
        for s in chain:
            lim = s.limit
            if s.streams_in >= lim.streams_inbound or s.streams_in + s.streams_out >= lim.streams:
                raise s.check_stream(direction) or AssertionError("limit check disagrees")
        for s in chain:
            s.streams_in += 1
    else:
        for s in chain:
            lim = s.limit
            if s.streams_out >= lim.streams_outbound or s.streams_in + s.streams_out >= lim.streams:
                raise s.check_stream(direction) or AssertionError("limit check disagrees")
        for s in chain:
            s.streams_out += 1


def release_stream(chain: Sequence[ResourceScope], direction: Direction) -> None:
    if direction == "inbound":
        for s in chain:
            s.streams_in -= 1
    else:
        for s in chain:
            s.streams_out -= 1


def reserve_conn(chain: Sequence[ResourceScope], direction: Direction, use_fd: bool) -> None:
    for s in chain:
        err = s.check_conn(direction, use_fd)
        if err is not None:
            raise err
    for s in chain:
        s.add_conn(direction, use_fd)


def release_conn(chain: Sequence[ResourceScope], direction: Direction, use_fd: bool) -> None:
    for s in chain:
        s.add_conn(direction, use_fd, -1)


def reserve_memory(chain: Sequence[ResourceScope], n: int, prio: int = 255) -> None:
    for s in chain:
        err = s.check_memory(n, prio)
        if err is not None:
            raise err
    for s in chain:
        s.add_memory(n)


def release_memory(chain: Sequence[ResourceScope], n: int) -> None:
    for s in chain:
        s.add_memory(-n)
