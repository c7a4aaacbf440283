"""Issue 13 point 4: ``Stream.readline``/``readuntil`` (asyncio semantics, typed limit error)
and the public varint-delimited helpers in :mod:`rapidp2p.protocols.framing`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from test_host_util import host_pair, server_info

from rapidp2p import Stream
from rapidp2p.exceptions import (
    FrameTooLarge,
    Libp2pError,
    ReadLimitError,
    StreamError,
    UnexpectedEOF,
)
from rapidp2p.protocols import framing

SINK = "/test/sink/1.0.0"


async def _open(parts: list[bytes], close: bool = True) -> AsyncIterator[Stream]:
    """The server writes ``parts`` one drain apart (separate yamux frames), then closes."""
    async with host_pair("memory") as (client, server):

        async def handler(stream: Stream) -> None:
            for p in parts:
                stream.write(p)
                await stream.drain()
                await asyncio.sleep(0)
            if close:
                await stream.close()
            else:
                await asyncio.sleep(30)

        server.set_stream_handler(SINK, handler)
        await client.connect(server_info(server))
        stream = await client.new_stream(server.peer_id, SINK)
        yield stream


async def _stream(parts: list[bytes], close: bool = True) -> tuple[Stream, AsyncIterator[Stream]]:
    gen = _open(parts, close)
    return await gen.__anext__(), gen


async def test_readline_across_frames_and_eof_remainder() -> None:
    stream, gen = await _stream([b"hel", b"lo\nwor", b"ld\n", b"tail"])
    try:
        assert await stream.readline() == b"hello\n"
        assert await stream.readline() == b"world\n"
        assert await stream.readline() == b"tail"  # asyncio: the rest at EOF
        assert await stream.readline() == b""
    finally:
        await gen.aclose()


async def test_readuntil_separator_split_across_frames() -> None:
    stream, gen = await _stream([b"a\r", b"\nb\r\n", b"partial"])
    try:
        assert await stream.readuntil(b"\r\n") == b"a\r\n"
        assert await stream.readuntil(b"\r\n") == b"b\r\n"
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await stream.readuntil(b"\r\n")
        assert info.value.partial == b"partial" and info.value.expected is None
        with pytest.raises(ValueError):
            await stream.readuntil(b"")
    finally:
        await gen.aclose()


async def test_readuntil_limit_is_typed_and_keeps_data() -> None:
    stream, gen = await _stream([b"x" * 100, b"\nnext\n"])
    try:
        with pytest.raises(ReadLimitError) as info:
            await stream.readuntil(b"\n", limit=50)
        err = info.value
        assert isinstance(err, Libp2pError) and isinstance(err, StreamError)
        assert isinstance(err, asyncio.LimitOverrunError) and err.consumed >= 50
        # asyncio semantics: the data is still there.
        assert await stream.readexactly(100) == b"x" * 100
        assert await stream.readuntil(b"\n") == b"\n"
        assert await stream.readline() == b"next\n"
    finally:
        await gen.aclose()


async def test_readline_over_limit_discards_the_line() -> None:
    stream, gen = await _stream([b"y" * 80 + b"\nshort\n"])
    try:
        with pytest.raises(ValueError):  # ReadLimitError is a ValueError, as asyncio raises
            await stream.readline(limit=10)
        assert await stream.readline(limit=10) == b"short\n"
    finally:
        await gen.aclose()


async def test_readline_unbounded_peer_stops_at_limit() -> None:
    # A peer that never sends a newline cannot make readline buffer without bound.
    stream, gen = await _stream([b"z" * 4096] * 8, close=False)
    try:
        with pytest.raises(ReadLimitError):
            await asyncio.wait_for(stream.readline(limit=10_000), 30)
    finally:
        await gen.aclose()


async def test_write_and_read_delimited_public_helpers() -> None:
    async with host_pair("memory") as (client, server):

        async def handler(stream: Stream) -> None:
            while (msg := await framing.read_delimited(stream, 1024)) is not None:
                await framing.write_delimited(stream, msg.upper())
            await stream.close()

        server.set_stream_handler(SINK, handler)
        stream = await client.new_stream(server_info(server), SINK)
        for word in (b"one", b"", b"three" * 50):
            await framing.write_delimited(stream, word)
            assert await framing.read_delimited(stream) == word.upper()
        await stream.close()
        assert await framing.read_delimited(stream) is None


async def test_delimited_errors_are_typed() -> None:
    stream, gen = await _stream([framing.encode_uvarint(5000) + b"abc"])
    try:
        with pytest.raises(FrameTooLarge):
            await framing.read_delimited(stream, 100)
    finally:
        await gen.aclose()
    stream, gen = await _stream([framing.encode_uvarint(10) + b"abc"])
    try:
        with pytest.raises(UnexpectedEOF):
            await framing.read_delimited(stream, 100)
    finally:
        await gen.aclose()
