"""AutoNAT v2: messages, the server's choice of address, the dial-data amplification
protection, nonce verification, rate limits, on loopback hosts."""

from __future__ import annotations

import pytest

from rapidp2p import Host
from rapidp2p._aio.stream import Stream
from rapidp2p.peer import Multiaddr
from rapidp2p.protocols._protobuf import field_bytes, field_fixed64, iter_fields
from rapidp2p.protocols.autonat import AutoNATError, AutoNATv2, AutoNATv2Config, Reachability
from rapidp2p.protocols.autonat._proto_v2 import (
    DIAL_REQUEST_PROTOCOL_ID,
    MAX_DIAL_DATA_CHUNK,
    DialDataRequest,
    DialDataResponse,
    DialRequest,
    DialResponse,
    DialStatus,
    ResponseStatus,
    choose_addr,
    decode_dial_back,
    decode_message,
    encode_dial_back,
    encode_message,
)
from rapidp2p.protocols.framing import read_delimited, write_delimited

A = Multiaddr("/ip4/1.2.3.4/tcp/4001")
B = Multiaddr("/ip4/5.6.7.8/tcp/4001")


def test_messages_round_trip() -> None:
    for msg in [
        DialRequest((A, B), 0xFFFF_FFFF_FFFF_FFFF),
        DialResponse(ResponseStatus.OK, 1, DialStatus.E_DIAL_BACK_ERROR),
        DialDataRequest(1, 50_000),
        DialDataResponse(b"x" * 100),
    ]:
        assert decode_message(encode_message(msg)) == msg
    assert decode_dial_back(encode_dial_back(12345)).nonce == 12345


def test_nonce_is_fixed64_on_the_wire() -> None:
    body = encode_message(DialRequest((A,), 7))
    (outer,) = list(iter_fields(body))
    assert isinstance(outer[2], bytes)
    fields = list(iter_fields(outer[2], fixed=True))
    assert fields[-1] == (2, 1, 7)
    assert encode_dial_back(7) == field_fixed64(1, 7)


@pytest.mark.parametrize("data", [b"", b"\x0a\x05ab", field_bytes(9, b"x"), b"\x0b"])
def test_malformed_messages_raise(data: bytes) -> None:
    with pytest.raises(AutoNATError):
        decode_message(data)


def test_dial_back_without_nonce_raises() -> None:
    with pytest.raises(AutoNATError):
        decode_dial_back(b"")


def test_choose_addr_rules() -> None:
    observed = Multiaddr("/ip4/1.2.3.4/tcp/5555")
    priv = Multiaddr("/ip4/10.0.0.1/tcp/1")
    quic = Multiaddr("/ip4/1.2.3.4/udp/1/quic-v1")
    assert choose_addr([None, priv, quic, A], observed) == (3, A, False)
    assert choose_addr([B], observed) == (0, B, True)  # another IP: dial data first
    assert choose_addr([priv], observed) is None
    assert choose_addr([priv], observed, allow_private=True) == (0, priv, True)


# ---- on loopback -------------------------------------------------------------------------


async def _server(**kw: object) -> tuple[Host, AutoNATv2]:
    host = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    cfg = AutoNATv2Config(serve=True, allow_private=True, dial_timeout=5.0)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return host, await host.add_service(AutoNATv2(host, cfg))


async def _client(*listen: str) -> tuple[Host, AutoNATv2]:
    host = await Host.create(listen=list(listen))
    return host, await host.add_service(AutoNATv2(host))


async def test_same_ip_is_dialed_without_dial_data() -> None:
    server, svc = await _server()
    client, v2 = await _client("/ip4/127.0.0.1/tcp/0")
    try:
        await client.connect(server.full_addrs[0])
        result = await v2.check(server.peer_id, client.listen_addrs)
        assert result.status == ResponseStatus.OK and result.dial_status == DialStatus.OK
        assert result.verified and result.dial_data_sent == 0
        assert result.reachability is Reachability.PUBLIC
        assert client.reachability is Reachability.PUBLIC
        assert svc.served == {"OK/OK": 1} and svc.dial_data_received == 0
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_other_ip_costs_dial_data() -> None:
    """The client connects from 127.0.0.1 but asks for 127.0.0.2: the server first makes it
    send 30-100 kB (amplification protection), then dials."""
    server, svc = await _server()
    client, v2 = await _client("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.2/tcp/0")
    try:
        await client.connect(server.full_addrs[0])
        other = [a for a in client.listen_addrs if "/127.0.0.2/" in str(a)]
        result = await v2.check(server.peer_id, other)
        assert result.dial_status == DialStatus.OK and result.verified
        assert 30_000 <= svc.dial_data_received <= 100_000
        assert result.dial_data_sent >= svc.dial_data_received
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_client_refuses_expensive_dial_data_and_server_does_not_dial() -> None:
    server, svc = await _server()
    client, v2 = await _client("/ip4/127.0.0.2/tcp/0")
    v2.config.max_dial_data = 1000
    try:
        await client.connect(server.full_addrs[0])
        with pytest.raises(AutoNATError):
            await v2.check(server.peer_id, client.listen_addrs)
        assert svc.served == {} and svc.dial_data_received == 0
        assert client.reachability is Reachability.UNKNOWN
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_server_refuses_oversized_dial_data_chunks() -> None:
    server, svc = await _server()
    client = await Host.create()
    try:
        stream = await client.new_stream(server.full_addrs[0], DIAL_REQUEST_PROTOCOL_ID)
        await write_delimited(
            stream, encode_message(DialRequest((Multiaddr("/ip4/127.0.0.9/tcp/1"),), 1))
        )
        data = await read_delimited(stream, 8192)
        assert data is not None
        assert isinstance(decode_message(data), DialDataRequest)
        await write_delimited(
            stream, encode_message(DialDataResponse(bytes(MAX_DIAL_DATA_CHUNK + 1)))
        )
        with pytest.raises(Exception):  # noqa: B017 (reset or EOF, whichever comes)
            again = await read_delimited(stream, 8192)
            assert again is not None
        assert svc.served == {}
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_dead_address_is_private() -> None:
    server, _svc = await _server()
    client, v2 = await _client()
    try:
        await client.connect(server.full_addrs[0])
        result = await v2.check(server.peer_id, [Multiaddr("/ip4/127.0.0.1/tcp/1")])
        assert result.status == ResponseStatus.OK
        assert result.dial_status == DialStatus.E_DIAL_ERROR
        assert client.reachability is Reachability.PRIVATE
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_ok_without_the_nonce_is_not_believed() -> None:
    liar = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])

    async def handle(stream: Stream) -> None:
        await read_delimited(stream, 8192)
        await write_delimited(
            stream, encode_message(DialResponse(ResponseStatus.OK, 0, DialStatus.OK))
        )
        await stream.close()

    liar.set_stream_handler(DIAL_REQUEST_PROTOCOL_ID, handle)
    client, v2 = await _client("/ip4/127.0.0.1/tcp/0")
    try:
        await client.connect(liar.full_addrs[0])
        result = await v2.check(liar.peer_id, client.listen_addrs)
        assert result.dial_status == DialStatus.OK and not result.verified
        assert result.reachability is Reachability.UNKNOWN
        assert client.reachability is Reachability.UNKNOWN
    finally:
        await client.close(linger=0)
        await liar.close(linger=0)


async def test_rate_limit_and_refusal() -> None:
    server, svc = await _server(throttle_peer=1, allow_private=False)
    client, v2 = await _client("/ip4/127.0.0.1/tcp/0")
    try:
        await client.connect(server.full_addrs[0])
        first = await v2.check(server.peer_id, client.listen_addrs)
        assert first.status == ResponseStatus.E_DIAL_REFUSED  # loopback: not dialed
        second = await v2.check(server.peer_id, client.listen_addrs)
        assert second.status == ResponseStatus.E_REQUEST_REJECTED
        assert client.reachability is Reachability.UNKNOWN
        assert svc.served == {"E_DIAL_REFUSED/UNUSED": 1, "E_REQUEST_REJECTED/UNUSED": 1}
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_background_check_sets_reachability() -> None:
    from rapidp2p.host.events import ReachabilityChanged

    server, _svc = await _server()
    client = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    try:
        cfg = AutoNATv2Config(probe=True, boot_delay=0.0, retry_interval=30.0)
        v2 = await client.add_service(AutoNATv2(client, cfg))
        sub = client.events.subscribe(ReachabilityChanged)
        await client.connect(server.full_addrs[0])
        ev = await sub.get(timeout=20)
        assert isinstance(ev, ReachabilityChanged)
        assert ev.reachability is Reachability.PUBLIC and ev.via == "autonat/2"
        assert v2.servers() == [server.peer_id]
        # A server on loopback may be asked about loopback addresses; one on the internet not.
        assert v2.candidates(Multiaddr("/ip4/127.0.0.1/tcp/1")) == client.listen_addrs
        assert v2.candidates(Multiaddr("/ip4/1.2.3.4/tcp/1")) == []
    finally:
        await client.close(linger=0)
        await server.close(linger=0)
