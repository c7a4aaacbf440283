"""Ping: echo handler and RTT client over in-memory streams."""

from __future__ import annotations

import asyncio

import pytest

from rapidp2p.exceptions import RemoteProtocolError, StreamTimeout
from rapidp2p.protocols.memory import MemoryStream, memory_stream_pair
from rapidp2p.protocols.multistream import select_inbound, select_outbound
from rapidp2p.protocols.ping import PING_SIZE, PROTOCOL_ID, handle_ping, ping


async def test_ping_roundtrips_through_handler() -> None:
    a, b = memory_stream_pair()
    server = asyncio.ensure_future(handle_ping(b))
    rtts = await ping(a, count=5)
    assert len(rtts) == 5
    assert all(r >= 0 for r in rtts)
    a.close()
    assert await server == 5


async def test_ping_after_negotiation() -> None:
    a, b = memory_stream_pair()

    async def serve() -> int:
        assert await select_inbound(b, [PROTOCOL_ID]) == PROTOCOL_ID
        return await handle_ping(b)

    server = asyncio.ensure_future(serve())
    assert await select_outbound(a, [PROTOCOL_ID], lazy=True) == PROTOCOL_ID
    assert len(await ping(a, count=2)) == 2
    a.close()
    assert await server == 2


async def test_ping_detects_wrong_echo() -> None:
    a, b = memory_stream_pair()

    async def liar() -> None:
        await b.read(PING_SIZE)
        b.write(b"\x00" * PING_SIZE)

    task = asyncio.ensure_future(liar())
    with pytest.raises(RemoteProtocolError, match="match"):
        await ping(a)
    await task


async def test_ping_eof_is_remote_error() -> None:
    a, b = memory_stream_pair()
    b.close()
    with pytest.raises(RemoteProtocolError):
        await ping(a)


async def test_ping_timeout() -> None:
    a, _b = memory_stream_pair()
    with pytest.raises(StreamTimeout):
        await ping(a, timeout=0.05)


async def test_handler_partial_ping_then_eof_ends_quietly() -> None:
    a, b = memory_stream_pair()
    a.write(b"\x01" * PING_SIZE + b"\x02" * 5)
    a.close()
    assert await handle_ping(b) == 1
    assert await a.read(100) == b"\x01" * PING_SIZE


async def test_handler_bounded_by_idle_timeout_and_count() -> None:
    _a, b = memory_stream_pair()
    assert await handle_ping(b, idle_timeout=0.05) == 0
    a2, b2 = memory_stream_pair()
    a2.write(b"\x03" * PING_SIZE * 4)
    assert await handle_ping(b2, max_pings=3) == 3
    got = await _drain_all(a2, 3 * PING_SIZE)
    assert got == b"\x03" * PING_SIZE * 3


async def _drain_all(stream: MemoryStream, n: int) -> bytes:
    out = b""
    while len(out) < n:
        out += await stream.read(n - len(out))
    return out


async def test_ping_timeout_is_per_round_trip_not_per_stream() -> None:
    """One watchdog per stream, fed each ping: four slow echoes (0.3 s each) pass under a
    1 s timeout although together they take longer."""
    a, b = memory_stream_pair()

    async def slow_echo() -> None:
        for _ in range(4):
            payload = await _drain_all(b, PING_SIZE)
            await asyncio.sleep(0.3)
            b.write(payload)

    server = asyncio.ensure_future(slow_echo())
    rtts = await ping(a, count=4, timeout=1.0)
    await server
    assert len(rtts) == 4 and sum(rtts) > 1.0


async def test_ping_cancelled_from_outside_is_not_a_timeout() -> None:
    a, _b = memory_stream_pair()
    task = asyncio.ensure_future(ping(a, timeout=30.0))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The handler too: an outside cancellation is not its idle timeout.
    _a2, b2 = memory_stream_pair()
    handler = asyncio.ensure_future(handle_ping(b2, idle_timeout=30.0))
    await asyncio.sleep(0.01)
    handler.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handler


async def test_ping_and_echo_split_across_reads() -> None:
    """A ping (to the handler) and an echo (to the client) that arrive in two pieces."""
    a, b = memory_stream_pair()
    server = asyncio.ensure_future(handle_ping(b))
    a.write(b"\x05" * 10)
    await asyncio.sleep(0.01)
    a.write(b"\x05" * (PING_SIZE - 10))
    assert await _drain_all(a, PING_SIZE) == b"\x05" * PING_SIZE
    a.close()
    assert await server == 1

    c, d = memory_stream_pair()

    async def split_echo() -> None:
        payload = await _drain_all(d, PING_SIZE)
        d.write(payload[:7])
        await asyncio.sleep(0.01)
        d.write(payload[7:])

    echoer = asyncio.ensure_future(split_echo())
    assert len(await ping(c)) == 1
    await echoer
