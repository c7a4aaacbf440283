"""Key protobufs must be deterministic (ROBUSTNESS 25), and random bytes never crash a parser."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapidp2p.crypto import (
    Ed25519PrivateKey,
    KeyType,
    generate_keypair,
    private_key_from_protobuf,
    public_key_from_protobuf,
)
from rapidp2p.crypto.serialization import MAX_KEY_PROTOBUF
from rapidp2p.exceptions import DecodeError, KeyError_, ProtobufError

KEY = Ed25519PrivateKey.from_seed(bytes(32))
PUBLIC = KEY.public_key().raw()
GOOD = bytes([0x08, 0x01, 0x12, 0x20]) + PUBLIC


def test_canonical_form_accepted() -> None:
    assert KEY.public_key().to_protobuf() == GOOD
    assert public_key_from_protobuf(GOOD) == KEY.public_key()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("non-minimal type varint", bytes([0x08, 0x81, 0x00, 0x12, 0x20]) + PUBLIC),
        ("non-minimal length varint", bytes([0x08, 0x01, 0x12, 0xA0, 0x00]) + PUBLIC),
        ("non-minimal tag varint", bytes([0x88, 0x00, 0x01, 0x12, 0x20]) + PUBLIC),
        ("fields reordered", bytes([0x12, 0x20]) + PUBLIC + bytes([0x08, 0x01])),
        ("extra field", GOOD + bytes([0x18, 0x01])),
        ("extra unknown bytes field", GOOD + bytes([0x1A, 0x00])),
        ("duplicate type", bytes([0x08, 0x01]) + GOOD),
        ("duplicate data", GOOD + bytes([0x12, 0x20]) + PUBLIC),
        ("missing data", bytes([0x08, 0x01])),
        ("missing type", bytes([0x12, 0x20]) + PUBLIC),
        ("empty", b""),
        ("unknown key type", bytes([0x08, 0x04, 0x12, 0x20]) + PUBLIC),
        ("truncated data", GOOD[:-1]),
        ("trailing byte", GOOD + b"\x00"),
        ("type as bytes", bytes([0x0A, 0x01, 0x01, 0x12, 0x20]) + PUBLIC),
    ],
)
def test_non_deterministic_or_malformed_rejected(name: str, data: bytes) -> None:
    for parse in (public_key_from_protobuf, private_key_from_protobuf):
        with pytest.raises(KeyError_) as info:
            parse(data)
        assert isinstance(info.value.__cause__, ProtobufError), name


def test_wrong_data_for_type_names_the_type() -> None:
    with pytest.raises(KeyError_, match="Ed25519 public key must be 32 bytes"):
        public_key_from_protobuf(bytes([0x08, 0x01, 0x12, 0x01, 0x00]))
    # A public key protobuf is not a private key.
    with pytest.raises(KeyError_, match="Ed25519 private key"):
        private_key_from_protobuf(GOOD)


def test_oversized_protobuf_refused_unparsed() -> None:
    with pytest.raises(KeyError_, match="exceeds"):
        public_key_from_protobuf(bytes(MAX_KEY_PROTOBUF + 1))


@settings(max_examples=30, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32))
def test_ed25519_protobuf_round_trip(seed: bytes) -> None:
    key = Ed25519PrivateKey.from_seed(seed)
    assert private_key_from_protobuf(key.to_protobuf()) == key
    assert public_key_from_protobuf(key.public_key().to_protobuf()) == key.public_key()


@settings(max_examples=20, deadline=None)
@given(key_type=st.sampled_from([KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA]))
def test_generated_protobuf_round_trip(key_type: KeyType) -> None:
    key = generate_keypair(key_type)
    assert private_key_from_protobuf(key.to_protobuf()).to_protobuf() == key.to_protobuf()
    public = key.public_key()
    assert public_key_from_protobuf(public.to_protobuf()).to_protobuf() == public.to_protobuf()


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_errors(data: bytes) -> None:
    for parse in (public_key_from_protobuf, private_key_from_protobuf):
        with contextlib.suppress(DecodeError):
            parse(data)


@settings(max_examples=500, deadline=None)
@given(
    key_type=st.integers(min_value=0, max_value=3),
    body=st.binary(max_size=200),
)
def test_well_framed_random_data_raises_only_key_errors(key_type: int, body: bytes) -> None:
    """Valid framing with random Data exercises every type's Data parser."""
    from rapidp2p import _core

    data = _core.wire.encode_key_protobuf(key_type, body)
    for parse in (public_key_from_protobuf, private_key_from_protobuf):
        with contextlib.suppress(KeyError_):
            parse(data)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_bit_flips_in_a_valid_key_raise_only_decode_errors(position: int, flip: int) -> None:
    data = bytearray(KEY.to_protobuf())
    data[position % len(data)] ^= flip
    try:
        key = private_key_from_protobuf(bytes(data))
    except DecodeError:
        return
    # A flip can only survive if it produced another well-formed key.
    assert key.to_protobuf() == bytes(data)
