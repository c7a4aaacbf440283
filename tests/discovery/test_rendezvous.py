"""Rendezvous: the wire messages (round trips, bad input), the server's book (TTL, caps,
cookies, record checks) and a client/server round trip between two rapidp2p hosts."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p.crypto import generate_keypair
from rapidp2p.discovery import PeerDiscovered
from rapidp2p.discovery.rendezvous import (
    RendezvousClient,
    RendezvousError,
    RendezvousServer,
    ResponseStatus,
    ServerLimits,
)
from rapidp2p.discovery.rendezvous._proto import (
    Discover,
    DiscoverResponse,
    Message,
    Register,
    RegisterResponse,
    RegistrationBook,
    Unregister,
)
from rapidp2p.exceptions import ProtobufError
from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols._protobuf import field_bytes, field_varint, iter_fields
from rapidp2p.records.envelope import Envelope
from rapidp2p.records.peer_record import PeerRecord

TCP = "/ip4/127.0.0.1/tcp/0"


def _signed(addrs: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/4001",)) -> tuple[PeerId, bytes]:
    key = generate_keypair()
    pid = PeerId.from_public_key(key.public_key())
    record = PeerRecord.create(pid, [Multiaddr(a) for a in addrs])
    return pid, Envelope.seal(key, record).to_bytes()


@pytest.mark.parametrize(
    "body",
    [
        Register("ns", b"\x01\x02", 7200),
        RegisterResponse(ResponseStatus.E_INVALID_TTL, "no", 0),
        Unregister("ns"),
        Discover("ns", 10, b"cookie"),
        Discover(),
        DiscoverResponse((Register("a", b"x", 5), Register("b", b"y", 6)), b"c", 0, ""),
    ],
)
def test_message_round_trip(body: object) -> None:
    msg = Message(body)  # type: ignore[arg-type]
    assert Message.decode(msg.encode()) == msg


@given(st.binary(max_size=200))
def test_decode_arbitrary_bytes_raises_only_rendezvous_error(data: bytes) -> None:
    with contextlib.suppress(RendezvousError):
        Message.decode(data)


@pytest.mark.parametrize(
    "data",
    [
        field_varint(1, 0),  # REGISTER without its body
        field_varint(1, 9),  # unknown type
        b"\x0a\x05ab",  # truncated length-delimited field
        b"\x08" + b"\xff" * 11,  # varint over 10 bytes
        field_varint(1, 0) + field_bytes(2, field_bytes(1, b"\xff\xfe")),  # ns not UTF-8
        b"\x0b",  # group wire type
    ],
)
def test_bad_messages_rejected(data: bytes) -> None:
    with pytest.raises(RendezvousError):
        Message.decode(data)


def test_protobuf_reader_bounds_fields() -> None:
    with pytest.raises(ProtobufError):
        list(iter_fields(field_varint(1, 1) * 10, max_fields=5))


def test_book_register_discover_cookie_and_expiry() -> None:
    book = RegistrationBook()
    a, rec_a = _signed()
    b, rec_b = _signed()
    assert book.register(a, Register("ns", rec_a, 600), 0.0).status == ResponseStatus.OK
    first = book.discover(Discover("ns"), 1.0)
    assert [r.signed_peer_record for r in first.registrations] == [rec_a]
    assert first.registrations[0].ttl == 599
    # Nothing new since the cookie; then b registers and only b comes back.
    assert book.discover(Discover("ns", cookie=first.cookie), 2.0).registrations == ()
    book.register(b, Register("ns", rec_b, 600), 3.0)
    again = book.discover(Discover("ns", cookie=first.cookie), 4.0)
    assert [r.signed_peer_record for r in again.registrations] == [rec_b]
    # limit 1 pages through both
    page = book.discover(Discover("ns", limit=1), 5.0)
    assert len(page.registrations) == 1
    rest = book.discover(Discover("ns", limit=1, cookie=page.cookie), 5.0)
    assert [r.signed_peer_record for r in rest.registrations] == [rec_b]
    # a's registration expires at 600
    after = book.discover(Discover("ns"), 600.5)
    assert [r.signed_peer_record for r in after.registrations] == [rec_b]
    book.unregister(b, Unregister("ns"))
    assert len(book) == 0


def test_book_refusals() -> None:
    book = RegistrationBook(ServerLimits(max_registrations_per_peer=2, max_registrations_total=3))
    a, rec_a = _signed()
    b, rec_b = _signed()
    assert book.register(a, Register("x" * 256, rec_a, 600), 0).status == (
        ResponseStatus.E_INVALID_NAMESPACE
    )
    assert book.register(a, Register("ns", rec_a, 10), 0).status == ResponseStatus.E_INVALID_TTL
    assert book.register(a, Register("ns", rec_a, 73 * 3600), 0).status == (
        ResponseStatus.E_INVALID_TTL
    )
    assert book.register(a, Register("ns", b"junk", 600), 0).status == (
        ResponseStatus.E_INVALID_SIGNED_PEER_RECORD
    )
    # b's record sent by a: not authorized
    assert book.register(a, Register("ns", rec_b, 600), 0).status == (
        ResponseStatus.E_NOT_AUTHORIZED
    )
    assert book.register(a, Register("n1", rec_a, 600), 0).status == ResponseStatus.OK
    assert book.register(a, Register("n2", rec_a, 600), 0).status == ResponseStatus.OK
    assert book.register(a, Register("n1", rec_a, 600), 0).status == ResponseStatus.OK  # refresh
    assert book.register(a, Register("n3", rec_a, 600), 0).status == (
        ResponseStatus.E_NOT_AUTHORIZED
    )
    assert book.register(b, Register("n1", rec_b, 600), 0).status == ResponseStatus.OK
    c, rec_c = _signed()
    assert book.register(c, Register("n1", rec_c, 600), 0).status == ResponseStatus.E_UNAVAILABLE
    # cookies: unknown, or for another namespace
    assert book.discover(Discover("n1", cookie=b"\x00" * 20), 0).status == (
        ResponseStatus.E_INVALID_COOKIE
    )
    cookie = book.discover(Discover("n1"), 0).cookie
    assert book.discover(Discover("n2", cookie=cookie), 0).status == (
        ResponseStatus.E_INVALID_COOKIE
    )


async def test_round_trip_between_hosts() -> None:
    async with (
        await Host.create(listen=[TCP]) as server_host,
        await Host.create(listen=[TCP]) as alice,
        await Host.create(listen=[TCP]) as bob,
    ):
        server = RendezvousServer()
        await server.start(server_host)
        server_ma = server_host.full_addrs[0]
        a_client, b_client = RendezvousClient(), RendezvousClient()
        await a_client.start(alice)
        await b_client.start(bob)
        events = bob.events.subscribe(PeerDiscovered)
        reader = b_client.__aiter__()
        ttl = await a_client.register(server_ma, "chat", 600)
        assert ttl == 600
        sid = server_ma
        found, cookie = await b_client.discover(sid, "chat")
        assert [d.peer.peer_id for d in found] == [alice.peer_id]
        assert found[0].peer.addrs == alice.addrs
        assert (await reader.__anext__()).peer_id == alice.peer_id
        event = await events.get(timeout=5)
        assert isinstance(event, PeerDiscovered) and event.source == "rendezvous"
        assert (await b_client.discover(sid, "chat", cookie=cookie))[0] == []
        with pytest.raises(RendezvousError) as err:
            await a_client.register(sid, "chat", 1)
        assert err.value.status == ResponseStatus.E_INVALID_TTL
        await a_client.unregister(sid, "chat")
        for _ in range(50):  # unregister has no answer: poll until the server applied it
            if not (await b_client.discover(sid, "chat"))[0]:
                break
        assert (await b_client.discover(sid, "chat"))[0] == []
        assert server.stats["registered"] == 1
        await a_client.close()
        await b_client.close()
        await server.close()


def test_book_accepts_rust_libp2p_records_and_rejects_forged_ones() -> None:
    from rapidp2p.discovery.rendezvous.records import open_record, seal_record

    key = generate_keypair()
    pid = PeerId.from_public_key(key.public_key())
    addrs = [Multiaddr("/ip4/10.0.0.1/tcp/1")]
    legacy = seal_record(key, pid, addrs, legacy=True)
    assert open_record(legacy).addrs == tuple(addrs)
    book = RegistrationBook()
    assert book.register(pid, Register("ns", legacy, 600), 0).status == ResponseStatus.OK
    # a flipped byte in the signature: refused, never stored
    forged = legacy[:-1] + bytes([legacy[-1] ^ 1])
    assert book.register(pid, Register("n2", forged, 600), 0).status == (
        ResponseStatus.E_INVALID_SIGNED_PEER_RECORD
    )
    assert len(book) == 1


async def test_auto_dialer_connects_up_to_target() -> None:
    from rapidp2p.discovery import AutoDialer, DiscoveryFeed
    from rapidp2p.peer import PeerInfo

    async with (
        await Host.create(listen=[TCP]) as node,
        await Host.create(listen=[TCP]) as p1,
        await Host.create(listen=[TCP]) as p2,
    ):
        feed = DiscoveryFeed("test")
        feed.attach(node)
        reader = feed.subscribe()
        dialer = AutoDialer(target=1)
        await dialer.start(node)
        feed.found(PeerInfo(p1.peer_id, p1.addrs))
        feed.found(PeerInfo(node.peer_id, node.addrs))  # ourselves: never delivered
        assert (await reader.__anext__()).peer_id == p1.peer_id
        for _ in range(200):
            if node.is_connected(p1.peer_id):
                break
            await asyncio.sleep(0.05)
        assert node.is_connected(p1.peer_id)
        feed.found(PeerInfo(p2.peer_id, p2.addrs))  # at target: not dialed
        await asyncio.sleep(0.2)
        assert not node.is_connected(p2.peer_id)
        assert dialer.connected == [p1.peer_id]
        feed.close()
        with pytest.raises(StopAsyncIteration):
            while True:
                await reader.__anext__()
        await dialer.close()


async def _until(predicate: object, what: str, tries: int = 600) -> None:
    """Polls ``predicate`` every 50 ms (30 s at most: generous for a loaded 2-core machine)."""
    assert callable(predicate)
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_refresh_and_retry_delays() -> None:
    import random

    from rapidp2p.discovery.rendezvous.client import RETRY_MAX, refresh_delay, retry_delay

    assert refresh_delay(7200) == 5400  # 3/4 of the granted TTL
    assert refresh_delay(0.1) == 0.5  # never a busy loop
    rng = random.Random(1)
    delays = [retry_delay(n, 1e9, rng) for n in range(1, 20)]
    assert all(0.5 <= d <= RETRY_MAX for d in delays)
    assert delays[-1] >= RETRY_MAX / 2  # grew to the cap (jitter takes at most half)
    # never past half the time the registration has left, so a retry lands before expiry
    assert retry_delay(12, 20.0, rng) <= 10.0


async def test_keep_registered_refreshes_before_expiry_and_watch_follows_cookies() -> None:
    async with (
        await Host.create(listen=[TCP]) as server_host,
        await Host.create(listen=[TCP]) as alice,
        await Host.create(listen=[TCP]) as bob,
    ):
        server = RendezvousServer(ServerLimits(min_ttl=1))
        await server.start(server_host)
        sid = server_host.full_addrs[0]
        a_client, b_client = RendezvousClient(), RendezvousClient()
        await a_client.start(alice)
        await b_client.start(bob)
        # a 4 s registration refreshed every second (fraction 1/4: slack for a loaded machine)
        assert await a_client.keep_registered(sid, "chat", 4, fraction=0.25) == 4
        _found, cookie = await b_client.discover(sid, "chat")
        assert [d.peer.peer_id for d in _found] == [alice.peer_id]
        assert (await b_client.discover(sid, "chat", cookie=cookie))[0] == []
        # five refreshes take the registration past its first TTL: still there, and each
        # refresh is newer than the cookie, so a follower sees it again
        await _until(lambda: a_client.stats.get("registered", 0) >= 5, "five refreshes")
        assert server.stats["registered"] >= 6
        assert [d.peer.peer_id for d in (await b_client.discover(sid, "chat"))[0]] == [
            alice.peer_id
        ]
        again, _ = await b_client.discover(sid, "chat", cookie=cookie)
        assert [d.peer.peer_id for d in again] == [alice.peer_id]

        # a watcher following cookies; the server "restarts" (a new book: every cookie is
        # unknown and the registration is gone): the refresh puts it back and the watcher,
        # told its cookie is invalid, starts over and finds it
        reader = b_client.__aiter__()
        b_client.watch(sid, "chat", interval=0.2, limit=1)
        assert (await asyncio.wait_for(reader.__anext__(), 30)).peer_id == alice.peer_id
        polls = b_client.stats.get("watch_polls", 0)
        server.book = RegistrationBook(ServerLimits(min_ttl=1))
        await _until(lambda: len(server.book) == 1, "the refresh to re-register")
        await _until(lambda: b_client.stats.get("watch_polls", 0) > polls + 2, "watch polls")
        assert [d.peer.peer_id for d in (await b_client.discover(sid, "chat"))[0]] == [
            alice.peer_id
        ]

        # the server goes away: refreshes fail and are retried; it comes back: they succeed
        await server.close()
        failed = a_client.stats.get("register_failed", 0)
        await _until(lambda: a_client.stats.get("register_failed", 0) > failed, "a failure")
        done = a_client.stats.get("registered", 0)
        await server.start(server_host)
        await _until(lambda: a_client.stats.get("registered", 0) > done, "a retry to succeed")

        # unregister stops the refresh: the registration is gone and stays gone
        await a_client.unregister(sid, "chat")
        await _until(lambda: len(server.book) == 0, "the unregister")
        done = a_client.stats.get("registered", 0)
        await asyncio.sleep(1.5)
        assert a_client.stats.get("registered", 0) == done
        assert len(server.book) == 0
        await a_client.close()
        await b_client.close()
        await server.close()
