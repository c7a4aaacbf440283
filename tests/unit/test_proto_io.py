"""Exact reads and varint-delimited messages shared by ping and identify."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p.exceptions import FrameTooLarge, VarintError
from rapidp2p.protocols.framing import (
    UnexpectedEOF,
    encode_delimited,
    encode_uvarint,
    read_delimited,
    read_uvarint,
)
from rapidp2p.protocols.memory import MemoryStream, memory_stream_pair


async def _reader_with(data: bytes, close: bool = True) -> MemoryStream:
    a, b = memory_stream_pair()
    b.write(data)
    if close:
        b.close()
    return a


@given(st.integers(0, 2**63 - 1))
def test_uvarint_matches_core(value: int) -> None:
    from rapidp2p import _core

    assert encode_uvarint(value) == _core.wire.varint_encode(value)


async def test_read_delimited_roundtrip_and_clean_eof() -> None:
    r = await _reader_with(encode_delimited(b"abc") + encode_delimited(b""))
    assert await read_delimited(r, 10) == b"abc"
    assert await read_delimited(r, 10) == b""
    assert await read_delimited(r, 10) is None


@pytest.mark.parametrize(
    ("data", "exc"),
    [
        (b"\x81\x00", VarintError),
        (b"\xff" * 10, VarintError),
        (b"\x80", UnexpectedEOF),
        (b"\x05ab", UnexpectedEOF),
        (b"\x0b" + b"x" * 11, FrameTooLarge),
    ],
)
async def test_read_delimited_errors(data: bytes, exc: type[Exception]) -> None:
    r = await _reader_with(data)
    with pytest.raises(exc):
        await read_delimited(r, 10)


async def test_read_uvarint_does_not_over_read() -> None:
    r = await _reader_with(b"\xac\x02rest")
    assert await read_uvarint(r) == 300
    assert await r.read(10) == b"rest"
