"""AutoNAT v2 (libp2p/specs autonat/autonat-v2.md), sans-IO: messages and the server's choice.

On ``/libp2p/autonat/2/dial-request`` the client sends ``Message{dialRequest={addrs, nonce}}``;
the server picks the first address it is willing to dial. When that address's IP is not the
requester's observed IP, the server first asks for dial data (``dialDataRequest={addrIdx,
numBytes}``) and the client must send ``numBytes`` bytes in ``dialDataResponse`` messages of at
most 4096 bytes of data each: the cost that makes using servers to flood a third party
unattractive (amplification protection). The server then dials the address, sends the nonce on
``/libp2p/autonat/2/dial-back`` (``DialBack{nonce}``, answered by ``DialBackResponse``), and
answers ``dialResponse={status, addrIdx, dialStatus}``. The client trusts a successful dial
only if the nonce came back to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from rapidp2p.exceptions import DecodeError, ProtobufError
from rapidp2p.host.addrs import leading_ip
from rapidp2p.peer import Multiaddr
from rapidp2p.protocols._protobuf import field_bytes, field_fixed64, field_varint, iter_fields
from rapidp2p.protocols.autonat._proto import AutoNATError
from rapidp2p.transport.base import parse_components

__all__ = [
    "DIAL_BACK_PROTOCOL_ID",
    "DIAL_REQUEST_PROTOCOL_ID",
    "MAX_DIAL_DATA",
    "MAX_DIAL_DATA_CHUNK",
    "MIN_DIAL_DATA",
    "DialBack",
    "DialBackResponse",
    "DialDataRequest",
    "DialDataResponse",
    "DialRequest",
    "DialResponse",
    "DialStatus",
    "ResponseStatus",
    "choose_addr",
    "decode_dial_back",
    "decode_message",
    "encode_dial_back",
    "encode_dial_back_response",
    "encode_message",
]

DIAL_REQUEST_PROTOCOL_ID = "/libp2p/autonat/2/dial-request"
DIAL_BACK_PROTOCOL_ID = "/libp2p/autonat/2/dial-back"
#: Largest message read on either stream (a request with 32 addresses fits many times over).
MAX_MESSAGE_SIZE = 8192
#: Addresses read from one request (the rest are ignored).
MAX_REQUEST_ADDRS = 32
#: Dial data a server asks for (the spec: "30k to 100k bytes").
MIN_DIAL_DATA = 30_000
MAX_DIAL_DATA = 100_000
#: Data bytes per DialDataResponse (the spec's limit).
MAX_DIAL_DATA_CHUNK = 4096


class ResponseStatus(IntEnum):
    E_INTERNAL_ERROR = 0
    E_REQUEST_REJECTED = 100
    E_DIAL_REFUSED = 101
    OK = 200


class DialStatus(IntEnum):
    UNUSED = 0
    E_DIAL_ERROR = 100
    E_DIAL_BACK_ERROR = 101
    OK = 200


@dataclass(frozen=True)
class DialRequest:
    addrs: tuple[Multiaddr | None, ...]  # None: an undecodable address (its index counts)
    nonce: int


@dataclass(frozen=True)
class DialResponse:
    status: ResponseStatus | int
    addr_idx: int = 0
    dial_status: DialStatus | int = DialStatus.UNUSED


@dataclass(frozen=True)
class DialDataRequest:
    addr_idx: int
    num_bytes: int


@dataclass(frozen=True)
class DialDataResponse:
    data: bytes


@dataclass(frozen=True)
class DialBack:
    nonce: int


@dataclass(frozen=True)
class DialBackResponse:
    status: int = 0


Message = DialRequest | DialResponse | DialDataRequest | DialDataResponse


def encode_message(msg: Message) -> bytes:
    """The ``Message`` oneof carrying ``msg``."""
    if isinstance(msg, DialRequest):
        body = b"".join(field_bytes(1, a.to_bytes()) for a in msg.addrs if a is not None)
        return field_bytes(1, body + field_fixed64(2, msg.nonce))
    if isinstance(msg, DialResponse):
        body = field_varint(1, msg.status) + field_varint(2, msg.addr_idx)
        body += field_varint(3, msg.dial_status)
        return field_bytes(2, body)
    if isinstance(msg, DialDataRequest):
        return field_bytes(3, field_varint(1, msg.addr_idx) + field_varint(2, msg.num_bytes))
    return field_bytes(4, field_bytes(1, msg.data))


def decode_message(data: bytes) -> Message:
    """Raises :class:`AutoNATError` for an undecodable message or an empty oneof."""
    try:
        found: Message | None = None
        for number, wire, value in iter_fields(data, max_fields=8):
            if wire != 2 or not isinstance(value, bytes):
                continue
            if number == 1:
                found = _dial_request(value)
            elif number == 2:
                found = _dial_response(value)
            elif number == 3:
                found = _dial_data_request(value)
            elif number == 4:
                found = _dial_data_response(value)
    except ProtobufError as exc:
        raise AutoNATError(f"undecodable AutoNAT v2 message: {exc}") from exc
    if found is None:
        raise AutoNATError("AutoNAT v2 message without a body")
    return found


def _dial_request(data: bytes) -> DialRequest:
    addrs: list[Multiaddr | None] = []
    nonce = 0
    for number, wire, value in iter_fields(data, max_fields=MAX_REQUEST_ADDRS * 4, fixed=True):
        if number == 1 and isinstance(value, bytes) and len(addrs) < MAX_REQUEST_ADDRS:
            try:
                addrs.append(Multiaddr.from_bytes(value))
            except (DecodeError, ValueError):
                addrs.append(None)
        elif number == 2 and wire == 1 and isinstance(value, int):
            nonce = value
    return DialRequest(tuple(addrs), nonce)


def _ints(data: bytes) -> dict[int, int]:
    return {n: v for n, w, v in iter_fields(data, max_fields=16) if isinstance(v, int)}


def _dial_response(data: bytes) -> DialResponse:
    f = _ints(data)
    status: ResponseStatus | int = f.get(1, 0)
    dial: DialStatus | int = f.get(3, 0)
    if status in ResponseStatus._value2member_map_:
        status = ResponseStatus(status)
    if dial in DialStatus._value2member_map_:
        dial = DialStatus(dial)
    return DialResponse(status, f.get(2, 0), dial)


def _dial_data_request(data: bytes) -> DialDataRequest:
    f = _ints(data)
    return DialDataRequest(f.get(1, 0), f.get(2, 0))


def _dial_data_response(data: bytes) -> DialDataResponse:
    for number, _wire, value in iter_fields(data, max_fields=8):
        if number == 1 and isinstance(value, bytes):
            return DialDataResponse(value)
    return DialDataResponse(b"")


def encode_dial_back(nonce: int) -> bytes:
    return field_fixed64(1, nonce)


def decode_dial_back(data: bytes) -> DialBack:
    """Raises :class:`AutoNATError` when the nonce is missing or the bytes undecodable."""
    try:
        for number, wire, value in iter_fields(data, max_fields=8, fixed=True):
            if number == 1 and wire == 1 and isinstance(value, int):
                return DialBack(value)
    except ProtobufError as exc:
        raise AutoNATError(f"undecodable DialBack: {exc}") from exc
    raise AutoNATError("DialBack without a nonce")


def encode_dial_back_response() -> bytes:
    """``DialBackResponse{status=OK}`` (OK is 0: proto3 sends no field)."""
    return b""


def choose_addr(
    addrs: Sequence[Multiaddr | None],
    observed: Multiaddr | None,
    *,
    allow_private: bool = False,
    can_dial: tuple[str, ...] = ("tcp",),
) -> tuple[int, Multiaddr, bool] | None:
    """The first address the server will dial: ``(index, address, needs dial data)``, or None
    (``E_DIAL_REFUSED``). Only ``ip4|ip6`` addresses over a transport in ``can_dial``, not
    relayed, global unless ``allow_private``; dial data is needed when the IP differs from
    the requester's observed IP."""
    seen_ip = leading_ip(observed, direct_only=False)
    for idx, addr in enumerate(addrs):
        ip = leading_ip(addr, direct_only=False)
        if addr is None or ip is None:
            continue
        comps = parse_components(addr)
        if len(comps) < 2 or comps[1][0] not in can_dial:
            continue
        if any(name in ("p2p-circuit",) for name, _ in comps):
            continue
        if not ip.is_global and not allow_private:
            continue
        if ip.is_unspecified or ip.is_multicast:
            continue
        return idx, addr, ip != seen_ip
    return None
