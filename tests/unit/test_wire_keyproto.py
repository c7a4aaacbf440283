"""Key protobufs: deterministic encoding, strict decoding (ROBUSTNESS 25)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p import _core
from rapidp2p.exceptions import DecodeError, ProtobufError

# Ed25519 public key protobuf from the libp2p peer-id spec (peer-ids.md, test vectors).
ED25519_PUB_PB = bytes.fromhex(
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)


def test_spec_vector_round_trip() -> None:
    key_type, data = _core.wire.decode_key_protobuf(ED25519_PUB_PB)
    assert key_type == 1
    assert data == ED25519_PUB_PB[4:]
    assert _core.wire.encode_key_protobuf(1, data) == ED25519_PUB_PB


@given(st.integers(min_value=0, max_value=3), st.binary(max_size=600))
def test_round_trip(key_type: int, data: bytes) -> None:
    encoded = _core.wire.encode_key_protobuf(key_type, data)
    assert _core.wire.decode_key_protobuf(encoded) == (key_type, data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x12\x00\x08\x01", "field 1"),
        (b"\x08\x01", "missing field 2"),
        (b"\x08\x81\x00\x12\x00", "Type varint"),
        (b"\x08\x01\x12\x80\x00", "Data length"),
        (b"\x08\x04\x12\x00", "unknown key type"),
        (b"\x08\x01\x1a\x00", "field 2"),
        (b"\x08\x01\x12\x03ab", "exceeds"),
        (b"\x08\x01\x12\x01ab", "trailing"),
        (b"\x08\x01\x12\x00\x1a\x00", "trailing"),
    ],
)
def test_rejects_non_deterministic(data: bytes, reason: str) -> None:
    with pytest.raises(ProtobufError, match=reason):
        _core.wire.decode_key_protobuf(data)


def test_encode_rejects_unknown_type() -> None:
    with pytest.raises(ProtobufError):
        _core.wire.encode_key_protobuf(4, b"x")


@given(st.binary(max_size=80))
def test_random_bytes_raise_only_decode_errors(data: bytes) -> None:
    try:
        key_type, body = _core.wire.decode_key_protobuf(data)
    except DecodeError:
        return
    assert _core.wire.encode_key_protobuf(key_type, body) == data
