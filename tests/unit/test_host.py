"""Host to host over TCP and the in-memory transport: the whole stack (Noise, yamux, streams)."""

from __future__ import annotations

import asyncio

import pytest
from test_host_util import ECHO, host_pair, server_info

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import (
    DialError,
    PeerIdMismatch,
    ProtocolNotSupported,
    StreamClosedError,
    StreamResetError,
)
from rapidp2p.host import (
    Host,
    HostConfig,
    PeerConnected,
    PeerDisconnected,
    PeerIdentified,
    ProtocolsChanged,
)

pytestmark = pytest.mark.parametrize("transport", ["tcp", "memory"])


async def test_listen_reports_real_addresses(transport: str) -> None:
    async with host_pair(transport) as (_client, server):
        (addr,) = server.addrs
        text = str(addr)
        assert not text.endswith("/tcp/0") and not text.endswith("/memory/0")
        assert str(server.full_addrs[0]) == f"{text}/p2p/{server.peer_id}"


async def test_connect_and_echo(transport: str) -> None:
    async with host_pair(transport) as (client, server):
        conn = await client.connect(server_info(server))
        assert conn.remote_peer == server.peer_id
        assert conn.security == "/noise" and conn.muxer == "/yamux/1.0.0"
        stream = await client.new_stream(server.peer_id, [ECHO])
        assert stream.protocol == ECHO and stream.remote_peer == server.peer_id
        stream.write(b"ping pong")
        await stream.close()
        assert await stream.read() == b"ping pong"
        (inbound,) = server.connections(client.peer_id)
        assert inbound.remote_peer == client.peer_id and inbound.direction == "inbound"


async def test_connection_reuse(transport: str) -> None:
    async with host_pair(transport) as (client, server):
        first = await client.connect(server_info(server))
        again = await client.connect(server_info(server))
        assert first is again
        both = await asyncio.gather(*(client.new_stream(server.peer_id, ECHO) for _ in range(5)))
        assert {s.conn for s in both} == {first}
        assert len(client.connections(server.peer_id)) == 1


async def test_concurrent_connects_share_one_dial(transport: str) -> None:
    async with host_pair(transport) as (client, server):
        conns = await asyncio.gather(*(client.connect(server_info(server)) for _ in range(4)))
        assert len({id(c) for c in conns}) == 1


async def test_events_connected_and_disconnected(transport: str) -> None:
    async with host_pair(transport) as (client, server):
        with client.events.subscribe(PeerConnected, PeerDisconnected) as csub:
            ssub = server.events.subscribe(PeerConnected, PeerDisconnected)
            await client.connect(server_info(server))
            ev = await csub.get(timeout=10)
            assert isinstance(ev, PeerConnected) and ev.peer_id == server.peer_id
            ev = await ssub.get(timeout=10)
            assert isinstance(ev, PeerConnected) and ev.peer_id == client.peer_id
            await client.disconnect(server.peer_id)
            ev = await csub.get(timeout=10)
            assert isinstance(ev, PeerDisconnected) and ev.peer_id == server.peer_id
            ev = await ssub.get(timeout=10)
            assert isinstance(ev, PeerDisconnected) and ev.peer_id == client.peer_id
            assert not client.is_connected(server.peer_id)


async def test_half_close_semantics(transport: str) -> None:
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def handler(stream: Stream) -> None:
        data = await stream.read()  # until the client's FIN
        got.set_result(data)
        stream.write(b"reply after FIN")
        await stream.close()

    async with host_pair(transport) as (client, server):
        server.set_stream_handler("/half/1", handler)
        s = await client.new_stream(server_info(server), "/half/1")
        s.write(b"request")
        await s.close()
        with pytest.raises(StreamClosedError):
            s.write(b"more")
        assert await asyncio.wait_for(got, 10) == b"request"
        assert await s.read() == b"reply after FIN"
        assert await s.read() == b""


async def test_reset_is_distinct_from_eof(transport: str) -> None:
    async def resetter(stream: Stream) -> None:
        await stream.readexactly(3)
        stream.reset()

    async def eof(stream: Stream) -> None:
        await stream.close()

    async with host_pair(transport) as (client, server):
        server.set_stream_handler("/reset/1", resetter)
        server.set_stream_handler("/eof/1", eof)
        s = await client.new_stream(server_info(server), "/reset/1")
        s.write(b"abc")
        with pytest.raises(StreamResetError):
            await s.read(10)
        e = await client.new_stream(server.peer_id, "/eof/1")
        assert await e.read(10) == b""


async def test_handler_exception_resets_stream(transport: str) -> None:
    async def broken(stream: Stream) -> None:
        raise RuntimeError("boom")

    async with host_pair(transport) as (client, server):
        server.set_stream_handler("/broken/1", broken)
        s = await client.new_stream(server_info(server), "/broken/1")
        with pytest.raises(StreamResetError):
            await s.read(1)


async def test_unsupported_protocol(transport: str) -> None:
    async with host_pair(transport) as (client, server):
        with pytest.raises(ProtocolNotSupported):
            await client.new_stream(server_info(server), ["/nope/1", "/nope/2"])
        lazy = await client.new_stream(server.peer_id, "/nope/3")
        with pytest.raises(ProtocolNotSupported):
            await lazy.read(1)
        # the connection is still usable
        s = await client.new_stream(server.peer_id, ["/nope/4", ECHO])
        assert s.protocol == ECHO


async def test_remove_stream_handler(transport: str) -> None:
    async with host_pair(transport) as (client, server):
        server.remove_stream_handler(ECHO)
        with pytest.raises(ProtocolNotSupported):
            await client.new_stream(server_info(server), [ECHO], lazy=False)


async def test_dial_self_is_refused(transport: str) -> None:
    async with host_pair(transport) as (_client, server):
        with pytest.raises(DialError, match="self"):
            await server.connect(server_info(server))
        with pytest.raises(DialError, match="self"):
            await server.connect(str(server.addrs[0]))  # no /p2p: found out by the handshake


async def test_dial_answered_by_another_peer(transport: str) -> None:
    async with host_pair(transport) as (client, server):
        other = Host()
        wrong = f"{server.addrs[0]}/p2p/{other.peer_id}"
        with pytest.raises(DialError) as info:
            await client.connect(wrong)
        assert any(isinstance(e, PeerIdMismatch) for e in info.value.errors.values())
        assert client.connections() == []
        assert client.limiter.pending == 0 and client.limiter.connections == 0


async def test_host_close_ends_everything(transport: str) -> None:
    async with host_pair(transport) as (client, server):
        s = await client.new_stream(server_info(server), ECHO)
        s.write(b"x")
        assert await s.read(1) == b"x"
        await server.close()
        with pytest.raises(StreamResetError):
            await asyncio.wait_for(s.read(1), 10)
        assert server.limiter.connections == 0 and server.limiter.pending == 0


async def test_ping_service(transport: str) -> None:
    async with host_pair(transport) as (client, server):
        rtts = await client.ping(server_info(server), 3)
        assert len(rtts) == 3 and all(r > 0 for r in rtts)


async def test_identify_runs_on_connect_and_fills_the_peerstore(transport: str) -> None:
    async with host_pair(transport) as (client, server):
        sub = client.events.subscribe(PeerIdentified)
        conn = await client.connect(server_info(server))
        ev = await sub.get(timeout=10)
        assert isinstance(ev, PeerIdentified) and ev.peer_id == server.peer_id
        assert ECHO in ev.protocols and "/ipfs/ping/1.0.0" in ev.protocols
        assert ev.agent_version == client.config.agent_version
        info = await client.identify.identify_peer(conn)
        assert set(info.protocols) == set(server.protocols)
        assert ECHO in client.peerstore.get_protocols(server.peer_id)
        assert client.peerstore.pubkey(server.peer_id) == server.key.public_key()
        assert [str(a) for a in client.peerstore.addrs(server.peer_id)] == [
            str(a) for a in server.addrs
        ]
        if transport == "tcp":
            assert str(info.observed_addr).startswith("/ip4/127.0.0.1/tcp/")


async def test_identify_push_on_new_handler(transport: str) -> None:
    async with host_pair(transport) as (client, server):
        sub = client.events.subscribe(ProtocolsChanged)
        conn = await client.connect(server_info(server))
        await client.identify.identify_peer(conn)

        async def nothing(stream: Stream) -> None:
            await stream.close()

        server.set_stream_handler("/added/1.0.0", nothing)
        ev = await sub.get(timeout=10)
        assert isinstance(ev, ProtocolsChanged) and ev.added == ("/added/1.0.0",)
        assert "/added/1.0.0" in client.peerstore.get_protocols(server.peer_id)


async def test_streams_opened_right_after_the_handshake_are_served(transport: str) -> None:
    # The dialer's first SYN can share a segment with its last Noise message; the listener
    # feeds it to the muxer while the upgrade ends, so stream serving must be wired before
    # the upgrade (else that stream is reset; seen between two processes).
    async with host_pair(transport) as (_client, server):
        fresh = server._new_protocol()
        assert fresh.on_stream is not None
        for _ in range(5):
            async with Host() as h:
                stream = await h.new_stream(server_info(server), ECHO)
                stream.write(b"first")
                await stream.close()
                assert await stream.read() == b"first"


@pytest.mark.parametrize("early", [(False, False), (True, False), (False, True)])
async def test_muxer_negotiated_inside_noise_without_early_negotiation(
    transport: str, early: tuple[bool, bool]
) -> None:
    # Peers that do not list muxers in the Noise payload (rust-libp2p, py-libp2p) negotiate
    # yamux with multistream-select inside the encrypted channel.
    client_cfg = HostConfig(early_muxer_negotiation=early[0])
    server_cfg = HostConfig(early_muxer_negotiation=early[1])
    async with host_pair(transport, server_cfg, client_cfg) as (client, server):
        conn = await client.connect(server_info(server))
        assert conn.muxer == "/yamux/1.0.0"
        s = await client.new_stream(server.peer_id, ECHO)
        s.write(b"through the preamble")
        await s.close()
        assert await s.read() == b"through the preamble"
        assert len(await client.ping(server.peer_id, 2)) == 2
