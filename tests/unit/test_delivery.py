"""Issue 19: nothing reported as sent may be lost.

``Stream.close(wait=True)`` returns only once the remote closed its side (it read to our
EOF); ``Host.close()`` half-closes every stream and lingers, one deadline for every
connection, until the remotes consumed what was written, never longer than the linger.
"""

from __future__ import annotations

import asyncio

import pytest
from test_host_util import LISTEN

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import ConnectionClosedError, StreamResetError, StreamTimeout
from rapidp2p.host import Host, HostConfig
from rapidp2p.host.connmgr import ConnManagerConfig
from rapidp2p.host.limits import Limits

SINK = "/test/sink/1.0.0"
pytestmark = pytest.mark.parametrize("transport", ["tcp", "memory"])


async def _pair(transport: str) -> tuple[Host, Host]:
    server = await Host.create(listen=[LISTEN[transport]])
    client = await Host.create()
    return client, server


async def test_close_wait_returns_after_the_remote_read_everything(transport: str) -> None:
    client, server = await _pair(transport)
    got: list[bytes] = []
    read_all = asyncio.Event()

    async def sink(stream: Stream) -> None:
        await asyncio.sleep(0.2)  # a slow reader: the sender must not return before it read
        got.append(await stream.read())
        read_all.set()
        await stream.close()

    server.set_stream_handler(SINK, sink)
    try:
        stream = await client.new_stream(server.full_addrs[0], SINK)
        stream.write(b"x" * 300_000)
        await stream.close(wait=True, timeout=30)
        assert read_all.is_set() and got == [b"x" * 300_000]
        assert stream.remote_closed and stream.settled
    finally:
        await client.close()
        await server.close()


async def test_close_wait_raises_on_reset_and_on_timeout(transport: str) -> None:
    client, server = await _pair(transport)

    async def resetter(stream: Stream) -> None:
        await stream.read()
        stream.reset()

    async def silent(stream: Stream) -> None:
        await stream.read()
        await asyncio.sleep(60)  # reads our EOF but never closes its side

    server.set_stream_handler("/test/reset", resetter)
    server.set_stream_handler("/test/silent", silent)
    try:
        s1 = await client.new_stream(server.full_addrs[0], "/test/reset")
        s1.write(b"one-way")
        with pytest.raises(StreamResetError):
            await s1.close(wait=True, timeout=30)
        s2 = await client.new_stream(server.peer_id, "/test/silent")
        s2.write(b"one-way")
        with pytest.raises(StreamTimeout):
            await s2.close(wait=True, timeout=0.3)
        assert not s2.settled
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_close_wait_is_not_fooled_by_a_remote_shutting_down(transport: str) -> None:
    """A host that closes before reading what it was sent resets that stream (a FIN would
    claim it consumed the data); a connection that just dies is a ConnectionClosedError."""
    client, server = await _pair(transport)
    entered = asyncio.Event()

    async def silent(stream: Stream) -> None:
        entered.set()
        await asyncio.sleep(60)

    server.set_stream_handler(SINK, silent)
    try:
        stream = await client.new_stream(server.full_addrs[0], SINK)
        stream.write(b"never read")
        await stream.drain()
        await entered.wait()
        waiter = asyncio.ensure_future(stream.close(wait=True, timeout=30))
        await asyncio.sleep(0.1)  # the data reached the server's stream, unread
        await server.close(linger=0)
        with pytest.raises(StreamResetError):
            await waiter
    finally:
        await client.close(linger=0)


async def test_close_wait_raises_when_the_connection_dies(transport: str) -> None:
    client, server = await _pair(transport)

    async def silent(stream: Stream) -> None:
        await asyncio.sleep(60)

    server.set_stream_handler(SINK, silent)
    try:
        stream = await client.new_stream(server.full_addrs[0], SINK)
        waiter = asyncio.ensure_future(stream.close(wait=True, timeout=30))
        await asyncio.sleep(0.05)
        for conn in server.connections():
            conn.abort()
        with pytest.raises(ConnectionClosedError):
            await waiter
    finally:
        await client.close(linger=0)
        await server.close(linger=0)


async def test_host_close_lingers_until_the_remote_consumed(transport: str) -> None:
    """The sender closes its host right after writing: the reader still gets every byte."""
    client, server = await _pair(transport)
    got: list[bytes] = []

    async def slow_sink(stream: Stream) -> None:
        await asyncio.sleep(0.3)
        got.append(await stream.read())
        await stream.close()

    server.set_stream_handler(SINK, slow_sink)
    try:
        stream = await client.new_stream(server.full_addrs[0], SINK)
        stream.write(b"y" * 1_000_000)
        await client.close()  # default linger (2 s) is plenty for a 0.3 s reader
        assert got == [b"y" * 1_000_000]
    finally:
        await server.close()


async def test_host_close_linger_zero_does_not_wait(transport: str) -> None:
    client, server = await _pair(transport)
    entered = asyncio.Event()

    async def silent(stream: Stream) -> None:
        entered.set()
        await asyncio.sleep(60)

    server.set_stream_handler(SINK, silent)
    try:
        stream = await client.new_stream(server.full_addrs[0], SINK)
        stream.write(b"z")
        await entered.wait()
        conn = stream.conn
        assert not conn.settled
        await client.close(linger=0)
        assert conn.is_closed
    finally:
        await server.close(linger=0)


async def test_linger_is_one_deadline_for_every_connection(transport: str) -> None:
    """A host whose 1,000 connections each hold a stream the remote never closes: close()
    lingers (the remotes might still read) but for one linger in all, not one per connection
    (which would be 1,000 lingers)."""
    linger = 1.0
    n = 1000 if transport == "memory" else 200
    many = n + 10
    limits = Limits(
        max_connections=many,
        max_pending_handshakes=many,
        max_connections_per_ip=many,
        connection_rate_per_ip=1e6,
        connection_burst_per_ip=many,
    )
    server = await Host.create(
        listen=[LISTEN[transport]],
        # No trimming: dialling 1,000 peers can outlast the connection manager's grace period.
        config=HostConfig(
            close_linger=linger,
            limits=limits,
            connmgr=ConnManagerConfig(low_water=2 * many, high_water=2 * many),
        ),
    )
    opened = 0
    all_open = asyncio.Event()

    async def talker(stream: Stream) -> None:
        nonlocal opened
        stream.write(b"unread by the remote")
        opened += 1
        if opened == n:
            all_open.set()
        await asyncio.sleep(120)

    server.set_stream_handler(SINK, talker)
    clients = [await Host.create() for _ in range(n)]
    try:
        # Dialled 50 at a time: 1,000 simultaneous handshakes on a loaded 2-core machine can
        # miss the upgrade's per-stage deadlines, which this test is not about.
        gate = asyncio.Semaphore(50)

        async def dial(c: Host) -> None:
            async with gate:
                await c.new_stream(server.full_addrs[0], SINK)

        await asyncio.gather(*(dial(c) for c in clients))
        await asyncio.wait_for(all_open.wait(), 60)
        assert len(server.connections()) == n
        loop = asyncio.get_running_loop()
        start = loop.time()
        await server.close()
        took = loop.time() - start
        assert took >= linger * 0.9, "close did not wait for unconsumed data"
        # Generous: one linger plus noise, far from n lingers.
        assert took < linger + 30, f"close took {took:.1f} s for {n} connections"
        assert all(c.is_closed for c in server.connections()) or not server.connections()
    finally:
        await asyncio.gather(*(c.close(linger=0) for c in clients))
