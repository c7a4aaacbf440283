"""rapidp2p.protocols.framing's buffer-side helpers: FrameSplitter (Rust split per chunk),
UvarintDecoder (byte at a time) and encode_uvarint, against the multiformats rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p._core import wire
from rapidp2p.exceptions import FrameTooLarge, VarintError
from rapidp2p.protocols.framing import (
    FrameSplitter,
    UvarintDecoder,
    encode_delimited,
    encode_uvarint,
)


@given(st.integers(0, (1 << 63) - 1))
def test_encode_uvarint_matches_the_rust_codec(value: int) -> None:
    out = encode_uvarint(value)
    assert out == wire.varint_encode(value)
    assert wire.varint_decode(out) == (value, len(out))


@pytest.mark.parametrize("value", [-1, 1 << 64])
def test_encode_uvarint_refuses_what_is_not_a_uvarint(value: int) -> None:
    with pytest.raises(VarintError):
        encode_uvarint(value)


@given(
    st.lists(st.binary(max_size=300), max_size=20),
    st.lists(st.integers(1, 400), min_size=1, max_size=50),
)
def test_splitter_yields_the_frames_whatever_the_chunking(
    frames: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(encode_delimited(f) for f in frames)
    splitter = FrameSplitter(1024)
    got: list[bytes] = []
    pos = i = 0
    while pos < len(data):
        n = cuts[i % len(cuts)]
        out = splitter.feed(data[pos : pos + n])
        if out is not None:
            got += out
        pos += n
        i += 1
    assert got == frames
    assert splitter.pending == 0


def test_splitter_collects_a_large_frame_without_reparsing() -> None:
    body = bytes(range(256)) * 1024
    data = encode_delimited(body)
    splitter = FrameSplitter(1 << 20)
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    results = [splitter.feed(c) for c in chunks]
    assert results[0] == []  # the prefix is parsed once, then chunks are only collected
    assert all(r is None for r in results[1:-1])
    assert results[-1] == [body]


def test_splitter_holds_a_partial_prefix() -> None:
    splitter = FrameSplitter(1 << 20)
    prefix = encode_uvarint(300)
    assert splitter.feed(prefix[:1]) == []
    assert splitter.pending == 1
    assert splitter.feed(prefix[1:] + b"x" * 299) == []
    assert splitter.feed(b"y") == [b"x" * 299 + b"y"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (encode_uvarint(2000) + b"x", FrameTooLarge),  # refused before the body arrives
        (b"\x81\x00", VarintError),  # non-minimal length
        (b"\xff" * 10, VarintError),  # longer than 9 bytes
    ],
)
def test_splitter_refuses_bad_lengths(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        FrameSplitter(1024).feed(data)


def test_uvarint_decoder_caps_and_minimality() -> None:
    decoder = UvarintDecoder(2)
    assert decoder.push(0x81) is None and decoder.started
    assert decoder.push(0x01) == 129 and not decoder.started
    with pytest.raises(VarintError, match="non-minimal"):
        d = UvarintDecoder()
        d.push(0x80)
        d.push(0x00)
    with pytest.raises(VarintError, match="too long"):
        d = UvarintDecoder(2)
        for b in (0xFF, 0xFF, 0x01):
            d.push(b)
