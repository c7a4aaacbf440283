"""NAT-PMP (RFC 6886) and PCP (RFC 6887) messages: encoders and checked decoders (sans-IO).

Both protocols are a request datagram to the default gateway's UDP port 5351 and one reply.
Only what a port mapper needs is here: NAT-PMP's external address and MAP (TCP/UDP)
requests, PCP's MAP opcode (whose reply carries the external address too). Every decoder
checks the length, version, opcode, result code and (PCP) the nonce before it trusts a field,
and raises :class:`~rapidp2p.nat.errors.GatewayReplyError` (malformed) or
:class:`~rapidp2p.nat.errors.MappingRefused` (a well-formed refusal) otherwise.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from rapidp2p.nat.errors import GatewayReplyError, MappingRefused

__all__ = [
    "PCP_VERSION",
    "PMP_PORT",
    "MapResult",
    "decode_pcp_announce",
    "decode_pcp_map",
    "decode_pmp_external",
    "decode_pmp_map",
    "encode_pcp_announce",
    "encode_pcp_map",
    "encode_pmp_external",
    "encode_pmp_map",
]

PMP_PORT = 5351
PMP_VERSION = 0
PCP_VERSION = 2
#: Largest datagram read from the gateway (PCP caps a message at 1100 bytes).
MAX_REPLY = 1100

_PMP_OP_EXTERNAL = 0
_PMP_OP = {"udp": 1, "tcp": 2}
_PMP_RESULTS = {
    1: "unsupported version",
    2: "not authorized / refused",
    3: "network failure",
    4: "out of resources",
    5: "unsupported opcode",
}
_PCP_OP_ANNOUNCE = 0
_PCP_OP_MAP = 1
_PCP_PROTO = {"tcp": 6, "udp": 17}
_PCP_RESULTS = {
    1: "UNSUPP_VERSION",
    2: "NOT_AUTHORIZED",
    3: "MALFORMED_REQUEST",
    4: "UNSUPP_OPCODE",
    5: "UNSUPP_OPTION",
    6: "MALFORMED_OPTION",
    7: "NETWORK_FAILURE",
    8: "NO_RESOURCES",
    9: "UNSUPP_PROTOCOL",
    10: "USER_EX_QUOTA",
    11: "CANNOT_PROVIDE_EXTERNAL",
    12: "ADDRESS_MISMATCH",
    13: "EXCESSIVE_REMOTE_PEERS",
}
#: PCP result code "unsupported version": the gateway speaks NAT-PMP only (RFC 6887 §9).
PCP_UNSUPP_VERSION = 1


@dataclass(frozen=True)
class MapResult:
    """A mapping the gateway granted: ``internal_port`` reachable at ``external_port`` for
    ``lifetime`` seconds; ``external_ip`` when the reply carried it (PCP), else None."""

    protocol: str
    internal_port: int
    external_port: int
    lifetime: int
    external_ip: str | None = None


def _check_proto(protocol: str) -> None:
    if protocol not in _PMP_OP:
        raise ValueError(f"protocol must be 'tcp' or 'udp', not {protocol!r}")


def _check_port(port: int, *, zero_ok: bool = False) -> None:
    if not (0 if zero_ok else 1) <= port <= 0xFFFF:
        raise ValueError(f"port out of range: {port}")


# ---- NAT-PMP ----------------------------------------------------------------------------


def encode_pmp_external() -> bytes:
    """The external-address request (version 0, opcode 0)."""
    return bytes((PMP_VERSION, _PMP_OP_EXTERNAL))


def encode_pmp_map(protocol: str, internal_port: int, external_port: int, lifetime: int) -> bytes:
    """A MAP request; ``lifetime`` 0 (with ``external_port`` 0) deletes the mapping."""
    _check_proto(protocol)
    _check_port(internal_port)
    _check_port(external_port, zero_ok=True)
    if not 0 <= lifetime <= 0xFFFFFFFF:
        raise ValueError(f"lifetime out of range: {lifetime}")
    return struct.pack(
        "!BBHHHI", PMP_VERSION, _PMP_OP[protocol], 0, internal_port, external_port, lifetime
    )


def _pmp_header(data: bytes, op: int, size: int) -> None:
    if len(data) < 4:
        raise GatewayReplyError(f"NAT-PMP reply of {len(data)} bytes is truncated")
    version, rop, result = struct.unpack_from("!BBH", data)
    if version != PMP_VERSION:
        raise GatewayReplyError(f"NAT-PMP reply of version {version}")
    if rop != 128 + op:
        raise GatewayReplyError(f"NAT-PMP reply for opcode {rop}, expected {128 + op}")
    if result != 0:
        raise MappingRefused(
            f"NAT-PMP result {result} ({_PMP_RESULTS.get(result, 'unknown')})", code=result
        )
    if len(data) < size:
        raise GatewayReplyError(f"NAT-PMP reply of {len(data)} bytes, expected {size}")


def decode_pmp_external(data: bytes) -> str:
    """The external IPv4 address from an external-address reply."""
    _pmp_header(data, _PMP_OP_EXTERNAL, 12)
    return str(ipaddress.IPv4Address(data[8:12]))


def decode_pmp_map(data: bytes, protocol: str, internal_port: int) -> MapResult:
    """The mapping granted by a MAP reply to our request for ``internal_port``."""
    _check_proto(protocol)
    _pmp_header(data, _PMP_OP[protocol], 16)
    internal, external, lifetime = struct.unpack_from("!HHI", data, 8)
    if internal != internal_port:
        raise GatewayReplyError(f"NAT-PMP reply for port {internal}, asked {internal_port}")
    if lifetime and not external:
        raise GatewayReplyError("NAT-PMP granted external port 0")
    return MapResult(protocol, internal, external, lifetime)


# ---- PCP --------------------------------------------------------------------------------


def _ip16(ip: str) -> bytes:
    addr = ipaddress.ip_address(ip)
    if addr.version == 4:
        return bytes(10) + b"\xff\xff" + addr.packed
    return addr.packed


def _ip_text(raw: bytes) -> str:
    v6 = ipaddress.IPv6Address(raw)
    return str(v6.ipv4_mapped) if v6.ipv4_mapped is not None else str(v6)


def encode_pcp_announce(client_ip: str) -> bytes:
    """A PCP ANNOUNCE request (24 bytes): does the gateway speak PCP?"""
    return struct.pack("!BBHI", PCP_VERSION, _PCP_OP_ANNOUNCE, 0, 0) + _ip16(client_ip)


def _pcp_header(data: bytes, op: int) -> int:
    """Checks a PCP reply's header for opcode ``op``; its lifetime field."""
    if len(data) >= 4 and data[0] == PMP_VERSION:
        result = struct.unpack_from("!H", data, 2)[0]
        if result == PCP_UNSUPP_VERSION:
            raise MappingRefused("the gateway speaks NAT-PMP, not PCP", code=PCP_UNSUPP_VERSION)
        raise GatewayReplyError(f"NAT-PMP reply (result {result}) to a PCP request")
    if len(data) < 24:
        raise GatewayReplyError(f"PCP reply of {len(data)} bytes is truncated")
    if len(data) > MAX_REPLY or len(data) % 4:
        raise GatewayReplyError(f"PCP reply of {len(data)} bytes (not a multiple of 4 <= 1100)")
    version, rop, result = struct.unpack_from("!BBxB", data)
    if version != PCP_VERSION:
        raise GatewayReplyError(f"PCP reply of version {version}")
    if rop != 0x80 | op:
        raise GatewayReplyError(f"PCP reply with R/opcode {rop:#x}, expected {0x80 | op:#x}")
    if result != 0:
        raise MappingRefused(
            f"PCP result {result} ({_PCP_RESULTS.get(result, 'unknown')})", code=result
        )
    return int(struct.unpack_from("!I", data, 4)[0])


def decode_pcp_announce(data: bytes) -> None:
    """Checks an ANNOUNCE reply (raises as :func:`decode_pcp_map` does)."""
    _pcp_header(data, _PCP_OP_ANNOUNCE)


def encode_pcp_map(
    nonce: bytes,
    protocol: str,
    internal_port: int,
    client_ip: str,
    lifetime: int,
    *,
    external_port: int = 0,
    external_ip: str = "0.0.0.0",
) -> bytes:
    """A PCP MAP request (60 bytes): ``client_ip`` is our address as the gateway sees it (the
    source address of the datagram), ``nonce`` 12 random bytes kept for the mapping's life;
    ``lifetime`` 0 deletes it."""
    _check_proto(protocol)
    _check_port(internal_port)
    _check_port(external_port, zero_ok=True)
    if len(nonce) != 12:
        raise ValueError("a PCP nonce is 12 bytes")
    if not 0 <= lifetime <= 0xFFFFFFFF:
        raise ValueError(f"lifetime out of range: {lifetime}")
    header = struct.pack("!BBHI", PCP_VERSION, _PCP_OP_MAP, 0, lifetime) + _ip16(client_ip)
    body = (
        nonce
        + struct.pack("!B3xHH", _PCP_PROTO[protocol], internal_port, external_port)
        + _ip16(external_ip)
    )
    return header + body


def decode_pcp_map(data: bytes, nonce: bytes, protocol: str, internal_port: int) -> MapResult:
    """The mapping granted by a PCP MAP reply to our request (nonce, protocol and internal
    port must match). A NAT-PMP-only gateway answers a PCP request with a version-0
    "unsupported version" reply: :class:`MappingRefused` with code
    :data:`PCP_UNSUPP_VERSION` (the caller then falls back to NAT-PMP)."""
    _check_proto(protocol)
    lifetime = _pcp_header(data, _PCP_OP_MAP)
    if len(data) < 60:
        raise GatewayReplyError(f"PCP MAP reply of {len(data)} bytes, expected 60 or more")
    if data[24:36] != nonce:
        raise GatewayReplyError("PCP reply for another request (nonce differs)")
    proto, internal, external = struct.unpack_from("!B3xHH", data, 36)
    if proto != _PCP_PROTO[protocol] or internal != internal_port:
        raise GatewayReplyError(
            f"PCP reply for protocol {proto} port {internal}, asked {protocol} {internal_port}"
        )
    if lifetime and not external:
        raise GatewayReplyError("PCP granted external port 0")
    return MapResult(protocol, internal, external, lifetime, _ip_text(data[44:60]))
