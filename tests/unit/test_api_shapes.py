"""Issue 13 point 5: API shapes a newcomer expects (PeerId(text), timeouts, closed hosts,
lazy vs eager new_stream, GossipSub start/async with/unsubscribe/wait_for_subscribers)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from test_host_util import ECHO, host_pair, server_info

from rapidp2p import Host, PeerId
from rapidp2p.exceptions import (
    DialTimeout,
    HostClosedError,
    Libp2pError,
    LocalProtocolError,
    NoSubscribersError,
    PeerIdError,
    ProtocolNotSupported,
    StreamTimeout,
)
from rapidp2p.pubsub import GossipSub

ED25519_ID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def test_peer_id_from_text_and_bytes() -> None:
    pid = PeerId(ED25519_ID)
    assert pid == PeerId.from_string(ED25519_ID) and str(pid) == ED25519_ID
    assert PeerId(pid.to_bytes()) == pid
    assert PeerId(pid.to_cid()) == pid  # the CID text form too
    with pytest.raises(PeerIdError, match="not a valid peer id: 'hello'"):
        PeerId("hello")
    with pytest.raises(PeerIdError, match="truncated"):
        PeerId(ED25519_ID[:-3])


async def test_closed_host_refuses_listen() -> None:
    host = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    await host.close()
    with pytest.raises(HostClosedError, match="closed"):
        await host.listen("/ip4/127.0.0.1/tcp/0")
    assert isinstance(HostClosedError("x"), LocalProtocolError)


@contextlib.asynccontextmanager
async def _silent_server() -> AsyncIterator[str]:
    """A TCP server on loopback that accepts and never says a word (a stalled handshake)."""
    held: list[asyncio.StreamWriter] = []

    async def on_conn(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"/ip4/127.0.0.1/tcp/{port}/p2p/{ED25519_ID}"
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


async def test_connect_and_new_stream_timeouts() -> None:
    async with _silent_server() as addr, Host() as host:
        with pytest.raises(DialTimeout) as info:
            await host.connect(addr, timeout=0.3)
        assert isinstance(info.value, TimeoutError) and isinstance(info.value, Libp2pError)
        with pytest.raises(StreamTimeout) as sinfo:
            await host.new_stream(addr, ECHO, timeout=0.3)
        assert isinstance(sinfo.value, TimeoutError)
        assert not host.connections()


async def test_new_stream_timeout_does_not_fire_when_fast() -> None:
    async with host_pair("memory") as (client, server):
        stream = await client.new_stream(server_info(server), ECHO, timeout=30)
        stream.write(b"x")
        await stream.close()
        assert await stream.read() == b"x"


async def test_lazy_new_stream_fails_at_first_read_eager_fails_at_open() -> None:
    async with host_pair("memory") as (client, server):
        await client.connect(server_info(server))
        lazy = await client.new_stream(server.peer_id, "/not/served/1.0.0")
        lazy.write(b"data")  # documented: writes succeed before the answer is known
        await lazy.drain()
        with pytest.raises(ProtocolNotSupported):
            await lazy.read(1)
        with pytest.raises(ProtocolNotSupported):
            await client.new_stream(server.peer_id, "/not/served/1.0.0", lazy=False)


async def test_gossipsub_start_async_with_wait_and_unsubscribe() -> None:
    async with host_pair("memory") as (client, server):
        async with GossipSub(server) as ps_server, GossipSub(client) as ps_client:
            await ps_server.start()  # idempotent
            await ps_client.start()
            await client.connect(server_info(server))
            with pytest.raises(NoSubscribersError) as info:
                await ps_client.wait_for_subscribers("room", timeout=0.3)
            assert isinstance(info.value, TimeoutError)
            sub = await ps_server.subscribe("room")
            peers = await ps_client.wait_for_subscribers("room", n=1, timeout=30)
            assert peers == {server.peer_id}
            await ps_client.publish("room", b"hi")
            msg = await sub.get(timeout=30)
            assert msg.data == b"hi"
            ps_server.unsubscribe("room")
            assert "room" not in ps_server.topics
            with pytest.raises(StopAsyncIteration):
                await sub.__anext__()
            # The client sees the server leave.
            for _ in range(300):
                if not ps_client.topic_peers("room"):
                    break
                await asyncio.sleep(0.01)
            assert not ps_client.topic_peers("room")
        with pytest.raises(LocalProtocolError):
            await ps_server.start()


async def test_wait_for_mesh_then_a_message_reaches_a_member_through_the_room() -> None:
    """bob joins through ada only; once meshed with ada, carol's message (published to ada
    only) reaches bob through ada's forwarding, not by luck of a heartbeat's timing."""
    async with host_pair("memory") as (bob, ada):
        carol = await Host.create()
        try:
            async with (
                GossipSub(ada) as ps_ada,
                GossipSub(bob) as ps_bob,
                GossipSub(carol) as ps_carol,
            ):
                at_ada = await ps_ada.subscribe("room")
                at_bob = await ps_bob.subscribe("room")
                with pytest.raises(NoSubscribersError) as info:
                    await ps_bob.wait_for_mesh("room", timeout=0.2)  # no one connected
                assert "0 of 1 peer(s) in the mesh" in str(info.value)
                await bob.connect(server_info(ada))
                assert await ps_bob.wait_for_mesh("room", timeout=30) == {ada.peer_id}
                await carol.connect(server_info(ada))
                await ps_carol.wait_for_subscribers("room", timeout=30)
                assert carol.peer_id not in ps_bob.topic_peers("room")
                await ps_carol.publish("room", b"through ada")
                assert (await at_ada.get(timeout=30)).data == b"through ada"
                assert (await at_bob.get(timeout=30)).data == b"through ada"
                with pytest.raises(ValueError):
                    await ps_bob.wait_for_mesh("room", n=0)
        finally:
            await carol.close()
