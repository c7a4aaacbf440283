"""Muxer conformance (after go-libp2p's ``p2p/muxer/testsuite``), run over every transport and,
on TCP, over both security protocols (``tcp+tls``: the dialer offers only TLS 1.3).

Each case drives the full stack (Noise or TLS + yamux + the asyncio driver) through the public Host
and Stream API: many streams on one connection, bulk data, resets, half-close, write after
close, GoAway. Sizes are trimmed to stay quick on 2 cores.

``+mplex``: the dialer offers only ``/mplex/6.7.0`` (as old peers do), on TCP through
multistream-select inside Noise, in memory through Noise's early muxer negotiation; the
listener has its default list (yamux, then mplex).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import (
    ConnectionClosedError,
    GoAwayError,
    StreamClosedError,
    StreamResetError,
)
from rapidp2p.host import Host, HostConfig, Limits, MuxerOptions

pytestmark = pytest.mark.parametrize(
    "transport", ["tcp", "memory", "tcp+tls", "tcp+mplex", "memory+mplex"]
)

ECHO = "/echo/1.0.0"
MPLEX = "/mplex/6.7.0"
LISTEN = {
    "tcp": "/ip4/127.0.0.1/tcp/0",
    "memory": "/memory/0",
    "tcp+tls": "/ip4/127.0.0.1/tcp/0",
    "tcp+mplex": "/ip4/127.0.0.1/tcp/0",
    "memory+mplex": "/memory/0",
}


async def echo(stream: Stream) -> None:
    async for chunk in stream:
        stream.write(chunk)
        await stream.drain()
    await stream.close()


def _config(security: list[str] | None = None) -> HostConfig:
    return HostConfig(
        security_protocols=security,
        limits=Limits(max_streams_per_connection=2048, max_inbound_streams_per_protocol=2048),
        muxer=MuxerOptions(max_streams=2048),
    )


@contextlib.asynccontextmanager
async def pair(transport: str) -> AsyncIterator[tuple[Host, Host, str]]:
    server = await Host.create(listen=[LISTEN[transport]], config=_config())
    server.set_stream_handler(ECHO, echo)
    tls = transport.endswith("+tls")
    client = await Host.create(config=_config(["/tls/1.0.0"] if tls else None))
    if transport.endswith("+mplex"):
        client.upgrader.muxers = [MPLEX]
        client.upgrader.early_muxer = transport.startswith("memory")
    try:
        yield client, server, str(server.full_addrs[0])
    finally:
        await client.close()
        await server.close()


async def test_one_connection_1000_streams(transport: str) -> None:
    async with pair(transport) as (client, server, addr):
        await client.connect(addr)
        limit = asyncio.Semaphore(200)

        async def one(i: int) -> bytes:
            async with limit:
                s = await client.new_stream(server.peer_id, ECHO)
                msg = f"stream {i} ".encode() * 8
                s.write(msg)
                await s.close()
                got = await s.read()
                assert got == msg
                return got

        results = await asyncio.gather(*(one(i) for i in range(1000)))
        assert len(results) == 1000
        assert len(client.connections()) == 1


async def test_bulk_data_over_several_streams(transport: str) -> None:
    size = 10 * 1024 * 1024
    async with pair(transport) as (client, server, addr):
        await client.connect(addr)

        async def one(seed: int) -> None:
            s = await client.new_stream(server.peer_id, ECHO)
            block = hashlib.sha256(bytes([seed])).digest() * 2048  # 64 KiB
            sent = hashlib.sha256()
            got = hashlib.sha256()
            received = 0

            async def reader() -> None:
                nonlocal received
                async for chunk in s:
                    got.update(chunk)
                    received += len(chunk)

            rtask = asyncio.ensure_future(reader())
            for _ in range(size // len(block)):
                s.write(block)
                sent.update(block)
                await s.drain()
            await s.close()
            await rtask
            assert received == size
            assert got.digest() == sent.digest()

        await asyncio.gather(*(one(i) for i in range(3)))


async def test_reset_reaches_the_other_side(transport: str) -> None:
    seen: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def reader(stream: Stream) -> None:
        try:
            while await stream.read(65536):
                pass
        except StreamResetError as exc:
            seen.set_result(exc)

    async with pair(transport) as (client, server, addr):
        server.set_stream_handler("/reader/1", reader)
        s = await client.new_stream(addr, "/reader/1", lazy=False)
        s.write(os.urandom(100_000))
        await s.drain()
        s.reset()
        assert isinstance(await asyncio.wait_for(seen, 10), StreamResetError)
        with pytest.raises(StreamResetError):
            s.write(b"after reset")
        # other streams are unaffected
        e = await client.new_stream(server.peer_id, ECHO)
        e.write(b"alive")
        await e.close()
        assert await e.read() == b"alive"


async def test_half_close_both_directions(transport: str) -> None:
    async with pair(transport) as (client, _server, addr):
        s = await client.new_stream(addr, ECHO)
        payload = os.urandom(300_000)
        s.write(payload)
        await s.close()  # our side done; the echo still flows back
        assert await s.read() == payload
        assert s.at_eof


async def test_write_after_close(transport: str) -> None:
    async with pair(transport) as (client, _server, addr):
        s = await client.new_stream(addr, ECHO)
        await s.close()
        with pytest.raises(StreamClosedError):
            s.write(b"x")
        assert await s.read() == b""


async def test_go_away_stops_new_streams_keeps_open_ones(transport: str) -> None:
    async with pair(transport) as (client, server, addr):
        s = await client.new_stream(addr, ECHO)
        s.write(b"before")
        assert await s.readexactly(6) == b"before"
        (server_side,) = server.connections(client.peer_id)
        server_side.go_away(0)
        conn = s.conn
        if transport.endswith("+mplex"):
            # mplex has no GoAway frame: the going-away side resets every new stream.
            assert conn.muxer == MPLEX
            n = await client.new_stream(addr, ECHO, lazy=True)
            n.write(b"refused")
            with pytest.raises(StreamResetError):
                await n.read()
            s.write(b"after")
            await s.close()
            assert await s.read() == b"after"
            return
        for _ in range(1000):
            if conn.go_away_code is not None:
                break
            await asyncio.sleep(0.005)
        assert conn.go_away_code == 0
        with pytest.raises((GoAwayError, ConnectionClosedError)):
            await conn.open_stream()
        s.write(b"after")
        await s.close()
        assert await s.read() == b"after"
