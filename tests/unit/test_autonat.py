"""AutoNAT v1: the wire messages, the server's rules (who it dials, its rate limits, its
answers to malformed requests), the client's verdict, and both ends on loopback hosts."""

from __future__ import annotations

import time

import pytest

from rapidp2p import Host
from rapidp2p.crypto import generate_keypair
from rapidp2p.host.events import ReachabilityChanged
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols._protobuf import field_bytes, field_varint
from rapidp2p.protocols.autonat import (
    PROTOCOL_ID,
    AutoNAT,
    AutoNATConfig,
    AutoNATError,
    DialRequest,
    DialResponse,
    DialThrottle,
    Reachability,
    ReachabilityTracker,
    ResponseStatus,
    decode_message,
    dial_back_addrs,
    encode_dial,
    encode_dial_response,
)
from rapidp2p.protocols.autonat._proto import MAX_DIAL_ADDRS, MAX_REQUEST_ADDRS
from rapidp2p.protocols.framing import read_delimited, write_delimited


def _peer() -> PeerId:
    return PeerId.from_public_key(generate_keypair().public_key())


# ---- wire ----------------------------------------------------------------------------------


def test_dial_round_trip() -> None:
    peer = _peer()
    addrs = [Multiaddr("/ip4/1.2.3.4/tcp/4001"), Multiaddr("/ip6/2001:db8::1/udp/4001/quic-v1")]
    msg = decode_message(encode_dial(peer, addrs))
    assert msg == DialRequest(peer, tuple(addrs))


def test_dial_response_round_trip() -> None:
    addr = Multiaddr("/ip4/1.2.3.4/tcp/4001")
    msg = decode_message(encode_dial_response(ResponseStatus.OK, "OK", addr))
    assert msg == DialResponse(ResponseStatus.OK, "OK", addr)
    msg = decode_message(encode_dial_response(ResponseStatus.E_DIAL_ERROR, "dial failed"))
    assert msg == DialResponse(ResponseStatus.E_DIAL_ERROR, "dial failed", None)


def test_wire_bytes_match_the_spec_layout() -> None:
    """Field numbers by hand: type=1 (varint), dial=2 {peer=1 {id=1, addrs=2}}."""
    peer = _peer()
    addr = Multiaddr("/ip4/1.2.3.4/tcp/1")
    expected = field_varint(1, 0) + field_bytes(
        2, field_bytes(1, field_bytes(1, peer.to_bytes()) + field_bytes(2, addr.to_bytes()))
    )
    assert encode_dial(peer, [addr]) == expected
    resp = field_varint(1, 1) + field_bytes(3, field_varint(1, 100) + field_bytes(2, b"no"))
    assert encode_dial_response(ResponseStatus.E_DIAL_ERROR, "no") == resp


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",  # truncated varint
        field_varint(1, 0),  # DIAL without a dial
        field_varint(1, 7),  # unknown type
        b"",  # no type at all
        field_varint(1, 0) + field_bytes(2, b""),  # dial without peer info
        field_varint(1, 0) + field_bytes(2, field_bytes(1, field_bytes(1, b"\x01\x02"))),
        field_varint(1, 1) + field_bytes(3, b""),  # response without a status
        b"\x0b",  # group wire type
    ],
)
def test_malformed_messages_raise_typed_errors(data: bytes) -> None:
    with pytest.raises(AutoNATError):
        decode_message(data)


def test_oversized_request_is_bad_request() -> None:
    with pytest.raises(AutoNATError) as err:
        decode_message(b"\x00" * 5000)
    assert err.value.status == ResponseStatus.E_BAD_REQUEST


def test_bad_addresses_are_skipped_and_count_is_capped() -> None:
    peer = _peer()
    info = field_bytes(1, peer.to_bytes()) + field_bytes(2, b"\xff\xff")
    info += b"".join(
        field_bytes(2, Multiaddr(f"/ip4/1.2.3.4/tcp/{i + 1}").to_bytes()) for i in range(100)
    )
    msg = decode_message(field_varint(1, 0) + field_bytes(2, field_bytes(1, info)))
    assert isinstance(msg, DialRequest)
    assert len(msg.addrs) == MAX_REQUEST_ADDRS


def test_unknown_status_is_kept_as_int() -> None:
    data = field_varint(1, 1) + field_bytes(3, field_varint(1, 42))
    msg = decode_message(data)
    assert isinstance(msg, DialResponse) and msg.status == 42


# ---- server rules ----------------------------------------------------------------------------


def test_dial_back_only_the_observed_ip() -> None:
    peer = _peer()
    other = _peer()
    requested = [
        Multiaddr("/ip4/10.0.0.5/tcp/4001"),  # private: the port is kept, the IP replaced
        Multiaddr("/ip4/9.9.9.9/tcp/4001"),  # a third party: becomes the observed IP too
        Multiaddr("/ip4/1.2.3.4/tcp/4002/ws"),
        Multiaddr(f"/ip4/1.2.3.4/tcp/4003/p2p/{other}"),  # another peer: dropped
        Multiaddr(f"/ip4/1.2.3.4/tcp/4004/p2p/{peer}"),  # ours: kept, without /p2p
        Multiaddr("/ip4/1.2.3.4/tcp/4005/p2p-circuit"),  # relayed: dropped
        Multiaddr("/dns4/example.com/tcp/4006"),  # a name: dropped
        Multiaddr("/ip6/2001:db8::1/tcp/4007"),  # the other family: dropped
    ]
    out = dial_back_addrs(requested, Multiaddr("/ip4/1.2.3.4/tcp/55555"), peer, limit=10)
    assert out == [
        Multiaddr("/ip4/1.2.3.4/tcp/4001"),
        Multiaddr("/ip4/1.2.3.4/tcp/4002/ws"),
        Multiaddr("/ip4/1.2.3.4/tcp/4004"),
    ]
    for a in out:
        assert str(a).startswith("/ip4/1.2.3.4/")


def test_dial_back_refuses_private_observed_unless_allowed() -> None:
    peer = _peer()
    req = [Multiaddr("/ip4/10.0.0.5/tcp/4001")]
    assert dial_back_addrs(req, Multiaddr("/ip4/192.168.1.9/tcp/1"), peer) == []
    assert dial_back_addrs(req, Multiaddr("/ip4/192.168.1.9/tcp/1"), peer, allow_private=True)
    assert dial_back_addrs(req, None, peer, allow_private=True) == []
    relayed = Multiaddr(f"/ip4/1.2.3.4/tcp/1/p2p/{_peer()}/p2p-circuit")
    assert dial_back_addrs(req, relayed, peer, allow_private=True) == []


def test_dial_back_is_capped() -> None:
    peer = _peer()
    req = [Multiaddr(f"/ip4/1.1.1.1/tcp/{p}") for p in range(1000, 1100)]
    assert len(dial_back_addrs(req, Multiaddr("/ip4/1.2.3.4/tcp/9"), peer)) == MAX_DIAL_ADDRS


def test_throttle_per_peer_and_global() -> None:
    t = DialThrottle(global_max=5, peer_max=2, period=60.0)
    a, b, c = _peer(), _peer(), _peer()
    assert t.allow(a, 0.0) and t.allow(a, 1.0)
    assert not t.allow(a, 2.0)  # per peer
    assert t.allow(b, 3.0) and t.allow(b, 4.0) and t.allow(c, 5.0)
    assert not t.allow(c, 6.0)  # global
    assert t.allow(a, 61.0)  # a new period


def test_tracker_inertia() -> None:
    t = ReachabilityTracker(max_confidence=3)
    assert t.record(Reachability.PUBLIC)
    assert t.reachability is Reachability.PUBLIC
    assert not t.record(Reachability.UNKNOWN)
    for _ in range(5):
        t.record(Reachability.PUBLIC)
    assert t.confidence == 3
    flips = [t.record(Reachability.PRIVATE) for _ in range(4)]
    assert flips == [False, False, False, True]
    assert t.reachability is Reachability.PRIVATE


# ---- on loopback hosts -----------------------------------------------------------------------


FAST = AutoNATConfig(probe=False, dial_timeout=5.0, request_timeout=10.0)


async def _server(**kw: object) -> tuple[Host, AutoNAT]:
    host = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    cfg = AutoNATConfig(serve=True, probe=False, allow_private=True, dial_timeout=5.0)
    for k, v in kw.items():
        setattr(cfg, k, v)
    svc = await host.add_service(AutoNAT(host, cfg))
    return host, svc


async def test_public_client_learns_public_and_event_fires() -> None:
    server, _svc = await _server()
    client = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    try:
        autonat = await client.add_service(AutoNAT(client, FAST))
        sub = client.events.subscribe(ReachabilityChanged)
        await client.connect(server.full_addrs[0])
        result = await autonat.probe(server.peer_id)
        assert result.status == ResponseStatus.OK
        assert result.reachability is Reachability.PUBLIC
        assert result.addr is not None and str(result.addr).endswith(
            str(client.listen_addrs[0]).rsplit("/", 1)[-1]
        )
        assert client.reachability is Reachability.PUBLIC
        ev = await sub.get(timeout=5)
        assert isinstance(ev, ReachabilityChanged)
        assert ev.reachability is Reachability.PUBLIC and ev.previous is Reachability.UNKNOWN
        assert ev.peer_id == client.peer_id
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_unreachable_client_learns_private() -> None:
    """The client's listener is closed after it asked: the dial-back fails."""
    server, svc = await _server()
    client = await Host.create()  # no listener: nothing to dial back
    try:
        autonat = await client.add_service(AutoNAT(client, FAST))
        await client.connect(server.full_addrs[0])
        result = await autonat.probe(server.peer_id)
        assert result.status == ResponseStatus.E_DIAL_ERROR
        assert client.reachability is Reachability.PRIVATE
        assert svc.served == {"E_DIAL_ERROR": 1}
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_dial_to_a_dead_port_is_private() -> None:
    server, _svc = await _server()
    client = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    try:
        autonat = await client.add_service(AutoNAT(client, FAST))
        await client.connect(server.full_addrs[0])
        dead = Multiaddr("/ip4/127.0.0.1/tcp/1")
        autonat._request_addrs = lambda _addr: [dead]  # type: ignore[method-assign,assignment]
        result = await autonat.probe(server.peer_id)
        assert (result.status, result.text) == (ResponseStatus.E_DIAL_ERROR, "dial failed")
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_server_rate_limits_a_peer() -> None:
    server, svc = await _server(throttle_peer=2)
    client = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    try:
        autonat = await client.add_service(AutoNAT(client, FAST))
        await client.connect(server.full_addrs[0])
        statuses = [(await autonat.probe(server.peer_id)).status for _ in range(3)]
        assert statuses == [ResponseStatus.OK, ResponseStatus.OK, ResponseStatus.E_DIAL_REFUSED]
        assert client.reachability is Reachability.PUBLIC  # a refusal says nothing
        assert svc.served["E_DIAL_REFUSED"] == 1
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_server_refuses_private_requesters_by_default() -> None:
    server, _svc = await _server(allow_private=False)
    client = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    try:
        autonat = await client.add_service(AutoNAT(client, FAST))
        await client.connect(server.full_addrs[0])
        result = await autonat.probe(server.peer_id)
        assert result.status == ResponseStatus.E_DIAL_REFUSED  # as go-libp2p answers
        assert result.reachability is Reachability.UNKNOWN
        assert client.reachability is Reachability.UNKNOWN
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        (b"\x07garbage", "malformed request"),
        (encode_dial_response(ResponseStatus.OK), "expected a dial request"),
        (None, "peer id mismatch"),
    ],
)
async def test_server_answers_bad_requests_and_keeps_serving(
    payload: bytes | None, text: str
) -> None:
    server, svc = await _server()
    client = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    try:
        if payload is None:  # a well-formed dial for somebody else
            payload = encode_dial(_peer(), client.addrs)
        stream = await client.new_stream(server.full_addrs[0], PROTOCOL_ID)
        await write_delimited(stream, payload)
        data = await read_delimited(stream, 4096)
        assert data is not None
        msg = decode_message(data)
        assert isinstance(msg, DialResponse)
        assert (msg.status, msg.text) == (ResponseStatus.E_BAD_REQUEST, text)
        await stream.close()
        # The server still serves an honest request on the same connection.
        autonat = await client.add_service(AutoNAT(client, FAST))
        assert (await autonat.probe(server.peer_id)).status == ResponseStatus.OK
        assert svc.served["E_BAD_REQUEST"] == 1
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_client_raises_typed_error_on_garbage_answer() -> None:
    host = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])

    async def liar(stream: object) -> None:
        from rapidp2p._aio.stream import Stream

        assert isinstance(stream, Stream)
        await read_delimited(stream, 4096)
        await write_delimited(stream, b"\x08\x05")  # type 5: unknown
        await stream.close()

    host.set_stream_handler(PROTOCOL_ID, liar)
    client = await Host.create()
    try:
        autonat = await client.add_service(AutoNAT(client, FAST))
        await client.connect(host.full_addrs[0])
        with pytest.raises(AutoNATError):
            await autonat.probe(host.peer_id)
        assert client.reachability is Reachability.UNKNOWN
    finally:
        await client.close(linger=0)
        await host.close(linger=0)


async def test_background_probe_finds_the_server_through_identify() -> None:
    server, _svc = await _server()
    client = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    try:
        cfg = AutoNATConfig(boot_delay=0.0, retry_interval=30.0, dial_timeout=5.0)
        await client.add_service(AutoNAT(client, cfg))
        sub = client.events.subscribe(ReachabilityChanged)
        await client.connect(server.full_addrs[0])
        ev = await sub.get(timeout=20)
        assert isinstance(ev, ReachabilityChanged)
        assert ev.reachability is Reachability.PUBLIC
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_no_server_raises_lookup_error() -> None:
    client = await Host.create()
    try:
        autonat = await client.add_service(AutoNAT(client, FAST))
        with pytest.raises(LookupError):
            await autonat.probe()
    finally:
        await client.close(linger=0)


async def test_private_verdict_hides_observed_addrs() -> None:
    host = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    try:
        port = str(host.listen_addrs[0]).rsplit("/", 1)[-1]
        public = Multiaddr("/ip4/1.2.3.4/tcp/40000")
        for i in range(4):
            host.observed.record(
                public,
                local=Multiaddr(f"/ip4/127.0.0.1/tcp/{port}"),
                observer=Multiaddr(f"/ip4/5.6.7.{i}/tcp/1"),
                listen_addrs=host.listen_addrs,
                now=time.monotonic(),
            )
        assert host.observed_addrs() == [public]
        assert public in host.addrs
        host.set_reachability(Reachability.PRIVATE, via="test")
        assert public not in host.addrs
    finally:
        await host.close(linger=0)
