"""Circuit Relay v2 between rapidp2p hosts over loopback TCP: a relay R, a listener A that
reserves on R, a dialer B that reaches A through R; limits enforced by the relay."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from rapidp2p.exceptions import DialError, StreamResetError
from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr
from rapidp2p.protocols.framing import read_delimited, write_delimited
from rapidp2p.relay import (
    HOP_PROTOCOL,
    RelayClient,
    RelayLimits,
    RelayRefused,
    RelayService,
    Status,
)

TCP = "/ip4/127.0.0.1/tcp/0"
ECHO = "/test/echo/1.0.0"


async def _until(cond: Callable[[], bool], what: str) -> None:
    for _ in range(600):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def _echo(stream: object) -> None:
    from rapidp2p._aio.stream import Stream

    assert isinstance(stream, Stream)
    try:
        while True:
            data = await stream.read(65536)
            if not data:
                break
            stream.write(data)
            await stream.drain()
        await stream.close()
    except Exception:
        stream.reset()


async def _trio(limits: RelayLimits | None = None) -> tuple[Host, Host, Host, RelayService]:
    relay = await Host.create(listen=[TCP])
    svc = await relay.add_service(RelayService(relay, limits))
    a = await Host.create(listen=[TCP])
    b = await Host.create(listen=[TCP])
    a.set_stream_handler(ECHO, _echo)
    return relay, a, b, svc


@pytest.fixture
async def trio() -> AsyncIterator[tuple[Host, Host, Host, RelayService]]:
    hosts = await _trio()
    yield hosts
    for h in hosts[:3]:
        await h.close(linger=0)


def _relay_addr(relay: Host) -> Multiaddr:
    return relay.full_addrs[0]


async def test_reserve_listen_dial_ping(trio: tuple[Host, Host, Host, RelayService]) -> None:
    relay, a, b, svc = trio
    circuit_addrs = await a.listen(f"{_relay_addr(relay)}/p2p-circuit")
    assert circuit_addrs and all("/p2p-circuit" in str(x) for x in circuit_addrs)
    assert str(circuit_addrs[0]).startswith(str(_relay_addr(relay)))
    assert any("/p2p-circuit" in str(x) for x in a.addrs)
    assert svc.stats.get("reserved") == 1
    target = Multiaddr(f"{circuit_addrs[0]}/p2p/{a.peer_id}")
    conn = await b.connect(target)
    assert conn.limited
    assert conn.remote_peer == a.peer_id
    rtts = await b.ping(a.peer_id, 3)
    assert len(rtts) == 3
    stream = await b.new_stream(a.peer_id, ECHO)
    stream.write(b"hello through the relay")
    await stream.close()
    assert await stream.read() == b"hello through the relay"
    # A sees an inbound limited connection from B whose address names the relay.
    await _until(lambda: a.is_connected(b.peer_id), "A sees B")
    inbound = a.connections(b.peer_id)[0]
    assert inbound.limited and inbound.direction == "inbound"
    assert inbound.remote_addr is not None and "/p2p-circuit" in str(inbound.remote_addr)
    assert svc.stats.get("connected") == 1


async def test_data_budget_cuts_the_circuit() -> None:
    limits = RelayLimits(circuit_bytes=64 * 1024, circuit_duration=None)
    relay, a, b, svc = await _trio(limits)
    try:
        lst = await a.listen(f"{_relay_addr(relay)}/p2p-circuit")
        conn = await b.connect(Multiaddr(f"{lst[0]}/p2p/{a.peer_id}"))
        stream = await b.new_stream(a.peer_id, ECHO)
        sent = 0
        with pytest.raises(Exception):  # noqa: B017 - reset or closed, whichever comes first
            for _ in range(64):
                stream.write(b"x" * 8192)
                sent += 8192
                await stream.drain()
                await asyncio.wait_for(stream.read(8192), 10)
        await _until(lambda: conn.is_closed, "the relayed connection is cut")
        assert svc.stats.get("circuit_data_limit") == 1
        assert sent <= 64 * 1024 + 8192 * 4
        # The relay still serves: A's reservation stands, a new circuit works.
        conn2 = await b.connect(Multiaddr(f"{lst[0]}/p2p/{a.peer_id}"))
        assert conn2 is not conn and conn2.limited
        assert len(await b.ping(a.peer_id)) == 1
    finally:
        for h in (relay, a, b):
            await h.close(linger=0)


async def test_duration_budget_cuts_the_circuit() -> None:
    relay, a, b, svc = await _trio(RelayLimits(circuit_duration=1.0))
    try:
        lst = await a.listen(f"{_relay_addr(relay)}/p2p-circuit")
        conn = await b.connect(Multiaddr(f"{lst[0]}/p2p/{a.peer_id}"))
        await _until(lambda: conn.is_closed, "the relayed connection ends after 1 s")
        assert svc.stats.get("circuit_duration_limit") == 1
    finally:
        for h in (relay, a, b):
            await h.close(linger=0)


async def test_reservation_over_the_limit_is_refused() -> None:
    relay, a, b, svc = await _trio(RelayLimits(max_reservations=1))
    try:
        await a.listen(f"{_relay_addr(relay)}/p2p-circuit")
        client = b.services.find(RelayClient)
        assert client is not None
        with pytest.raises(RelayRefused) as info:
            await client.reserve(_relay_addr(relay))
        assert info.value.status == Status.RESERVATION_REFUSED
        # A refreshes its own reservation (does not count twice).
        client_a = a.services.find(RelayClient)
        assert client_a is not None
        await client_a.reserve(_relay_addr(relay))
        assert svc.stats.get("reserved") == 2
        assert svc.stats.get("reserve_refused") == 1
    finally:
        for h in (relay, a, b):
            await h.close(linger=0)


async def test_per_ip_reservation_limit() -> None:
    relay, a, b, _svc = await _trio(RelayLimits(max_reservations_per_ip=1))
    try:
        await a.listen(f"{_relay_addr(relay)}/p2p-circuit")
        client = b.services.find(RelayClient)
        assert client is not None
        with pytest.raises(RelayRefused):
            await client.reserve(_relay_addr(relay))
    finally:
        for h in (relay, a, b):
            await h.close(linger=0)


async def test_no_reservation(trio: tuple[Host, Host, Host, RelayService]) -> None:
    relay, a, b, svc = trio
    await b.connect(_relay_addr(relay))
    await a.connect(_relay_addr(relay))  # connected, but no reservation
    target = f"{_relay_addr(relay)}/p2p-circuit/p2p/{a.peer_id}"
    with pytest.raises(DialError) as info:
        await b.connect(target)
    assert "NO_RESERVATION" in str(info.value)
    assert svc.stats.get("connect_refused") == 1


async def test_malformed_hop_message_resets_only_that_stream(
    trio: tuple[Host, Host, Host, RelayService],
) -> None:
    relay, a, b, svc = trio
    await a.listen(f"{_relay_addr(relay)}/p2p-circuit")
    stream = await b.new_stream(_relay_addr(relay), HOP_PROTOCOL, lazy=False)
    await write_delimited(stream, b"\xff\xff\xff")  # not a protobuf
    from rapidp2p.relay._proto import HopMessage

    answer = await read_delimited(stream, 4096)
    assert answer is not None
    assert HopMessage.decode(answer).status == Status.MALFORMED_MESSAGE
    with contextlib.suppress(StreamResetError):  # the relay ends it: FIN, then a reset
        assert await asyncio.wait_for(stream.read(1), 10) == b""
    # The connection survives, and so does the relay: a circuit still works.
    assert b.is_connected(relay.peer_id)
    await b.connect(f"{_relay_addr(relay)}/p2p-circuit/p2p/{a.peer_id}")
    assert len(await b.ping(a.peer_id)) == 1
    assert svc.stats.get("malformed") == 1


async def test_reservation_is_refreshed_after_the_relay_connection_drops(
    trio: tuple[Host, Host, Host, RelayService],
) -> None:
    relay, a, b, svc = trio
    await a.listen(f"{_relay_addr(relay)}/p2p-circuit")
    await relay.disconnect(a.peer_id, linger=0)
    await _until(lambda: svc.stats.get("reserved") == 2, "A reserved again")
    await b.connect(f"{_relay_addr(relay)}/p2p-circuit/p2p/{a.peer_id}")
    assert len(await b.ping(a.peer_id)) == 1


async def test_perf_refuses_a_limited_connection_unless_allowed(
    trio: tuple[Host, Host, Host, RelayService],
) -> None:
    from rapidp2p.exceptions import LimitedConnectionError, StreamError
    from rapidp2p.protocols.perf.service import PerfService, run_perf

    relay, a, b, _svc = trio
    perf = await a.add_service(PerfService(a))
    await a.listen(f"{_relay_addr(relay)}/p2p-circuit")
    target = f"{_relay_addr(relay)}/p2p-circuit/p2p/{a.peer_id}"
    with pytest.raises(LimitedConnectionError):
        await run_perf(b, target, 1024, 1024)
    with pytest.raises((StreamError, DialError)):  # the server refuses it too
        await run_perf(b, target, 1024, 1024, allow_limited=True)
    assert perf.refused_limited == 1
    perf.allow_limited = True
    report = await run_perf(b, target, 1024, 1024, allow_limited=True)
    assert report.upload_bytes == 1024 and report.download_bytes == 1024


async def test_reservation_flood_from_one_ip_leaves_room_for_others() -> None:
    """Thirty peers on one address ask at once: the per-IP cap grants eight; a client on
    another address still gets its reservation and is reachable."""
    from rapidp2p.transport.tcp import TcpTransport

    relay = await Host.create(listen=[TCP])
    svc = await relay.add_service(RelayService(relay, RelayLimits(max_reservations_per_ip=8)))
    flood = [await Host.create(transports=[TcpTransport(local_ip="127.0.0.1")]) for _ in range(30)]
    honest = await Host.create(transports=[TcpTransport(local_ip="127.0.0.2")])
    dialer = await Host.create()
    try:

        async def reserve(h: Host) -> BaseException | None:
            client = h.services.find(RelayClient)
            assert client is not None
            try:
                await client.reserve(_relay_addr(relay))
            except RelayRefused as exc:
                return exc
            return None

        results = await asyncio.gather(*(reserve(h) for h in flood))
        refused = [r for r in results if r is not None]
        assert len(refused) == 22
        assert all(isinstance(r, RelayRefused) and r.status == Status.RESERVATION_REFUSED
                   for r in refused)  # fmt: skip
        honest.set_stream_handler(ECHO, _echo)
        lst = await honest.listen(f"{_relay_addr(relay)}/p2p-circuit")
        await dialer.connect(f"{lst[0]}/p2p/{honest.peer_id}")
        assert len(await dialer.ping(honest.peer_id)) == 1
        assert svc.stats.get("reserved") == 9
    finally:
        for h in (relay, honest, dialer, *flood):
            await h.close(linger=0)


async def test_dial_a_circuit_address_that_already_names_the_peer(
    trio: tuple[Host, Host, Host, RelayService],
) -> None:
    """rust-libp2p advertises ``<relay>/p2p-circuit/p2p/<itself>``: dialling that peer by ID
    with such an address from the peer store works (the /p2p is not added twice)."""
    from rapidp2p.peer import PeerInfo

    relay, a, b, _svc = trio
    lst = await a.listen(f"{_relay_addr(relay)}/p2p-circuit")
    full = Multiaddr(f"{lst[0]}/p2p/{a.peer_id}")
    conn = await b.connect(PeerInfo(a.peer_id, [full]))
    assert conn.limited and conn.remote_peer == a.peer_id


async def test_malformed_stop_and_oversized_hop_reset_only_their_stream(
    trio: tuple[Host, Host, Host, RelayService],
) -> None:
    from rapidp2p.protocols.framing import encode_uvarint
    from rapidp2p.relay import STOP_PROTOCOL
    from rapidp2p.relay._proto import StopMessage

    relay, a, b, svc = trio
    # B plays a relay that sends A garbage on stop: A answers MALFORMED_MESSAGE, then resets.
    stop = await b.new_stream(a.full_addrs[0], STOP_PROTOCOL, lazy=False)
    await write_delimited(stop, b"\x08\x07")  # type 7: no such StopMessage type
    raw = await read_delimited(stop, 4096)
    assert raw is not None and StopMessage.decode(raw).status == Status.MALFORMED_MESSAGE
    with contextlib.suppress(StreamResetError):
        await asyncio.wait_for(stop.read(1), 10)
    client = a.services.find(RelayClient)
    assert client is not None and client.stats.get("stop_malformed") == 1
    assert b.is_connected(a.peer_id)
    # A hop request over 4 KiB is refused before its body is read; the connection stays.
    hop = await b.new_stream(_relay_addr(relay), HOP_PROTOCOL, lazy=False)
    hop.write(encode_uvarint(1 << 20))
    await hop.drain()
    with pytest.raises(StreamResetError):
        await asyncio.wait_for(hop.read(1), 10)
    assert svc.stats.get("malformed") == 1
    assert b.is_connected(relay.peer_id)
    assert len(await b.ping(relay.peer_id)) == 1


async def test_reservation_refreshed_before_it_expires() -> None:
    """A 2-second reservation is renewed (at 3/4 of what is left, at least a second later)
    and the node stays reachable through the relay past the first expiry."""
    relay, a, b, svc = await _trio(RelayLimits(reservation_ttl=2.0))
    try:
        await a.listen(f"{_relay_addr(relay)}/p2p-circuit")
        await _until(lambda: (svc.stats.get("reserved") or 0) >= 3, "two refreshes")
        await b.connect(f"{_relay_addr(relay)}/p2p-circuit/p2p/{a.peer_id}")
        assert len(await b.ping(a.peer_id)) == 1
    finally:
        for h in (relay, a, b):
            await h.close(linger=0)


async def test_autorelay_reserves_on_a_relay_it_meets_and_on_given_ones() -> None:
    from rapidp2p.relay import AutoRelay

    relay, a, b, svc = await _trio()
    relay2 = await Host.create(listen=[TCP])
    await relay2.add_service(RelayService(relay2))
    plain = await Host.create(listen=[TCP])  # not a relay: never chosen
    try:
        auto = await a.add_service(AutoRelay(a, [_relay_addr(relay2)], want=2, interval=0.2))
        await a.connect(plain.full_addrs[0])
        await a.connect(_relay_addr(relay))  # identify says it speaks hop
        await _until(lambda: len(auto.active) == 2, "two reservations")
        assert set(auto.active) == {relay.peer_id, relay2.peer_id}
        circuits = [x for x in a.addrs if "/p2p-circuit" in str(x)]
        assert len(circuits) == 2
        for c in circuits:  # both are advertised and work
            conn = await b.connect(Multiaddr(f"{c}/p2p/{a.peer_id}"))
            assert conn.limited
            assert len(await b.ping(a.peer_id)) == 1
            await b.disconnect(a.peer_id, linger=0)
        assert svc.stats.get("reserved") == 1
    finally:
        for h in (relay, relay2, plain, a, b):
            await h.close(linger=0)
