"""DCUtR (libp2p/specs relay/DCUtR.md), sans-IO: the ``HolePunch`` message, the address
rules and the typed errors.

Wire: ``uvarint(len) || HolePunch`` on ``/libp2p/dcutr``, at most :data:`MAX_MESSAGE_SIZE`
bytes (the spec's 4 KiB, go-libp2p's and rust-libp2p's cap)::

    message HolePunch { enum Type { CONNECT = 100; SYNC = 300; }
                        optional Type type = 1; repeated bytes ObsAddrs = 2; }

Small and rare messages (three per attempt): the bounded Python protobuf codec of
:mod:`rapidp2p.protocols._protobuf`, as the relay's messages use.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from rapidp2p.exceptions import DecodeError, Libp2pError, RemoteProtocolError
from rapidp2p.peer import Multiaddr
from rapidp2p.protocols._protobuf import field_bytes, field_varint, iter_fields
from rapidp2p.transport.base import parse_components

__all__ = [
    "MAX_ADDRS",
    "MAX_ATTEMPTS",
    "MAX_MESSAGE_SIZE",
    "PROTOCOL_ID",
    "HolePunch",
    "HolePunchError",
    "HolePunchType",
    "MalformedHolePunch",
    "punchable_addrs",
]

PROTOCOL_ID = "/libp2p/dcutr"
MAX_MESSAGE_SIZE = 4096
"""Largest message read (the spec: implementations SHOULD refuse more than 4 KiB)."""
MAX_ADDRS = 32
"""Addresses kept from one CONNECT (the rest are dropped, as the relay's ``Peer`` does)."""
MAX_ATTEMPTS = 3
"""Hole-punch attempts per relayed connection (the spec: the initiator retries twice)."""


class HolePunchType(IntEnum):
    CONNECT = 100
    SYNC = 300


class HolePunchError(Libp2pError):
    """A hole punch did not produce a direct connection (after its attempts)."""


class MalformedHolePunch(HolePunchError, RemoteProtocolError):
    """A message that does not decode, has no or an unknown type, or comes out of turn."""


@dataclass(frozen=True)
class HolePunch:
    """One ``HolePunch`` message; ``addrs`` are the decodable ``ObsAddrs`` (a bad one is
    skipped, as go-libp2p does), at most :data:`MAX_ADDRS`."""

    type: HolePunchType
    addrs: tuple[Multiaddr, ...] = ()

    def encode(self) -> bytes:
        out = field_varint(1, int(self.type))
        for a in self.addrs[:MAX_ADDRS]:
            out += field_bytes(2, a.to_bytes())
        return out

    @classmethod
    def decode(cls, data: bytes) -> HolePunch:
        if len(data) > MAX_MESSAGE_SIZE:
            raise MalformedHolePunch(f"HolePunch of {len(data)} bytes (cap {MAX_MESSAGE_SIZE})")
        kind: int | None = None
        raw: list[bytes] = []
        try:
            for number, wire, value in iter_fields(data, max_fields=256):
                if number == 1 and wire == 0 and isinstance(value, int):
                    kind = value
                elif (
                    number == 2 and wire == 2 and isinstance(value, bytes) and len(raw) < MAX_ADDRS
                ):
                    raw.append(value)
        except DecodeError as exc:
            raise MalformedHolePunch(f"undecodable HolePunch: {exc}") from None
        if kind is None:
            raise MalformedHolePunch("HolePunch without a type")
        try:
            typ = HolePunchType(kind)
        except ValueError:
            raise MalformedHolePunch(f"HolePunch of unknown type {kind}") from None
        addrs: list[Multiaddr] = []
        for b in raw:
            try:
                addrs.append(Multiaddr.from_bytes(b))
            except DecodeError:
                continue
        return cls(typ, tuple(addrs))


def _is_relayed(comps: Sequence[tuple[str, str]]) -> bool:
    return any(name == "p2p-circuit" for name, _ in comps)


def punchable_addrs(addrs: Iterable[Multiaddr], *, allow_private: bool = False) -> list[Multiaddr]:
    """The addresses worth punching: IP + TCP or QUIC v1, no relay, no ``/p2p`` suffix (an
    address from rust-libp2p carries the sender's), and unless ``allow_private`` only
    global unicast IPs (no private, loopback, link-local or unspecified one: a NAT's LAN
    side is not reachable from the other NAT's). Order kept, duplicates dropped."""
    out: list[Multiaddr] = []
    for a in addrs:
        try:
            base, _peer = a.split_peer_id()
            if base is None:
                continue
            comps = parse_components(base)
        except (DecodeError, ValueError):
            continue
        if len(comps) < 2 or comps[0][0] not in ("ip4", "ip6") or _is_relayed(comps):
            continue
        tail = [name for name, _ in comps[1:]]
        if tail != ["tcp"] and tail != ["udp", "quic-v1"]:
            continue
        try:
            ip = ipaddress.ip_address(comps[0][1])
            port = int(comps[1][1])
        except ValueError:
            continue
        if port == 0 or ip.is_unspecified or ip.is_multicast:
            continue
        if not allow_private and not ip.is_global:
            continue
        if base not in out:
            out.append(base)
    return out
