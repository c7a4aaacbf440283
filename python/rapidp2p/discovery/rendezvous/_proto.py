"""Rendezvous (libp2p/specs rendezvous/README.md) in sans-IO form: the wire messages and the
server's registration book (time passed in, every table capped).

Wire: each message is ``uvarint(len) || Message`` on a ``/rendezvous/1.0.0`` stream; a client
sends a request and reads one response (rust-libp2p opens one stream per request, go-libp2p
reuses one; the server accepts both).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from rapidp2p.discovery.rendezvous.records import open_record
from rapidp2p.exceptions import Libp2pError, ProtobufError, RemoteProtocolError
from rapidp2p.peer import PeerId
from rapidp2p.protocols._protobuf import field_bytes, field_varint, iter_fields

__all__ = [
    "DEFAULT_TTL",
    "MAX_MESSAGE_SIZE",
    "MAX_NAMESPACE_LENGTH",
    "MAX_TTL",
    "PROTOCOL_ID",
    "Discover",
    "DiscoverResponse",
    "Message",
    "MessageType",
    "Register",
    "RegisterResponse",
    "Registration",
    "RegistrationBook",
    "RendezvousError",
    "ResponseStatus",
    "ServerLimits",
    "Unregister",
]

PROTOCOL_ID = "/rendezvous/1.0.0"
DEFAULT_TTL = 2 * 3600
"""The spec's default registration TTL (seconds)."""
MAX_TTL = 72 * 3600
"""The spec's maximum registration TTL (seconds)."""
MAX_NAMESPACE_LENGTH = 255
MAX_MESSAGE_SIZE = 1 << 20
"""Biggest rendezvous message read (a discover response of 1000 records fits; rust-libp2p's
cap is the same 1 MiB)."""
COOKIE_SIZE_LIMIT = 8 + MAX_NAMESPACE_LENGTH


class RendezvousError(RemoteProtocolError):
    """A rendezvous peer sent an undecodable message, or a server refused a request
    (``status`` says which)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MessageType(IntEnum):
    REGISTER = 0
    REGISTER_RESPONSE = 1
    UNREGISTER = 2
    DISCOVER = 3
    DISCOVER_RESPONSE = 4


class ResponseStatus(IntEnum):
    OK = 0
    E_INVALID_NAMESPACE = 100
    E_INVALID_SIGNED_PEER_RECORD = 101
    E_INVALID_TTL = 102
    E_INVALID_COOKIE = 103
    E_NOT_AUTHORIZED = 200
    E_INTERNAL_ERROR = 300
    E_UNAVAILABLE = 400


@dataclass(frozen=True)
class Register:
    """``Message.Register``: a namespace, our signed peer record envelope, a TTL (0: unset)."""

    ns: str
    signed_peer_record: bytes = b""
    ttl: int = 0

    def encode(self) -> bytes:
        out = field_bytes(1, self.ns.encode())
        if self.signed_peer_record:
            out += field_bytes(2, self.signed_peer_record)
        if self.ttl:
            out += field_varint(3, self.ttl)
        return out

    @classmethod
    def decode(cls, data: bytes) -> Register:
        ns, spr, ttl = "", b"", 0
        for number, wire, value in iter_fields(data):
            if number == 1 and isinstance(value, bytes):
                ns = _text(value)
            elif number == 2 and isinstance(value, bytes):
                spr = value
            elif number == 3 and wire == 0 and isinstance(value, int):
                ttl = value
        return cls(ns, spr, ttl)


@dataclass(frozen=True)
class RegisterResponse:
    status: int = ResponseStatus.OK
    status_text: str = ""
    ttl: int = 0

    def encode(self) -> bytes:
        out = field_varint(1, self.status)
        if self.status_text:
            out += field_bytes(2, self.status_text.encode())
        if self.ttl:
            out += field_varint(3, self.ttl)
        return out

    @classmethod
    def decode(cls, data: bytes) -> RegisterResponse:
        status, text, ttl = 0, "", 0
        for number, _wire, value in iter_fields(data):
            if number == 1 and isinstance(value, int):
                status = value
            elif number == 2 and isinstance(value, bytes):
                text = _text(value)
            elif number == 3 and isinstance(value, int):
                ttl = value
        return cls(status, text, ttl)


@dataclass(frozen=True)
class Unregister:
    ns: str

    def encode(self) -> bytes:
        return field_bytes(1, self.ns.encode())

    @classmethod
    def decode(cls, data: bytes) -> Unregister:
        ns = ""
        for number, _wire, value in iter_fields(data):
            if number == 1 and isinstance(value, bytes):
                ns = _text(value)
        return cls(ns)


@dataclass(frozen=True)
class Discover:
    """``ns`` empty: every namespace; ``limit`` 0: the server's default."""

    ns: str = ""
    limit: int = 0
    cookie: bytes = b""

    def encode(self) -> bytes:
        out = field_bytes(1, self.ns.encode()) if self.ns else b""
        if self.limit:
            out += field_varint(2, self.limit)
        if self.cookie:
            out += field_bytes(3, self.cookie)
        return out

    @classmethod
    def decode(cls, data: bytes) -> Discover:
        ns, limit, cookie = "", 0, b""
        for number, _wire, value in iter_fields(data):
            if number == 1 and isinstance(value, bytes):
                ns = _text(value)
            elif number == 2 and isinstance(value, int):
                limit = value
            elif number == 3 and isinstance(value, bytes):
                cookie = value
        return cls(ns, limit, cookie)


@dataclass(frozen=True)
class DiscoverResponse:
    registrations: tuple[Register, ...] = ()
    cookie: bytes = b""
    status: int = ResponseStatus.OK
    status_text: str = ""

    def encode(self) -> bytes:
        out = b"".join(field_bytes(1, r.encode()) for r in self.registrations)
        if self.cookie:
            out += field_bytes(2, self.cookie)
        out += field_varint(3, self.status)
        if self.status_text:
            out += field_bytes(4, self.status_text.encode())
        return out

    @classmethod
    def decode(cls, data: bytes, *, max_registrations: int = 1000) -> DiscoverResponse:
        regs: list[Register] = []
        cookie, status, text = b"", 0, ""
        for number, _wire, value in iter_fields(data, max_fields=max_registrations + 8):
            if number == 1 and isinstance(value, bytes):
                regs.append(Register.decode(value))
            elif number == 2 and isinstance(value, bytes):
                cookie = value
            elif number == 3 and isinstance(value, int):
                status = value
            elif number == 4 and isinstance(value, bytes):
                text = _text(value)
        return cls(tuple(regs), cookie, status, text)


Body = Register | RegisterResponse | Unregister | Discover | DiscoverResponse
_FIELD_OF: dict[type, tuple[MessageType, int]] = {
    Register: (MessageType.REGISTER, 2),
    RegisterResponse: (MessageType.REGISTER_RESPONSE, 3),
    Unregister: (MessageType.UNREGISTER, 4),
    Discover: (MessageType.DISCOVER, 5),
    DiscoverResponse: (MessageType.DISCOVER_RESPONSE, 6),
}
_DECODER: dict[int, tuple[MessageType, Callable[[bytes], Body]]] = {
    2: (MessageType.REGISTER, Register.decode),
    3: (MessageType.REGISTER_RESPONSE, RegisterResponse.decode),
    4: (MessageType.UNREGISTER, Unregister.decode),
    5: (MessageType.DISCOVER, Discover.decode),
    6: (MessageType.DISCOVER_RESPONSE, DiscoverResponse.decode),
}


@dataclass(frozen=True)
class Message:
    """The envelope message: its ``type`` and the one body that type names."""

    body: Body

    @property
    def type(self) -> MessageType:
        return _FIELD_OF[type(self.body)][0]

    def encode(self) -> bytes:
        mtype, number = _FIELD_OF[type(self.body)]
        return field_varint(1, mtype) + field_bytes(number, self.body.encode())

    @classmethod
    def decode(cls, data: bytes) -> Message:
        """Raises RendezvousError for undecodable bytes or a type without its body."""
        if len(data) > MAX_MESSAGE_SIZE:
            raise RendezvousError(f"message of {len(data)} bytes over {MAX_MESSAGE_SIZE}")
        try:
            mtype: int | None = None
            bodies: dict[int, bytes] = {}
            for number, wire, value in iter_fields(data):
                if number == 1 and wire == 0 and isinstance(value, int):
                    mtype = value
                elif number in _DECODER and isinstance(value, bytes):
                    bodies[number] = value
            for number, (want, decode) in _DECODER.items():
                if mtype == want:
                    if number not in bodies:
                        raise RendezvousError(f"{want.name} message without its body")
                    return cls(decode(bodies[number]))
        except ProtobufError as exc:
            raise RendezvousError(f"undecodable rendezvous message: {exc}") from exc
        raise RendezvousError(f"unknown rendezvous message type {mtype}")


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise ProtobufError("string field is not UTF-8") from exc


# ---- the server's registration book -----------------------------------------------------


@dataclass(frozen=True)
class ServerLimits:
    """A rendezvous server's caps (rust-libp2p's defaults where the spec is silent)."""

    min_ttl: int = 120
    """rust-libp2p refuses below 2 h by default; go-libp2p-rendezvous accepts 2 min."""
    max_ttl: int = MAX_TTL
    max_registrations_per_peer: int = 1000
    max_registrations_total: int = 100_000
    max_discover_limit: int = 1000
    max_cookies: int = 1000
    max_record_size: int = 8192


@dataclass
class Registration:
    """A stored registration: the record as sent (re-served verbatim) and when it expires."""

    ns: str
    peer_id: PeerId
    signed_peer_record: bytes
    ttl: int
    expires: float
    serial: int = field(default=0)


class RegistrationBook:
    """The server's registrations; ``now`` is passed in (sans-IO)."""

    def __init__(self, limits: ServerLimits | None = None) -> None:
        self.limits = limits or ServerLimits()
        self._by_key: dict[tuple[str, bytes], Registration] = {}
        self._per_peer: dict[bytes, int] = {}
        self._serial = 0
        self._cookies: OrderedDict[bytes, None] = OrderedDict()
        self._nonce = struct.pack(">I", id(self) & 0xFFFFFFFF)

    def __len__(self) -> int:
        return len(self._by_key)

    def expire(self, now: float) -> list[Registration]:
        """Drops expired registrations; returns them."""
        gone = [r for r in self._by_key.values() if r.expires <= now]
        for reg in gone:
            self._remove(reg)
        return gone

    def _remove(self, reg: Registration) -> None:
        key = (reg.ns, reg.peer_id.to_bytes())
        if self._by_key.pop(key, None) is not None:
            n = self._per_peer.get(key[1], 1) - 1
            if n:
                self._per_peer[key[1]] = n
            else:
                self._per_peer.pop(key[1], None)

    def register(self, sender: PeerId, req: Register, now: float) -> RegisterResponse:
        """Validates and stores ``req`` from ``sender``; the response to send."""
        lim = self.limits
        self.expire(now)
        if not req.ns or len(req.ns.encode()) > MAX_NAMESPACE_LENGTH:
            return RegisterResponse(ResponseStatus.E_INVALID_NAMESPACE, "invalid namespace")
        ttl = req.ttl or DEFAULT_TTL
        if not lim.min_ttl <= ttl <= lim.max_ttl:
            return RegisterResponse(
                ResponseStatus.E_INVALID_TTL, f"ttl must be in [{lim.min_ttl}, {lim.max_ttl}]"
            )
        if not req.signed_peer_record or len(req.signed_peer_record) > lim.max_record_size:
            return RegisterResponse(ResponseStatus.E_INVALID_SIGNED_PEER_RECORD, "bad record")
        try:
            record = open_record(req.signed_peer_record)
        except Libp2pError as exc:
            return RegisterResponse(ResponseStatus.E_INVALID_SIGNED_PEER_RECORD, str(exc)[:200])
        if record.peer_id != sender:
            return RegisterResponse(
                ResponseStatus.E_NOT_AUTHORIZED, "peer record is not the sender's"
            )
        pid = sender.to_bytes()
        key = (req.ns, pid)
        if key not in self._by_key:
            if self._per_peer.get(pid, 0) >= lim.max_registrations_per_peer:
                return RegisterResponse(ResponseStatus.E_NOT_AUTHORIZED, "too many registrations")
            if len(self._by_key) >= lim.max_registrations_total:
                return RegisterResponse(ResponseStatus.E_UNAVAILABLE, "registrations full")
            self._per_peer[pid] = self._per_peer.get(pid, 0) + 1
        else:
            del self._by_key[key]  # re-registered: moves to the end (a new serial)
        self._serial += 1
        self._by_key[key] = Registration(
            req.ns, sender, req.signed_peer_record, ttl, now + ttl, self._serial
        )
        return RegisterResponse(ResponseStatus.OK, "", ttl)

    def unregister(self, sender: PeerId, req: Unregister) -> None:
        reg = self._by_key.get((req.ns, sender.to_bytes()))
        if reg is not None:
            self._remove(reg)

    def _cookie(self, serial: int, ns: str) -> bytes:
        cookie = self._nonce + struct.pack(">Q", serial) + ns.encode()
        self._cookies[cookie] = None
        self._cookies.move_to_end(cookie)
        while len(self._cookies) > self.limits.max_cookies:
            self._cookies.popitem(last=False)
        return cookie

    def discover(self, req: Discover, now: float) -> DiscoverResponse:
        """Registrations in ``req.ns`` (all when empty) newer than the cookie, up to the limit;
        the cookie returned resumes after the last one given."""
        self.expire(now)
        if len(req.ns.encode()) > MAX_NAMESPACE_LENGTH:
            return DiscoverResponse(status=ResponseStatus.E_INVALID_NAMESPACE)
        after = 0
        if req.cookie:
            if (
                req.cookie not in self._cookies
                or len(req.cookie) < 12
                or req.cookie[12:] != req.ns.encode()
            ):
                return DiscoverResponse(
                    status=ResponseStatus.E_INVALID_COOKIE, status_text="unknown cookie"
                )
            after = struct.unpack(">Q", req.cookie[4:12])[0]
        limit = min(req.limit or self.limits.max_discover_limit, self.limits.max_discover_limit)
        found: list[Registration] = []
        for reg in self._by_key.values():  # insertion order is serial order
            if reg.serial <= after or (req.ns and reg.ns != req.ns):
                continue
            found.append(reg)
            if len(found) >= limit:
                break
        last = found[-1].serial if found else after
        regs = tuple(
            Register(r.ns, r.signed_peer_record, max(1, int(r.expires - now))) for r in found
        )
        return DiscoverResponse(regs, self._cookie(last, req.ns), ResponseStatus.OK)
