"""mplex (``/mplex/6.7.0``) for old peers: offered after yamux by default, agreed with a peer
that speaks nothing else (dialing and listening), yamux whenever both sides have it, typed
errors for bad frames, and the driver's answer to a stuck reader (mplex has no flow control).
"""

from __future__ import annotations

import asyncio
import os

import pytest

from rapidp2p import Host, _core
from rapidp2p._aio import backpressure
from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import LocalProtocolError, MuxerError, StreamResetError
from rapidp2p.host import HostConfig, MuxerOptions

MPLEX = "/mplex/6.7.0"
ECHO = "/echo/1.0.0"
TCP = "/ip4/127.0.0.1/tcp/0"


async def echo(stream: Stream) -> None:
    async for chunk in stream:
        stream.write(chunk)
        await stream.drain()
    await stream.close()


def _old_peer(host: Host, early: bool = False) -> Host:
    """What py-libp2p's demos do: only mplex, negotiated with multistream-select."""
    host.upgrader.muxers = [MPLEX]
    host.upgrader.early_muxer = early
    return host


async def _echo_once(client: Host, server: Host, payload: bytes) -> bytes:
    s = await client.new_stream(server.peer_id, ECHO)
    s.write(payload)
    await s.close()
    got = await s.read()
    return got


@pytest.mark.parametrize("old_side", ["dialer", "listener"])
async def test_mplex_only_peer_connects_both_ways(old_side: str) -> None:
    async with await Host.create(listen=[TCP]) as server, Host() as client:
        _old_peer(client if old_side == "dialer" else server)
        server.set_stream_handler(ECHO, echo)
        client.set_stream_handler(ECHO, echo)
        await client.connect(server.full_addrs[0])
        (conn,) = client.connections(server.peer_id)
        assert conn.muxer == MPLEX
        (back,) = server.connections(client.peer_id)
        assert back.muxer == MPLEX
        payload = os.urandom(300_000)
        assert await _echo_once(client, server, payload) == payload
        assert await _echo_once(server, client, b"the other way") == b"the other way"
        # Several streams at once, opened from both sides (mplex ids clash without the flag).
        got = await asyncio.gather(
            *(_echo_once(client, server, bytes([i]) * 1000) for i in range(20)),
            *(_echo_once(server, client, bytes([i]) * 700) for i in range(20)),
        )
        assert got == [bytes([i]) * 1000 for i in range(20)] + [bytes([i]) * 700 for i in range(20)]


async def test_yamux_wins_when_both_sides_have_it() -> None:
    async with await Host.create(listen=[TCP]) as server, Host() as client:
        assert client.upgrader.muxers == ["/yamux/1.0.0", MPLEX]
        for early in (True, False):
            client.upgrader.early_muxer = early
            server.upgrader.early_muxer = early
            await client.connect(server.full_addrs[0])
            (conn,) = client.connections(server.peer_id)
            assert conn.muxer == "/yamux/1.0.0"
            await client.disconnect(server.peer_id)


async def test_early_mplex_through_noise_extension() -> None:
    async with await Host.create(listen=[TCP]) as server, Host() as client:
        _old_peer(client, early=True)
        server.set_stream_handler(ECHO, echo)
        await client.connect(server.full_addrs[0])
        (conn,) = client.connections(server.peer_id)
        assert conn.muxer == MPLEX
        assert await _echo_once(client, server, b"early") == b"early"


async def test_mplex_can_be_turned_off() -> None:
    host = Host(config=HostConfig(muxer=MuxerOptions(mplex=False)))
    assert host.upgrader.muxers == ["/yamux/1.0.0"]


async def test_stuck_reader_is_reset_and_the_connection_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A handler that never reads: with mplex the connection pauses at half the per-stream
    cap (no windows to stop the sender), then the driver resets the stuck stream and other
    streams flow again. (The crate's own cap is checked by cargo tests: with the default
    4 MiB cap, the pause at 2 MiB always comes first, a read being at most 1 MiB.)"""
    monkeypatch.setattr(backpressure, "MPLEX_STALL_RESET", 0.3)
    stuck: list[Stream] = []

    async def never_reads(stream: Stream) -> None:
        stuck.append(stream)
        await asyncio.sleep(3600)

    async with await Host.create(listen=[TCP]) as server, Host() as client:
        _old_peer(client)
        server.set_stream_handler("/stuck/1", never_reads)
        server.set_stream_handler(ECHO, echo)
        await client.connect(server.full_addrs[0])
        s = await client.new_stream(server.peer_id, "/stuck/1", lazy=False)
        with pytest.raises(StreamResetError):
            for _ in range(1024):  # up to 64 MiB: far more than the 2 MiB pause point
                s.write(b"x" * 65536)
                await asyncio.wait_for(s.drain(), 20)
            await asyncio.wait_for(s.read(), 20)
        (held,) = stuck
        with pytest.raises(StreamResetError, match=r"unread for 0\.3 s on an mplex connection"):
            await held.read()
        assert await _echo_once(client, server, b"still alive") == b"still alive"
        (conn,) = server.connections(client.peer_id)
        assert conn.muxer == MPLEX


def test_bad_mplex_frames_are_typed_errors() -> None:
    conn = _core.conn.Connection(None, initiator=True, early_muxer=MPLEX)
    assert conn.muxer == MPLEX and conn.mplex_max_buffered == 4 * 1024 * 1024
    with pytest.raises(LocalProtocolError):
        conn.ping(0.0)  # mplex has no ping
    with pytest.raises(MuxerError, match="flag 7"):
        conn.receive_data(b"\x0f\x00", 0.0)
    assert conn.is_closed
    big = _core.conn.Connection(None, initiator=False, early_muxer=MPLEX)
    # NewStream 0, then a 1 MiB + 1 message header: over go-mplex's and js-mplex's limit.
    with pytest.raises(MuxerError, match="exceeds"):
        big.receive_data(b"\x00\x00" + b"\x02\x81\x80\x40", 0.0)
    with pytest.raises(ValueError):
        _core.conn.Connection(None, initiator=True, early_muxer="/other/1", muxers=None)
    with pytest.raises(ValueError):
        _core.conn.Connection(None, initiator=True, mplex_max_buffered=0)


async def test_pubsub_confirms_delivery_without_a_muxer_ping() -> None:
    """mplex has no ping: pubsub's graceful stream end waits for the peer's FIN alone."""
    from rapidp2p.pubsub import FloodSub

    async with await Host.create(listen=[TCP]) as server, Host() as client:
        _old_peer(client)
        ps_server = await server.add_service(FloodSub(server))
        ps_client = await client.add_service(FloodSub(client))
        sub = await ps_server.subscribe("t")
        await ps_client.subscribe("t")
        await client.connect(server.full_addrs[0])
        (conn,) = client.connections(server.peer_id)
        assert conn.muxer == MPLEX
        with pytest.raises(LocalProtocolError):
            await conn.ping()
        for _ in range(400):
            if ps_client.topic_peers("t"):
                break
            await asyncio.sleep(0.025)
        receipt = await ps_client.publish_confirmed("t", b"confirmed", timeout=20)
        assert server.peer_id in receipt.consumed_by, receipt
        assert (await sub.get(timeout=10)).data == b"confirmed"
