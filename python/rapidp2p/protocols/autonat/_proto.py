"""AutoNAT v1 (``/libp2p/autonat/1.0.0``, libp2p/specs autonat/autonat-v1.md), sans-IO.

The client sends one ``Message{type=DIAL, dial={peer={id, addrs}}}``; the server dials the
addresses back and answers one ``Message{type=DIAL_RESPONSE, dialResponse={status,
statusText, addr}}``. Everything here is pure: the messages, which addresses a server may dial
for a requester (:func:`dial_back_addrs`: only the requester's observed IP, as the spec
requires), the server's rate limiter (:class:`DialThrottle`) and the client's verdict
(:class:`ReachabilityTracker`). Time is passed in.

Messages are small and rare: they are coded with the bounded protobuf helper
(:mod:`rapidp2p.protocols._protobuf`), not a Rust codec.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from rapidp2p.exceptions import DecodeError, ProtobufError, RemoteProtocolError
from rapidp2p.host.addrs import leading_ip
from rapidp2p.host.reachability import Reachability
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols._protobuf import field_bytes, field_varint, iter_fields
from rapidp2p.transport.base import parse_components

__all__ = [
    "MAX_DIAL_ADDRS",
    "MAX_MESSAGE_SIZE",
    "MAX_REQUEST_ADDRS",
    "PROTOCOL_ID",
    "AutoNATError",
    "DialRequest",
    "DialResponse",
    "DialThrottle",
    "MessageType",
    "ReachabilityTracker",
    "ResponseStatus",
    "decode_message",
    "dial_back_addrs",
    "encode_dial",
    "encode_dial_response",
]

PROTOCOL_ID = "/libp2p/autonat/1.0.0"
#: Largest AutoNAT message read (go-libp2p's cap is 4 KiB too).
MAX_MESSAGE_SIZE = 4096
#: Addresses a request carries / a server reads from one request (the rest are ignored).
MAX_REQUEST_ADDRS = 32
#: Distinct addresses a server dials back for one request.
MAX_DIAL_ADDRS = 4
#: Longest status text kept from a response.
MAX_STATUS_TEXT = 256


class AutoNATError(RemoteProtocolError):
    """A malformed AutoNAT message, or an answer that is not the one expected; ``status``
    is the response status a server answers such a request with (``E_BAD_REQUEST``)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MessageType(IntEnum):
    DIAL = 0
    DIAL_RESPONSE = 1


class ResponseStatus(IntEnum):
    OK = 0
    E_DIAL_ERROR = 100
    E_DIAL_REFUSED = 101
    E_BAD_REQUEST = 200
    E_INTERNAL_ERROR = 300


@dataclass(frozen=True)
class DialRequest:
    """A decoded ``Dial``: who asks (``peer_id``, None when the id field was absent) and the
    addresses it wants dialed (undecodable ones dropped, at most MAX_REQUEST_ADDRS)."""

    peer_id: PeerId | None
    addrs: tuple[Multiaddr, ...] = ()


@dataclass(frozen=True)
class DialResponse:
    """A decoded ``DialResponse``; ``status`` stays an int when it is not a known status."""

    status: ResponseStatus | int
    text: str = ""
    addr: Multiaddr | None = None


def encode_dial(peer_id: PeerId, addrs: Sequence[Multiaddr]) -> bytes:
    """``Message{type=DIAL, dial={peer={id, addrs}}}`` (at most MAX_REQUEST_ADDRS addrs)."""
    info = field_bytes(1, peer_id.to_bytes()) + b"".join(
        field_bytes(2, a.to_bytes()) for a in list(addrs)[:MAX_REQUEST_ADDRS]
    )
    return field_varint(1, MessageType.DIAL) + field_bytes(2, field_bytes(1, info))


def encode_dial_response(
    status: ResponseStatus, text: str = "", addr: Multiaddr | None = None
) -> bytes:
    """``Message{type=DIAL_RESPONSE, dialResponse={status, statusText, addr}}``."""
    body = field_varint(1, status)
    if text:
        body += field_bytes(2, text.encode()[:MAX_STATUS_TEXT])
    if addr is not None:
        body += field_bytes(3, addr.to_bytes())
    return field_varint(1, MessageType.DIAL_RESPONSE) + field_bytes(3, body)


def decode_message(data: bytes) -> DialRequest | DialResponse:
    """The request or response ``data`` carries. Raises :class:`AutoNATError` (status
    ``E_BAD_REQUEST``) for an undecodable message, a missing or unknown type, or a type whose
    body is absent."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise AutoNATError(f"message of {len(data)} bytes", ResponseStatus.E_BAD_REQUEST)
    try:
        mtype: int | None = None
        dial: bytes | None = None
        resp: bytes | None = None
        for number, wire, value in iter_fields(data, max_fields=64):
            if number == 1 and wire == 0 and isinstance(value, int):
                mtype = value
            elif number == 2 and wire == 2 and isinstance(value, bytes):
                dial = value
            elif number == 3 and wire == 2 and isinstance(value, bytes):
                resp = value
        if mtype == MessageType.DIAL:
            if dial is None:
                raise AutoNATError("DIAL message without a dial", ResponseStatus.E_BAD_REQUEST)
            return _decode_dial(dial)
        if mtype == MessageType.DIAL_RESPONSE:
            if resp is None:
                raise AutoNATError("DIAL_RESPONSE without a dialResponse")
            return _decode_response(resp)
    except ProtobufError as exc:
        raise AutoNATError(f"undecodable message: {exc}", ResponseStatus.E_BAD_REQUEST) from exc
    raise AutoNATError(f"unknown message type {mtype}", ResponseStatus.E_BAD_REQUEST)


def _decode_dial(data: bytes) -> DialRequest:
    peer: bytes | None = None
    for number, wire, value in iter_fields(data, max_fields=16):
        if number == 1 and wire == 2 and isinstance(value, bytes):
            peer = value
    if peer is None:
        raise AutoNATError("dial without peer info", ResponseStatus.E_BAD_REQUEST)
    pid: PeerId | None = None
    addrs: list[Multiaddr] = []
    for number, wire, value in iter_fields(peer, max_fields=MAX_REQUEST_ADDRS * 4):
        if not isinstance(value, bytes) or wire != 2:
            continue
        if number == 1:
            try:
                pid = PeerId.from_bytes(value)
            except (DecodeError, ValueError) as exc:
                raise AutoNATError(f"bad peer id: {exc}", ResponseStatus.E_BAD_REQUEST) from exc
        elif number == 2 and len(addrs) < MAX_REQUEST_ADDRS:
            try:
                addrs.append(Multiaddr.from_bytes(value))
            except (DecodeError, ValueError):
                continue
    return DialRequest(pid, tuple(addrs))


def _decode_response(data: bytes) -> DialResponse:
    status: int | None = None
    text = ""
    addr: Multiaddr | None = None
    for number, wire, value in iter_fields(data, max_fields=16):
        if number == 1 and wire == 0 and isinstance(value, int):
            status = value
        elif number == 2 and isinstance(value, bytes):
            text = value[:MAX_STATUS_TEXT].decode(errors="replace")
        elif number == 3 and isinstance(value, bytes):
            try:
                addr = Multiaddr.from_bytes(value)
            except (DecodeError, ValueError):
                addr = None
    if status is None:
        raise AutoNATError("dialResponse without a status")
    try:
        return DialResponse(ResponseStatus(status), text, addr)
    except ValueError:
        return DialResponse(status, text, addr)


def dial_back_addrs(
    requested: Iterable[Multiaddr],
    observed: Multiaddr | None,
    peer: PeerId,
    *,
    allow_private: bool = False,
    limit: int = MAX_DIAL_ADDRS,
) -> list[Multiaddr]:
    """The addresses a server may dial for a request from ``peer`` seen at ``observed``.

    Each requested ``/ip4|ip6/<any>/...`` address gets the observed IP in place of its own
    (rust-libp2p does the same: a peer behind a port-forwarding NAT knows its port, not its
    public IP), so nothing but the requester's own IP is ever dialed (the spec's defence
    against using servers to flood a third party). Relayed addresses, ``/p2p/`` of another
    peer and DNS names are dropped; so is everything when the observed IP is not global
    unless ``allow_private`` (tests, private deployments); at most ``limit`` distinct results.
    """
    ip = leading_ip(observed)
    if ip is None or (not ip.is_global and not allow_private):
        return []
    family = "ip6" if ip.version == 6 else "ip4"
    out: list[Multiaddr] = []
    for addr in requested:
        try:
            comps = parse_components(addr)
        except DecodeError:
            continue
        if not comps or comps[0][0] not in ("ip4", "ip6"):
            continue
        if (comps[0][0] == "ip6") != (ip.version == 6):
            continue
        bad = False
        rest: list[str] = []
        for name, value in comps[1:]:
            if name == "p2p-circuit":
                bad = True
                break
            if name == "p2p":
                if value != str(peer):
                    bad = True
                    break
                continue
            rest.append(f"/{name}/{value}" if value else f"/{name}")
        if bad or not rest or comps[1][0] not in ("tcp", "udp"):
            continue
        try:
            candidate = Multiaddr(f"/{family}/{ip}" + "".join(rest))
        except DecodeError:
            continue
        if candidate not in out:
            out.append(candidate)
            if len(out) >= limit:
                break
    return out


@dataclass
class DialThrottle:
    """The server's rate limit: at most ``peer_max`` dial-backs per requesting peer and
    ``global_max`` in all per ``period`` seconds (go-libp2p's defaults: 3, 30 and 60 s)."""

    global_max: int = 30
    peer_max: int = 3
    period: float = 60.0
    _window_start: float = 0.0
    _total: int = 0
    _per_peer: dict[PeerId, int] = field(default_factory=dict)

    def allow(self, peer: PeerId, now: float) -> bool:
        """True (and counted) when ``peer`` may have one more dial-back now."""
        if now - self._window_start >= self.period:
            self._window_start = now
            self._total = 0
            self._per_peer.clear()
        if self._total >= self.global_max or self._per_peer.get(peer, 0) >= self.peer_max:
            return False
        self._total += 1
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        return True


@dataclass
class ReachabilityTracker:
    """Turns probe results into a verdict with some inertia (go-libp2p's rule): the first
    result decides when unknown; a result agreeing with the verdict raises the confidence
    (up to ``max_confidence``), a disagreeing one lowers it, and only flips the verdict once
    the confidence is spent. Refusals and errors say nothing and change nothing."""

    max_confidence: int = 3
    reachability: Reachability = Reachability.UNKNOWN
    confidence: int = 0

    def record(self, result: Reachability) -> bool:
        """Adds one probe verdict (PUBLIC or PRIVATE); True when the verdict changed."""
        if result is Reachability.UNKNOWN:
            return False
        if self.reachability is Reachability.UNKNOWN:
            self.reachability = result
            self.confidence = 0
            return True
        if result is self.reachability:
            self.confidence = min(self.confidence + 1, self.max_confidence)
            return False
        if self.confidence > 0:
            self.confidence -= 1
            return False
        self.reachability = result
        return True
