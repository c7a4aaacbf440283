"""Limits per resource scope, scaled to the machine like go-libp2p's ``AutoScale``.

A :class:`ScopeLimit` bounds one scope: connections and streams by direction and in total,
file descriptors and memory (bytes). :class:`ResourceLimits` holds one per scope kind, plus
per-service / per-protocol / per-peer overrides. :func:`autoscale` computes the defaults from
the machine: the base limits plus an increase per GiB of memory given to libp2p (an eighth of
the machine's memory, at least 128 MiB: the same shape as go-libp2p), file
descriptors from half the process's fd limit. :func:`load_limits` reads a limits file (JSON, or
TOML where :mod:`tomllib` exists: Python 3.11+) whose keys override the computed defaults::

    {"system": {"conns_inbound": 256, "memory": "1 GiB"},
     "peer": {"streams": 1024},
     "protocols": {"/ipfs/kad/1.0.0": {"streams_inbound": 128}}}
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "UNLIMITED",
    "ResourceLimits",
    "ScopeLimit",
    "autoscale",
    "load_limits",
    "machine_fd_limit",
    "machine_memory",
]

UNLIMITED = 1 << 62
"""A limit never reached."""

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class ScopeLimit:
    """What one scope may hold at once (``UNLIMITED`` where a kind does not apply)."""

    conns_inbound: int = UNLIMITED
    conns_outbound: int = UNLIMITED
    conns: int = UNLIMITED
    streams_inbound: int = UNLIMITED
    streams_outbound: int = UNLIMITED
    streams: int = UNLIMITED
    fd: int = UNLIMITED
    memory: int = UNLIMITED

    def scaled(self, increase: ScopeLimit, gib: float, fd: int | None = None) -> ScopeLimit:
        """``self + increase * gib`` for every kind (``fd`` replaces the fd limit if given)."""

        def add(a: int, b: int) -> int:
            if a >= UNLIMITED or b >= UNLIMITED:
                return a
            return min(UNLIMITED, a + int(b * gib))

        out = {f.name: add(getattr(self, f.name), getattr(increase, f.name)) for f in _FIELDS}
        if fd is not None:
            out["fd"] = fd
        return ScopeLimit(**out)

    def with_overrides(self, values: Mapping[str, Any]) -> ScopeLimit:
        """A copy with the given kinds replaced (sizes may be ``"64 MiB"``-style strings)."""
        names = {f.name for f in _FIELDS}
        out: dict[str, int] = {}
        for k, v in values.items():
            if k not in names:
                raise ValueError(f"unknown limit {k!r} (expected one of {sorted(names)})")
            out[k] = _parse_amount(v)
        return dataclasses.replace(self, **out)


_FIELDS = dataclasses.fields(ScopeLimit)


@dataclass
class ResourceLimits:
    """One :class:`ScopeLimit` per scope kind (see :class:`~rapidp2p.resources.ResourceManager`).

    ``allowlisted_system`` / ``allowlisted_transient`` replace ``system`` / ``transient`` for
    connections from allowlisted addresses (loopback by default), so a local test network does
    not compete with the public Internet for the same budget.
    """

    system: ScopeLimit
    transient: ScopeLimit
    allowlisted_system: ScopeLimit
    allowlisted_transient: ScopeLimit
    service: ScopeLimit
    protocol: ScopeLimit
    peer: ScopeLimit
    conn: ScopeLimit
    stream: ScopeLimit
    services: dict[str, ScopeLimit] = field(default_factory=dict)
    protocols: dict[str, ScopeLimit] = field(default_factory=dict)
    peers: dict[str, ScopeLimit] = field(default_factory=dict)

    def for_service(self, name: str) -> ScopeLimit:
        return self.services.get(name, self.service)

    def for_protocol(self, proto: str) -> ScopeLimit:
        return self.protocols.get(proto, self.protocol)

    def for_peer(self, peer: str) -> ScopeLimit:
        return self.peers.get(peer, self.peer)

    def apply(self, overrides: Mapping[str, Any]) -> ResourceLimits:
        """A copy with a limits-file mapping applied (see the module docstring)."""
        out = dataclasses.replace(
            self,
            services=dict(self.services),
            protocols=dict(self.protocols),
            peers=dict(self.peers),
        )
        kinds = {f.name for f in dataclasses.fields(self)} - {"services", "protocols", "peers"}
        for key, value in overrides.items():
            if not isinstance(value, Mapping):
                raise ValueError(f"limits: {key!r} must be a table/object")
            if key in kinds:
                setattr(out, key, getattr(out, key).with_overrides(value))
            elif key in ("services", "protocols", "peers"):
                base = {"services": self.service, "protocols": self.protocol, "peers": self.peer}
                table: dict[str, ScopeLimit] = getattr(out, key)
                for name, lim in value.items():
                    if not isinstance(lim, Mapping):
                        raise ValueError(f"limits: {key}.{name} must be a table/object")
                    table[str(name)] = table.get(str(name), base[key]).with_overrides(lim)
            else:
                raise ValueError(f"limits: unknown scope {key!r}")
        return out


# go-libp2p's default shape: (base limit, increase per GiB of memory given to libp2p).
_BASE = {
    "system": ScopeLimit(64, 128, 128, 1024, 2048, 2048, memory=128 * MiB),
    "transient": ScopeLimit(32, 64, 64, 128, 256, 256, memory=32 * MiB),
    "service": ScopeLimit(
        streams_inbound=1024, streams_outbound=4096, streams=4096, memory=64 * MiB
    ),
    "protocol": ScopeLimit(
        streams_inbound=512, streams_outbound=2048, streams=2048, memory=64 * MiB
    ),
    "peer": ScopeLimit(8, 8, 8, 256, 512, 512, memory=64 * MiB),
    "conn": ScopeLimit(1, 1, 1, memory=32 * MiB),
    "stream": ScopeLimit(streams_inbound=1, streams_outbound=1, streams=1, memory=16 * MiB),
}
_INCREASE = {
    "system": ScopeLimit(64, 128, 128, 1024, 2048, 2048, memory=1 * GiB),
    "transient": ScopeLimit(16, 32, 32, 128, 256, 256, memory=128 * MiB),
    "service": ScopeLimit(0, 0, 0, 512, 2048, 2048, memory=128 * MiB),
    "protocol": ScopeLimit(0, 0, 0, 256, 512, 512, memory=164 * MiB),
    "peer": ScopeLimit(0, 0, 0, 256, 512, 512, memory=128 * MiB),
}
#: Share of the fd budget per scope kind (the rest is left to the application).
_FD_SHARE = {"system": 1.0, "transient": 0.25, "peer": 1 / 64}


def machine_memory() -> int:
    """Physical memory in bytes (1 GiB when it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return GiB


def machine_fd_limit() -> int:
    """The process's soft fd limit (1024 when it cannot be read)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 1024
    return 1024 if soft == resource.RLIM_INFINITY else int(soft)


def autoscale(memory: int | None = None, fd_limit: int | None = None) -> ResourceLimits:
    """Defaults for this machine: libp2p gets an eighth of ``memory`` (at least 128 MiB) and
    half of ``fd_limit``; each limit is its base plus its increase per GiB above 128 MiB."""
    mem = machine_memory() if memory is None else memory
    fds = machine_fd_limit() if fd_limit is None else fd_limit
    budget = max(128 * MiB, mem // 8)
    gib = (budget - 128 * MiB) / GiB
    fd_budget = max(16, fds // 2)
    out: dict[str, ScopeLimit] = {}
    for kind, base in _BASE.items():
        inc = _INCREASE.get(kind)
        share = _FD_SHARE.get(kind)
        fd = None if share is None else max(1, int(fd_budget * share))
        if kind == "conn":
            fd = 1
        out[kind] = base.scaled(inc, gib, fd) if inc is not None else base.scaled(base, 0, fd)
    return ResourceLimits(
        system=out["system"],
        transient=out["transient"],
        allowlisted_system=out["system"],
        allowlisted_transient=out["transient"],
        service=out["service"],
        protocol=out["protocol"],
        peer=out["peer"],
        conn=out["conn"],
        stream=out["stream"],
    )


def load_limits(path: str | os.PathLike[str], base: ResourceLimits | None = None) -> ResourceLimits:
    """Reads a limits file (``.json``; ``.toml`` on Python 3.11+) over ``base`` (autoscaled)."""
    text_path = os.fspath(path)
    with open(text_path, "rb") as f:
        raw = f.read()
    data: Any
    if text_path.endswith(".toml"):
        try:
            tomllib: Any = importlib.import_module("tomllib")
        except ImportError as exc:  # Python 3.10
            raise ValueError("TOML limits files need Python 3.11+; use JSON") from exc
        data = tomllib.loads(raw.decode())
    else:
        import json

        data = json.loads(raw)
    if not isinstance(data, Mapping):
        raise ValueError(f"{text_path}: expected an object of scopes")
    return (base or autoscale()).apply(data)


_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kib": KiB, "mib": MiB, "gib": GiB, "tib": GiB << 10}
_UNITS |= {"kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}


def _parse_amount(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"limit {value!r} is not a number")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"limit {value} is negative")
        return min(value, UNLIMITED)
    if isinstance(value, str):
        if value.strip().lower() in ("unlimited", "inf"):
            return UNLIMITED
        m = _AMOUNT.match(value)
        if m:
            return int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])
    raise ValueError(f"limit {value!r} is not a count or a size like '64 MiB'")
