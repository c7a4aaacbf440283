"""Length-prefixed frames and varints at the Python boundary (ROBUSTNESS 1-3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p import _core
from rapidp2p.exceptions import DecodeError, FrameTooLarge, VarintError


def test_encode_frame() -> None:
    assert _core.wire.encode_frame(b"") == b"\x00"
    assert _core.wire.encode_frame(b"abc") == b"\x03abc"
    assert _core.wire.encode_frame(b"x" * 300) == b"\xac\x02" + b"x" * 300


def test_split_returns_frames_and_tail_offset() -> None:
    data = b"\x03abc\x00\x02hi" + b"\x05he"
    frames, consumed = _core.wire.split_frames(data, 100)
    assert frames == [b"abc", b"", b"hi"]
    assert consumed == 8
    assert data[consumed:] == b"\x05he"


def test_split_partial_varint_waits() -> None:
    assert _core.wire.split_frames(b"\x80", 1 << 20) == ([], 0)
    frames, consumed = _core.wire.split_frames(b"\x01a\x80\x80", 1 << 20)
    assert (frames, consumed) == ([b"a"], 2)


@pytest.mark.parametrize(
    "data",
    [b"\x81\x00", b"\x01a\x80\x00", b"\xff" * 10, b"\xff" * 9 + b"\x01"],
)
def test_bad_varint_rejected(data: bytes) -> None:
    # ROBUSTNESS 1: over 9 bytes or non-minimal.
    with pytest.raises(VarintError):
        _core.wire.split_frames(data, 1 << 62)


def test_over_cap_rejected_before_body() -> None:
    # ROBUSTNESS 2: a 1 TiB prefix with no body refuses at once (nothing allocated).
    prefix = _core.wire.varint_encode(1 << 40)
    with pytest.raises(FrameTooLarge, match="exceeds the cap of 1024"):
        _core.wire.split_frames(prefix, 1024)
    # Exactly at the cap is fine.
    assert _core.wire.split_frames(_core.wire.encode_frame(b"z" * 1024), 1024)[0] == [b"z" * 1024]
    with pytest.raises(FrameTooLarge):
        _core.wire.split_frames(_core.wire.encode_frame(b"z" * 1025), 1024)


def test_frames_before_an_error_are_not_returned() -> None:
    # A violation anywhere in the buffer fails the whole call: the caller closes the stream.
    with pytest.raises(FrameTooLarge):
        _core.wire.split_frames(b"\x01a" + _core.wire.varint_encode(5000), 100)


@pytest.mark.parametrize(
    ("tail", "match"),
    [(b"\x80", "varint"), (b"\x05ab", "body"), (b"\x01", "body")],
)
def test_eof_inside_frame_is_an_error(tail: bytes, match: str) -> None:
    # ROBUSTNESS 3: EOF inside a varint or body; no partial message delivered.
    with pytest.raises(DecodeError, match=match):
        _core.wire.split_frames(b"\x01a" + tail, 100, eof=True)
    assert _core.wire.split_frames(b"\x01a", 100, eof=True) == ([b"a"], 2)


@given(st.lists(st.binary(max_size=200), max_size=20), st.data())
def test_round_trip_any_split_point(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(_core.wire.encode_frame(p) for p in payloads)
    frames, consumed = _core.wire.split_frames(stream, 200)
    assert frames == payloads
    assert consumed == len(stream)
    # Feeding the stream in arbitrary chunks yields the same frames.
    cut = data.draw(st.integers(min_value=0, max_value=len(stream)))
    first, used = _core.wire.split_frames(stream[:cut], 200)
    rest, used2 = _core.wire.split_frames(stream[used:], 200)
    assert first + rest == payloads
    assert used + used2 == len(stream)


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=1 << 20), st.booleans())
def test_random_input_only_decode_errors(data: bytes, cap: int, eof: bool) -> None:
    try:
        frames, consumed = _core.wire.split_frames(data, cap, eof)
    except DecodeError:
        return
    assert 0 <= consumed <= len(data)
    assert sum(len(f) for f in frames) <= consumed
    assert all(len(f) <= cap for f in frames)
