"""NoiseTransport: framing, partial input, tampering, replay and reordering through the glue."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapidp2p import _core
from rapidp2p.exceptions import DecryptionError

MAX_PLAIN = 65519


def _pair() -> tuple[_core.conn.NoiseTransport, _core.conn.NoiseTransport]:
    i, r = _core.conn.NoiseHandshake(True), _core.conn.NoiseHandshake(False)
    r.read_message(i.write_message(b""))
    i.read_message(r.write_message(b""))
    r.read_message(i.write_message(b""))
    return i.into_transport(), r.into_transport()


def test_round_trip_both_ways() -> None:
    a, b = _pair()
    assert b.decrypt(a.encrypt(b"ping")) == b"ping"
    assert a.decrypt(b.encrypt(b"pong")) == b"pong"
    assert a.handshake_hash == b.handshake_hash
    assert (a.send_nonce, a.recv_nonce, b.send_nonce, b.recv_nonce) == (1, 1, 1, 1)


def test_frames_are_length_prefixed_and_split_at_65519() -> None:
    a, b = _pair()
    data = bytes(range(256)) * 600  # 153600 bytes -> 3 frames
    wire = a.encrypt(data)
    assert _core.conn.NOISE_MAX_FRAME_PLAINTEXT == MAX_PLAIN
    assert len(wire) == len(data) + 3 * 18
    pos, sizes = 0, []
    while pos < len(wire):
        (n,) = struct.unpack_from(">H", wire, pos)
        sizes.append(n)
        pos += 2 + n
    assert sizes == [65535, 65535, len(data) - 2 * MAX_PLAIN + 16]
    assert b.decrypt(wire) == data
    assert a.encrypt(b"") == b""


def test_partial_frames_are_buffered_across_calls() -> None:
    a, b = _pair()
    wire = a.encrypt(b"hello") + a.encrypt(b"world")
    out = b""
    for byte in wire:
        out += b.decrypt(bytes([byte]))
    assert out == b"helloworld"
    assert b.pending == 0
    assert b.decrypt(b"") == b""


def test_bit_flip_raises_and_the_nonce_does_not_advance() -> None:
    a, b = _pair()
    wire = a.encrypt(b"attack at dawn")
    for i in range(2 * 8, len(wire) * 8, 7):
        bad = bytearray(wire)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(DecryptionError, match="authentication tag"):
            b.decrypt(bytes(bad))
        assert b.recv_nonce == 0
        assert b.pending == 0
    assert b.decrypt(wire) == b"attack at dawn"


def test_replay_and_reorder_raise() -> None:
    a, b = _pair()
    f1, f2 = a.encrypt(b"one"), a.encrypt(b"two")
    with pytest.raises(DecryptionError):
        b.decrypt(f2)
    assert b.decrypt(f1) == b"one"
    with pytest.raises(DecryptionError):
        b.decrypt(f1)
    assert b.decrypt(f2) == b"two"


@pytest.mark.parametrize("length", [0, 1, 15])
def test_frames_shorter_than_the_tag_raise(length: int) -> None:
    _, b = _pair()
    with pytest.raises(DecryptionError, match="shorter than the 16-byte tag"):
        b.decrypt(struct.pack(">H", length) + b"\x00" * length)
    assert b.recv_nonce == 0


def test_a_huge_length_prefix_only_waits() -> None:
    _, b = _pair()
    assert b.decrypt(b"\xff\xff" + b"\x00" * 10) == b""
    assert b.pending == 12


def test_gil_release_threshold_is_adjustable_and_output_identical() -> None:
    previous = _core.conn._noise_gil_release_min()
    try:
        for threshold in (0, 1 << 40):
            _core.conn._noise_gil_release_min(threshold)
            a, b = _pair()
            data = b"\x5a" * 100_000
            assert b.decrypt(a.encrypt(data)) == data
        assert _core.conn._noise_gil_release_min(previous) == 1 << 40
    finally:
        _core.conn._noise_gil_release_min(previous)
    assert _core.conn._noise_gil_release_min() == previous


@settings(max_examples=40, deadline=None)
@given(
    writes=st.lists(st.binary(max_size=70_000), min_size=1, max_size=4),
    cut=st.integers(min_value=1, max_value=70_000),
)
def test_round_trip_any_chunking(writes: list[bytes], cut: int) -> None:
    a, b = _pair()
    wire = b"".join(a.encrypt(w) for w in writes)
    out = b"".join(b.decrypt(wire[i : i + cut]) for i in range(0, len(wire), cut))
    assert out == b"".join(writes)
    assert b.pending == 0
