"""Circuit Relay v2 sans-IO parts: messages, vouchers, the reservation book, the splice."""

from __future__ import annotations

import asyncio

import pytest

from rapidp2p.crypto import generate_keypair
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols._protobuf import field_bytes, field_varint
from rapidp2p.records.envelope import Envelope
from rapidp2p.relay._proto import (
    HopMessage,
    HopType,
    Limit,
    MalformedRelayMessage,
    Peer,
    Reservation,
    Status,
    StopMessage,
    StopType,
    Voucher,
    open_voucher,
)
from rapidp2p.relay.book import RelayLimits, ReservationBook, ReservationEntry
from rapidp2p.relay.transport import split_circuit


def _pid() -> PeerId:
    return PeerId.from_public_key(generate_keypair().public_key())


def test_hop_round_trip() -> None:
    me = _pid()
    addr = Multiaddr(f"/ip4/1.2.3.4/tcp/4001/p2p/{me}")
    msg = HopMessage(
        HopType.STATUS,
        reservation=Reservation(expire=1_900_000_000, addrs=(addr,), voucher=b"v"),
        limit=Limit(120, 131072),
        status=Status.OK,
    )
    back = HopMessage.decode(msg.encode())
    assert back == msg
    connect = HopMessage(HopType.CONNECT, peer=Peer(me))
    assert HopMessage.decode(connect.encode()).peer == Peer(me)


def test_stop_round_trip() -> None:
    msg = StopMessage(StopType.CONNECT, peer=Peer(_pid()), limit=Limit(duration=120))
    assert StopMessage.decode(msg.encode()) == msg


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",  # truncated varint
        b"",  # no type
        field_varint(1, 9),  # unknown type
        field_varint(1, 1) + field_bytes(2, field_bytes(1, b"not a peer id")),  # bad peer id
        field_varint(1, 1) + field_bytes(2, field_bytes(2, b"")),  # peer without id
    ],
)
def test_malformed_hop_is_typed(data: bytes) -> None:
    with pytest.raises(MalformedRelayMessage) as info:
        HopMessage.decode(data)
    assert info.value.status == Status.MALFORMED_MESSAGE


def test_unknown_status_kept_as_number() -> None:
    msg = HopMessage.decode(field_varint(1, 2) + field_varint(5, 999))
    assert msg.status == 999


def test_bad_addresses_are_skipped() -> None:
    rsvp = Reservation.decode(field_bytes(2, b"\x00garbage") + field_varint(1, 5))
    assert rsvp.addrs == () and rsvp.expire == 5


def test_voucher_signed_and_checked() -> None:
    relay_key = generate_keypair()
    relay = PeerId.from_public_key(relay_key.public_key())
    peer = _pid()
    raw = Envelope.seal(relay_key, Voucher(relay, peer, 1_900_000_000)).raw
    assert open_voucher(raw, relay, peer).expiration == 1_900_000_000
    with pytest.raises(MalformedRelayMessage):
        open_voucher(raw, relay, _pid())  # for someone else
    other_key = generate_keypair()
    forged = Envelope.seal(other_key, Voucher(relay, peer, 1)).raw
    with pytest.raises(MalformedRelayMessage):
        open_voucher(forged, relay, peer)  # not signed by the relay
    with pytest.raises(MalformedRelayMessage):
        open_voucher(b"\x01\x02", relay, peer)


def test_voucher_is_canonical() -> None:
    relay, peer = _pid(), _pid()
    v = Voucher(relay, peer, 77)
    assert v.marshal() == (
        field_bytes(1, relay.to_bytes()) + field_bytes(2, peer.to_bytes()) + field_varint(3, 77)
    )
    assert Voucher.unmarshal(v.marshal()) == v


def test_book_limits() -> None:
    book = ReservationBook(RelayLimits(max_reservations=3, max_reservations_per_ip=2))
    p1, p2, p3, p4 = (_pid() for _ in range(4))
    assert isinstance(book.reserve(p1, "10.0.0.1", 0.0, 1000.0), ReservationEntry)
    assert isinstance(book.reserve(p2, "10.0.0.1", 0.0, 1000.0), ReservationEntry)
    assert book.reserve(p3, "10.0.0.1", 0.0, 1000.0) == Status.RESERVATION_REFUSED  # per IP
    assert isinstance(book.reserve(p1, "10.0.0.1", 1.0, 1001.0), ReservationEntry)  # refresh
    assert isinstance(book.reserve(p3, "10.0.0.2", 0.0, 1000.0), ReservationEntry)
    assert book.reserve(p4, "10.0.0.3", 0.0, 1000.0) == Status.RESERVATION_REFUSED  # total
    assert len(book) == 3
    # Expiry and disconnection free slots.
    ttl = book.limits.reservation_ttl
    gone = book.prune(ttl + 0.5, lambda p: p != p3)
    assert set(gone) == {p2, p3}
    assert book.has_reservation(p1, ttl + 0.5) and not book.has_reservation(p2, 0.0)


def test_book_circuit_limits() -> None:
    book = ReservationBook(RelayLimits(max_circuits=3, max_circuits_per_peer=2))
    a, b, c, d = (_pid() for _ in range(4))
    assert book.open_circuit(a, b) is None
    assert book.open_circuit(a, c) is None
    assert book.open_circuit(a, d) == Status.RESOURCE_LIMIT_EXCEEDED  # a has 2
    assert book.open_circuit(c, d) is None
    assert book.open_circuit(b, d) == Status.RESOURCE_LIMIT_EXCEEDED  # 3 in total
    book.close_circuit(a, b)
    assert book.circuits == 2 and book.circuits_of(a) == 1 and book.circuits_of(b) == 0


def test_split_circuit() -> None:
    relay, peer = _pid(), _pid()
    part, r, p = split_circuit(
        Multiaddr(f"/ip4/127.0.0.1/tcp/1/p2p/{relay}/p2p-circuit/p2p/{peer}")
    )
    assert str(part) == f"/ip4/127.0.0.1/tcp/1/p2p/{relay}" and r == relay and p == peer
    part, r, p = split_circuit(Multiaddr(f"/p2p/{relay}/p2p-circuit"))
    assert str(part) == f"/p2p/{relay}" and p is None
    from rapidp2p.exceptions import TransportError

    with pytest.raises(TransportError):
        split_circuit(Multiaddr("/ip4/127.0.0.1/tcp/1/p2p-circuit"))


class _Pipe:
    """An in-memory stream end good enough for the splice (read, write, drain, close,
    reset)."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.peer: _Pipe | None = None
        self.was_reset = False
        self.fin = False

    async def read(self, n: int) -> bytes:
        if self.was_reset:
            raise ConnectionResetError
        data = await self.inbox.get()
        if len(data) > n:
            self.inbox._queue.appendleft(data[n:])  # type: ignore[attr-defined]
            data = data[:n]
        return data

    def write(self, data: bytes) -> None:
        assert self.peer is not None
        self.peer.inbox.put_nowait(data)

    async def drain(self) -> None:
        return None

    def close_write_nowait(self) -> None:
        self.fin = True
        assert self.peer is not None
        self.peer.inbox.put_nowait(b"")

    def reset(self) -> None:
        self.was_reset = True


def _pair() -> tuple[_Pipe, _Pipe]:
    a, b = _Pipe(), _Pipe()
    a.peer, b.peer = b, a
    return a, b


async def test_splice_budget_and_half_close() -> None:
    from typing import Any, cast

    from rapidp2p.relay.splice import splice

    src_far, src = _pair()  # src_far is the dialer's end, src the relay's
    dst, dst_far = _pair()
    task = asyncio.ensure_future(
        splice(cast(Any, src), cast(Any, dst), max_bytes=1000, max_duration=None)
    )
    src_far.write(b"a" * 600)
    assert await dst_far.read(1000) == b"a" * 600
    dst_far.write(b"b" * 10)
    assert await src_far.read(1000) == b"b" * 10
    src_far.write(b"a" * 500)  # 1100 > 1000: cut
    res = await asyncio.wait_for(task, 5)
    # Forwarded up to the budget exactly, then cut.
    assert res.reason == "data_limit" and res.a_to_b == 1000 and res.b_to_a == 10
    assert src.was_reset and dst.was_reset


async def test_splice_closes_cleanly_both_ways() -> None:
    from typing import Any, cast

    from rapidp2p.relay.splice import splice

    src_far, src = _pair()
    dst, dst_far = _pair()
    task = asyncio.ensure_future(
        splice(cast(Any, src), cast(Any, dst), max_bytes=None, max_duration=None)
    )
    src_far.write(b"x")
    src_far.close_write_nowait()
    dst_far.close_write_nowait()
    res = await asyncio.wait_for(task, 5)
    assert res.reason == "closed" and res.a_to_b == 1
    assert not src.was_reset and dst.fin and src.fin


async def test_splice_duration_cut() -> None:
    from typing import Any, cast

    from rapidp2p.relay.splice import splice

    _src_far, src = _pair()
    dst, _dst_far = _pair()
    res = await splice(cast(Any, src), cast(Any, dst), max_bytes=None, max_duration=0.05)
    assert res.reason == "duration_limit" and src.was_reset and dst.was_reset
