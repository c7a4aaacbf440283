"""Circuit Relay v2 (libp2p/specs relay/circuit-v2.md), sans-IO: the wire messages, the
reservation voucher and the typed errors.

Wire: every message is ``uvarint(len) || HopMessage`` (on ``/libp2p/circuit/relay/0.2.0/hop``)
or ``|| StopMessage`` (on ``.../stop``), at most :data:`MAX_MESSAGE_SIZE` bytes (go-libp2p and
rust-libp2p use the same 4 KiB cap). After a ``STATUS: OK`` answer to ``CONNECT`` the stream
stops carrying messages and carries the relayed connection's bytes.

The messages are small and rare (one or two per reservation or circuit), so they use the
bounded Python protobuf codec (:mod:`rapidp2p.protocols._protobuf`) rather than a Rust one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from rapidp2p.crypto import PublicKey
from rapidp2p.exceptions import DecodeError, Libp2pError, RecordError, RemoteProtocolError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols._protobuf import field_bytes, field_varint, iter_fields
from rapidp2p.records.envelope import Envelope, register_record_type

__all__ = [
    "HOP_PROTOCOL",
    "MAX_ADDRS",
    "MAX_MESSAGE_SIZE",
    "STOP_PROTOCOL",
    "VOUCHER_DOMAIN",
    "VOUCHER_PAYLOAD_TYPE",
    "HopMessage",
    "HopType",
    "Limit",
    "MalformedRelayMessage",
    "Peer",
    "RelayError",
    "RelayRefused",
    "Reservation",
    "Status",
    "StopMessage",
    "StopType",
    "Voucher",
    "open_voucher",
    "status_name",
]

HOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/hop"
STOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/stop"
MAX_MESSAGE_SIZE = 4096
"""Largest relay message read (go-libp2p's and rust-libp2p's cap)."""
MAX_ADDRS = 32
"""Addresses kept from a ``Peer`` or a ``Reservation`` (the rest are dropped)."""
VOUCHER_DOMAIN = "libp2p-relay-rsvp"
VOUCHER_PAYLOAD_TYPE = b"\x03\x02"
"""The multicodec ``libp2p-relay-rsvp`` (0x0302) as an unsigned varint."""


class Status(IntEnum):
    """The spec's status codes (``enum Status``)."""

    OK = 100
    RESERVATION_REFUSED = 200
    RESOURCE_LIMIT_EXCEEDED = 201
    PERMISSION_DENIED = 202
    CONNECTION_FAILED = 203
    NO_RESERVATION = 204
    MALFORMED_MESSAGE = 400
    UNEXPECTED_MESSAGE = 401


class RelayError(Libp2pError):
    """A relay exchange failed; ``status`` is the spec's code for it when there is one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def status_name(self) -> str:
        """``NO_RESERVATION`` and the like (the number when it is not a known code)."""
        return status_name(self.status)


def status_name(status: int | None) -> str:
    """The spec's name of a status code (the number when it is not a known code)."""
    if status is None:
        return "no status"
    try:
        return Status(status).name
    except ValueError:
        return str(status)


class RelayRefused(RelayError):
    """The relay (or, for ``STOP``, the target) answered with a status other than ``OK``."""


class MalformedRelayMessage(RelayError, RemoteProtocolError):
    """A relay message that does not decode, lacks a required field, or is of the wrong type
    for where it arrived (``status`` is ``MALFORMED_MESSAGE`` or ``UNEXPECTED_MESSAGE``)."""


class HopType(IntEnum):
    RESERVE = 0
    CONNECT = 1
    STATUS = 2


class StopType(IntEnum):
    CONNECT = 0
    STATUS = 1


def _malformed(what: str) -> MalformedRelayMessage:
    return MalformedRelayMessage(what, Status.MALFORMED_MESSAGE)


def _fields(data: bytes, what: str) -> list[tuple[int, int, int | bytes]]:
    try:
        return list(iter_fields(data, max_fields=256))
    except DecodeError as exc:
        raise _malformed(f"undecodable {what}: {exc}") from None


def _addrs(raw: Sequence[bytes]) -> tuple[Multiaddr, ...]:
    """Decodable addresses, at most :data:`MAX_ADDRS` (a bad one is skipped, as go does)."""
    out: list[Multiaddr] = []
    for b in raw[:MAX_ADDRS]:
        try:
            out.append(Multiaddr.from_bytes(b))
        except DecodeError:
            continue
    return tuple(out)


@dataclass(frozen=True)
class Peer:
    """``message Peer``: who (``id``) and, optionally, where (``addrs``)."""

    peer_id: PeerId
    addrs: tuple[Multiaddr, ...] = ()

    def encode(self) -> bytes:
        out = field_bytes(1, self.peer_id.to_bytes())
        for a in self.addrs:
            out += field_bytes(2, a.to_bytes())
        return out

    @classmethod
    def decode(cls, data: bytes) -> Peer:
        pid: bytes | None = None
        raw: list[bytes] = []
        for number, wire, value in _fields(data, "Peer"):
            if number == 1 and wire == 2 and isinstance(value, bytes):
                pid = value
            elif number == 2 and wire == 2 and isinstance(value, bytes) and len(raw) < MAX_ADDRS:
                raw.append(value)
        if pid is None:
            raise _malformed("Peer without an id")
        try:
            peer_id = PeerId.from_bytes(pid)
        except DecodeError as exc:
            raise _malformed(f"Peer with a bad id: {exc}") from None
        return cls(peer_id, _addrs(raw))


@dataclass(frozen=True)
class Limit:
    """``message Limit``: seconds and bytes per direction of one relayed connection (0 or
    None: no limit of that kind)."""

    duration: int | None = None
    data: int | None = None

    def encode(self) -> bytes:
        out = b""
        if self.duration is not None:
            out += field_varint(1, self.duration)
        if self.data is not None:
            out += field_varint(2, self.data)
        return out

    @classmethod
    def decode(cls, data: bytes) -> Limit:
        duration: int | None = None
        size: int | None = None
        for number, wire, value in _fields(data, "Limit"):
            if number == 1 and wire == 0 and isinstance(value, int):
                duration = value & 0xFFFFFFFF  # uint32 on the wire
            elif number == 2 and wire == 0 and isinstance(value, int):
                size = value
        return cls(duration, size)


@dataclass(frozen=True)
class Reservation:
    """``message Reservation``: until when (UNIX seconds), the relay's addresses (with its
    ``/p2p`` id, without ``/p2p-circuit``) and the voucher (signed envelope bytes)."""

    expire: int | None = None
    addrs: tuple[Multiaddr, ...] = ()
    voucher: bytes | None = None

    def encode(self) -> bytes:
        out = b""
        if self.expire is not None:
            out += field_varint(1, self.expire)
        for a in self.addrs:
            out += field_bytes(2, a.to_bytes())
        if self.voucher is not None:
            out += field_bytes(3, self.voucher)
        return out

    @classmethod
    def decode(cls, data: bytes) -> Reservation:
        expire: int | None = None
        raw: list[bytes] = []
        voucher: bytes | None = None
        for number, wire, value in _fields(data, "Reservation"):
            if number == 1 and wire == 0 and isinstance(value, int):
                expire = value
            elif number == 2 and wire == 2 and isinstance(value, bytes) and len(raw) < MAX_ADDRS:
                raw.append(value)
            elif number == 3 and wire == 2 and isinstance(value, bytes):
                voucher = value
        return cls(expire, _addrs(raw), voucher)


def _status(value: int) -> int:
    """Known codes as :class:`Status`, unknown ones kept as numbers (a newer peer's)."""
    try:
        return Status(value)
    except ValueError:
        return value


@dataclass(frozen=True)
class HopMessage:
    """``message HopMessage`` (``type`` is required; the rest depends on it)."""

    type: HopType
    peer: Peer | None = None
    reservation: Reservation | None = None
    limit: Limit | None = None
    status: int | None = None

    def encode(self) -> bytes:
        out = field_varint(1, int(self.type))
        if self.peer is not None:
            out += field_bytes(2, self.peer.encode())
        if self.reservation is not None:
            out += field_bytes(3, self.reservation.encode())
        if self.limit is not None:
            out += field_bytes(4, self.limit.encode())
        if self.status is not None:
            out += field_varint(5, int(self.status))
        return out

    @classmethod
    def decode(cls, data: bytes) -> HopMessage:
        """Raises :class:`MalformedRelayMessage` (undecodable, no or unknown type, bad peer)."""
        kind: int | None = None
        peer: Peer | None = None
        rsvp: Reservation | None = None
        limit: Limit | None = None
        status: int | None = None
        for number, wire, value in _fields(data, "HopMessage"):
            if number == 1 and wire == 0 and isinstance(value, int):
                kind = value
            elif number == 2 and wire == 2 and isinstance(value, bytes):
                peer = Peer.decode(value)
            elif number == 3 and wire == 2 and isinstance(value, bytes):
                rsvp = Reservation.decode(value)
            elif number == 4 and wire == 2 and isinstance(value, bytes):
                limit = Limit.decode(value)
            elif number == 5 and wire == 0 and isinstance(value, int):
                status = _status(value)
        if kind is None:
            raise _malformed("HopMessage without a type")
        try:
            hop_type = HopType(kind)
        except ValueError:
            raise _malformed(f"HopMessage of unknown type {kind}") from None
        return cls(hop_type, peer, rsvp, limit, status)


@dataclass(frozen=True)
class StopMessage:
    """``message StopMessage``."""

    type: StopType
    peer: Peer | None = None
    limit: Limit | None = None
    status: int | None = None

    def encode(self) -> bytes:
        out = field_varint(1, int(self.type))
        if self.peer is not None:
            out += field_bytes(2, self.peer.encode())
        if self.limit is not None:
            out += field_bytes(3, self.limit.encode())
        if self.status is not None:
            out += field_varint(4, int(self.status))
        return out

    @classmethod
    def decode(cls, data: bytes) -> StopMessage:
        """Raises :class:`MalformedRelayMessage`."""
        kind: int | None = None
        peer: Peer | None = None
        limit: Limit | None = None
        status: int | None = None
        for number, wire, value in _fields(data, "StopMessage"):
            if number == 1 and wire == 0 and isinstance(value, int):
                kind = value
            elif number == 2 and wire == 2 and isinstance(value, bytes):
                peer = Peer.decode(value)
            elif number == 3 and wire == 2 and isinstance(value, bytes):
                limit = Limit.decode(value)
            elif number == 4 and wire == 0 and isinstance(value, int):
                status = _status(value)
        if kind is None:
            raise _malformed("StopMessage without a type")
        try:
            stop_type = StopType(kind)
        except ValueError:
            raise _malformed(f"StopMessage of unknown type {kind}") from None
        return cls(stop_type, peer, limit, status)


@register_record_type
@dataclass(frozen=True)
class Voucher:
    """The reservation voucher: ``relay`` will serve ``peer`` until ``expiration`` (UNIX
    seconds). Travels as a signed envelope (domain ``libp2p-relay-rsvp``) signed by the
    relay; advisory today (nobody requires it to dial), but go-libp2p refuses a reservation
    whose voucher does not open."""

    DOMAIN: ClassVar[str] = VOUCHER_DOMAIN
    PAYLOAD_TYPE: ClassVar[bytes] = VOUCHER_PAYLOAD_TYPE

    relay: PeerId
    peer: PeerId
    expiration: int

    def marshal(self) -> bytes:
        """Canonical form: fields in number order."""
        return (
            field_bytes(1, self.relay.to_bytes())
            + field_bytes(2, self.peer.to_bytes())
            + field_varint(3, self.expiration)
        )

    @classmethod
    def unmarshal(cls, data: bytes) -> Voucher:
        relay: bytes | None = None
        peer: bytes | None = None
        expiration: int | None = None
        for number, wire, value in _fields(data, "Voucher"):
            if number == 1 and wire == 2 and isinstance(value, bytes):
                relay = value
            elif number == 2 and wire == 2 and isinstance(value, bytes):
                peer = value
            elif number == 3 and wire == 0 and isinstance(value, int):
                expiration = value
        if relay is None or peer is None or expiration is None:
            raise RecordError("voucher lacks relay, peer or expiration")
        return cls(PeerId.from_bytes(relay), PeerId.from_bytes(peer), expiration)

    def check_signer(self, key: PublicKey) -> None:
        if PeerId.from_public_key(key) != self.relay:
            raise RecordError(f"voucher of relay {self.relay} signed by another peer's key")


def open_voucher(data: bytes, relay: PeerId, peer: PeerId) -> Voucher:
    """Verifies a voucher received from ``relay`` for ``peer``; raises
    :class:`MalformedRelayMessage` when it does not open or names other peers."""
    try:
        _env, record = Envelope.open(data, VOUCHER_DOMAIN)
    except Libp2pError as exc:
        raise _malformed(f"reservation voucher does not open: {exc}") from None
    if not isinstance(record, Voucher):
        raise _malformed("reservation voucher carries another record type")
    if record.relay != relay or record.peer != peer:
        raise _malformed(f"voucher is for {record.peer} at {record.relay}, not {peer} at {relay}")
    return record
