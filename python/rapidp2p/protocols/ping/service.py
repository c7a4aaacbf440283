"""Ping over a negotiated stream: the echoing handler and the measuring client.

Each side bounds its waits with one :class:`Watchdog` for the whole stream (one timer handle,
fed once per ping; Python 3.10: a timeout per wait): no task and no timer per round trip."""

from __future__ import annotations

import asyncio
import hmac
import time

from rapidp2p.exceptions import RemoteProtocolError, StreamTimeout
from rapidp2p.protocols.framing import UnexpectedEOF, read_exactly
from rapidp2p.protocols.multistream._timeout import (
    HAS_WATCHDOG,
    Watchdog,
    run_with_timeout,
)
from rapidp2p.protocols.multistream.negotiate import ByteStream
from rapidp2p.protocols.ping._proto import PING_SIZE, new_payload

HANDLER_IDLE_TIMEOUT = 60.0
"""The handler stops waiting for the next ping after this long (go-libp2p's ping timeout)."""
MAX_PINGS_PER_STREAM = 1 << 16
"""The handler ends a stream after this many pings (bounded work per stream)."""


async def handle_ping(
    stream: ByteStream,
    *,
    idle_timeout: float | None = HANDLER_IDLE_TIMEOUT,
    max_pings: int = MAX_PINGS_PER_STREAM,
) -> int:
    """Echoes 32-byte pings until EOF, idle timeout or ``max_pings``; returns pings answered.

    A partial ping followed by EOF ends the loop quietly. The caller (the host) closes or
    resets the stream afterwards.
    """
    if HAS_WATCHDOG and idle_timeout is not None:
        return await _handle_watched(stream, idle_timeout, max_pings)
    answered = 0
    while answered < max_pings:
        try:
            payload = await run_with_timeout(_read_ping(stream), idle_timeout)
        except asyncio.TimeoutError:
            break
        if payload is None:
            break
        stream.write(payload)
        await stream.drain()
        answered += 1
    return answered


async def _handle_watched(stream: ByteStream, idle_timeout: float, max_pings: int) -> int:
    """:func:`handle_ping` under one watchdog: each ping (its read and its echo's drain) must
    come within ``idle_timeout`` of the previous one."""
    answered = 0
    dog = Watchdog(idle_timeout)
    try:
        while answered < max_pings:
            # One read is the whole ping nearly always: no extra coroutine for it.
            payload = await stream.read(PING_SIZE)
            if len(payload) < PING_SIZE:
                if not payload:
                    break
                rest = await _read_ping_rest(stream, PING_SIZE - len(payload))
                if rest is None:
                    break
                payload += rest
            stream.write(payload)
            await stream.drain()
            answered += 1
            dog.feed()
    except asyncio.CancelledError:
        if not dog.expired_now():
            raise
    finally:
        dog.close()
    return answered


async def _read_ping_rest(stream: ByteStream, n: int) -> bytes | None:
    try:
        return await read_exactly(stream, n)
    except UnexpectedEOF:
        return None


async def _read_ping(stream: ByteStream) -> bytes | None:
    try:
        return await read_exactly(stream, PING_SIZE)
    except UnexpectedEOF:
        return None


async def ping(stream: ByteStream, count: int = 1, *, timeout: float | None = 10.0) -> list[float]:
    """Sends ``count`` pings one after the other; returns each round-trip time in seconds.

    Raises RemoteProtocolError if an echo differs or the stream ends, StreamTimeout if an
    echo takes longer than ``timeout``.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    if HAS_WATCHDOG and timeout is not None:
        return await _ping_watched(stream, count, timeout)
    rtts: list[float] = []
    for _ in range(count):
        payload = new_payload()
        start = time.perf_counter()
        stream.write(payload)
        await stream.drain()
        try:
            echo = await run_with_timeout(read_exactly(stream, PING_SIZE), timeout)
        except asyncio.TimeoutError as exc:
            raise StreamTimeout(f"no ping echo within {timeout} s") from exc
        rtts.append(time.perf_counter() - start)
        if not hmac.compare_digest(echo, payload):
            raise RemoteProtocolError("ping echo does not match the payload sent")
    return rtts


async def _ping_watched(stream: ByteStream, count: int, timeout: float) -> list[float]:
    """:func:`ping` under one watchdog: each round trip (write, drain, echo) within
    ``timeout``."""
    rtts: list[float] = []
    perf_counter = time.perf_counter
    dog = Watchdog(timeout)
    try:
        for _ in range(count):
            payload = new_payload()
            dog.feed()
            start = perf_counter()
            stream.write(payload)
            await stream.drain()
            echo = await stream.read(PING_SIZE)
            if len(echo) < PING_SIZE:  # rare: the echo came in pieces (or the stream ended)
                if not echo:
                    raise UnexpectedEOF(f"stream ended {PING_SIZE} bytes short of {PING_SIZE}")
                echo += await read_exactly(stream, PING_SIZE - len(echo))
            rtts.append(perf_counter() - start)
            if not hmac.compare_digest(echo, payload):
                raise RemoteProtocolError("ping echo does not match the payload sent")
    except asyncio.CancelledError:
        if dog.expired_now():
            raise StreamTimeout(f"no ping echo within {timeout} s") from None
        raise
    finally:
        dog.close()
    return rtts
