"""ROBUSTNESS 16, 17 and 19 through two real hosts (Noise + yamux + the asyncio driver).

A peer that stops reading is simulated by pausing reading on its side of the socket: it then
neither takes data nor answers keep-alive pings, like a stalled process.
"""

from __future__ import annotations

import asyncio

import pytest
from test_host_util import ECHO, host_pair, server_info

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import ConnectionClosedError, GoAwayError, StreamResetError
from rapidp2p.host import HostConfig, MuxerOptions

SINK = "/sink/1"


async def _sink(stream: Stream) -> None:
    """Accepts a stream and never reads it."""
    await asyncio.sleep(3600)


async def _until(cond: object, what: str) -> None:
    for _ in range(2000):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


@pytest.mark.parametrize("transport", ["tcp", "memory"])
async def test_16_peer_that_never_reads_is_dropped_by_the_keepalive(transport: str) -> None:
    # No stream write timeout: only the connection-level keep-alive can end the writer's wait,
    # and the GoAway flush to a peer that never reads is cut off after a grace period.
    config = HostConfig(muxer=MuxerOptions(keepalive_interval=0.1), stream_write_timeout=None)
    async with host_pair(transport, client_config=config) as (client, server):
        server.set_stream_handler(SINK, _sink)
        s = await client.new_stream(server_info(server), SINK, lazy=False)
        (inbound,) = server.connections(client.peer_id)
        assert inbound.transport is not None
        inbound.transport.pause_reading()  # the server process stalls

        async def writer() -> None:
            while True:
                s.write(b"w" * 65536)
                await s.drain()

        with pytest.raises((ConnectionClosedError, StreamResetError)):
            await asyncio.wait_for(writer(), 60)
        await _until(lambda: client.connections() == [], "client dropped the connection")
        assert client.limiter.connections == 0


async def test_17_opener_waits_while_the_ack_backlog_is_full() -> None:
    config = HostConfig(muxer=MuxerOptions(ack_backlog=3))
    async with host_pair("memory", client_config=config) as (client, server):
        conn = await client.connect(server_info(server))
        await client.identify.identify_peer(conn)  # its stream is acknowledged by now
        (inbound,) = server.connections(client.peer_id)
        assert inbound.transport is not None
        inbound.transport.pause_reading()  # no SYN gets acknowledged
        opened = [await conn.open_stream() for _ in range(3)]
        fourth = asyncio.ensure_future(conn.open_stream())
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert not fourth.done(), "the fourth SYN must wait for an ACK"
        inbound.transport.resume_reading()
        stream = await asyncio.wait_for(fourth, 10)
        assert stream.stream_id not in {st.stream_id for st in opened}
        for st in opened:
            st.reset()


async def test_19_go_away_received_refuses_new_streams_and_keeps_open_ones() -> None:
    async with host_pair("memory") as (client, server):
        s = await client.new_stream(server_info(server), ECHO)
        s.write(b"one")
        assert await s.readexactly(3) == b"one"
        (inbound,) = server.connections(client.peer_id)
        inbound.go_away(2)
        conn = s.conn
        await _until(lambda: conn.go_away_code is not None, "GoAway arrived")
        with pytest.raises(GoAwayError) as info:
            await conn.open_stream()
        assert info.value.code == 2
        s.write(b"two")
        await s.close()
        assert await s.read() == b"two"


async def test_19_streams_open_when_a_go_away_connection_ends_carry_the_code() -> None:
    async with host_pair("memory") as (client, server):
        server.set_stream_handler(SINK, _sink)
        s = await client.new_stream(server_info(server), SINK, lazy=False)
        (inbound,) = server.connections(client.peer_id)
        inbound.go_away(2)
        conn = s.conn
        await _until(lambda: conn.go_away_code is not None, "GoAway arrived")
        inbound.abort()
        with pytest.raises(StreamResetError, match=r"GoAway \(code 2\)"):
            await asyncio.wait_for(s.read(), 10)
        assert isinstance(conn.close_reason, GoAwayError)
        assert conn.close_reason.code == 2
