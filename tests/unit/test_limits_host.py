"""ROBUSTNESS 20-23 at the host level: handshake timeouts and caps, per-IP limits, vanishing
peers. Timeouts are configured short; no assertion depends on how fast the machine is."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from test_host_util import ECHO, host_pair, server_info

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import ConnectionClosedError, DialError, StreamResetError, StreamTimeout
from rapidp2p.host import Host, HostConfig, Limits


async def _open_raw(server: Host) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    addr = str(server.addrs[0]).split("/")
    return await asyncio.open_connection(addr[2], int(addr[4]))


async def _wait_closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Reads until the server closes; returns what it sent (its multistream header, if any)."""
    data = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await asyncio.wait_for(reader.read(4096), 30):
            data += chunk
    return data


async def _until(cond: object, what: str) -> None:
    for _ in range(2000):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def test_slowloris_handshake_is_killed_by_the_upgrade_timeout() -> None:
    config = HostConfig(upgrade_timeout=0.2)
    async with host_pair("tcp", server_config=config) as (_client, server):
        reader, writer = await _open_raw(server)
        writer.write(b"\x13/multistream/1.0.0")  # a header without its newline, then silence
        await _wait_closed_by_server(reader)
        writer.close()
        await _until(lambda: server.limiter.pending == 0, "pending handshakes back to 0")
        assert server.connections() == []


async def test_pending_handshakes_are_capped_by_evicting_the_oldest() -> None:
    config = HostConfig(upgrade_timeout=60.0, allowlist=[], limits=Limits(max_pending_handshakes=2))
    async with host_pair("tcp", server_config=config) as (client, server):
        held = [await _open_raw(server)]
        await _until(lambda: server.limiter.pending == 1, "one pending handshake")
        held.append(await _open_raw(server))
        await _until(lambda: server.limiter.pending == 2, "two pending handshakes")
        reader, writer = await _open_raw(server)
        # The table is full: the oldest silent one makes room for the newcomer.
        assert await _wait_closed_by_server(held[0][0]) == b""
        assert server.limiter.pending == 2 and server.limiter.evicted == 1
        for _, w in [*held, (reader, writer)]:
            w.close()
        await _until(lambda: server.limiter.pending == 0, "pending handshakes released")
        # once they are gone, real peers get in again
        s = await client.new_stream(server_info(server), ECHO)
        s.write(b"ok")
        assert await s.read(2) == b"ok"


async def test_per_ip_connection_cap() -> None:
    config = HostConfig(allowlist=[], limits=Limits(max_connections_per_ip=2))
    async with host_pair("tcp", server_config=config) as (client, server):
        others = [await Host.create() for _ in range(2)]
        try:
            await client.connect(server_info(server))
            await others[0].connect(server_info(server))
            with pytest.raises(DialError):
                await others[1].connect(server_info(server))
            await _until(lambda: server.limiter.per_ip.get("127.0.0.1") == 2, "two counted")
            await client.disconnect(server.peer_id)
            await _until(lambda: server.limiter.per_ip.get("127.0.0.1") == 1, "slot released")
            await others[1].connect(server_info(server))
        finally:
            for h in others:
                await h.close()


async def test_per_ip_rate_limit() -> None:
    limits = Limits(connection_burst_per_ip=2, connection_rate_per_ip=1e-6)
    config = HostConfig(allowlist=[], limits=limits)
    async with host_pair("tcp", server_config=config) as (client, server):
        extra = await Host.create()
        try:
            await client.connect(server_info(server))
            await client.disconnect(server.peer_id)
            await extra.connect(server_info(server))
            with pytest.raises(DialError):
                await client.connect(server_info(server))
        finally:
            await extra.close()


@pytest.mark.parametrize("transport", ["tcp", "memory"])
async def test_peer_vanishes_mid_write(transport: str) -> None:
    entered = asyncio.Event()

    async def sink(stream: Stream) -> None:  # never reads
        entered.set()
        await asyncio.sleep(3600)

    async with host_pair(transport) as (client, server):
        server.set_stream_handler("/sink/1", sink)
        s = await client.new_stream(server_info(server), "/sink/1", lazy=False)
        s.write_timeout = 30.0
        await asyncio.wait_for(entered.wait(), 10)

        async def writer() -> None:
            chunk = b"w" * 65536
            while True:
                s.write(chunk)
                await s.drain()

        task = asyncio.ensure_future(writer())
        await asyncio.sleep(0.05)
        for conn in server.connections():
            conn.abort()
        with pytest.raises((StreamResetError, ConnectionClosedError)):
            await asyncio.wait_for(task, 30)
        await _until(lambda: client.connections() == [], "client dropped the connection")
        await _until(lambda: server.connections() == [], "server dropped the connection")
        assert client.limiter.connections == 0 and server.limiter.connections == 0
        await _until(lambda: not server._tasks, "server handler tasks ended")


@pytest.mark.parametrize("transport", ["tcp", "memory"])
async def test_write_timeout_when_peer_never_reads(transport: str) -> None:
    async def sink(stream: Stream) -> None:
        await asyncio.sleep(3600)

    async with host_pair(transport) as (client, server):
        server.set_stream_handler("/sink/1", sink)
        s = await client.new_stream(server_info(server), "/sink/1", lazy=False)
        s.write_timeout = 0.2
        with pytest.raises(StreamTimeout):
            for _ in range(10000):  # far more than any window
                s.write(b"w" * 65536)
                await s.drain()
