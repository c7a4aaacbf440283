"""The peer-ids spec's key test vectors, byte for byte (tests/vectors/peer_ids/*.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rapidp2p.crypto import (
    KeyType,
    PrivateKey,
    private_key_from_protobuf,
    public_key_from_protobuf,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "peer_ids"
NAMES = ["ed25519", "secp256k1", "ecdsa", "rsa"]


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text())
    return data


@pytest.fixture(params=NAMES, scope="module")
def vector(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _load(request.param)


@pytest.fixture(scope="module")
def private_key(vector: dict[str, Any]) -> PrivateKey:
    return private_key_from_protobuf(bytes.fromhex(vector["private_key_protobuf_hex"]))


def test_every_vector_file_is_present() -> None:
    assert sorted(p.stem for p in VECTORS.glob("*.json")) == sorted(NAMES)


def test_private_key_round_trip(vector: dict[str, Any], private_key: PrivateKey) -> None:
    original = bytes.fromhex(vector["private_key_protobuf_hex"])
    assert private_key.key_type == KeyType(vector["key_type"])
    assert private_key.to_protobuf() == original
    assert private_key_from_protobuf(private_key.to_protobuf()) == private_key


def test_public_key_derivation(vector: dict[str, Any], private_key: PrivateKey) -> None:
    expected = bytes.fromhex(vector["public_key_protobuf_hex"])
    assert private_key.public_key().to_protobuf() == expected


def test_public_key_round_trip(vector: dict[str, Any], private_key: PrivateKey) -> None:
    original = bytes.fromhex(vector["public_key_protobuf_hex"])
    public = public_key_from_protobuf(original)
    assert public.to_protobuf() == original
    assert public == private_key.public_key()
    assert hash(public) == hash(private_key.public_key())


def test_sign_verify(vector: dict[str, Any], private_key: PrivateKey) -> None:
    public = public_key_from_protobuf(bytes.fromhex(vector["public_key_protobuf_hex"]))
    message = b"libp2p test vector message"
    signature = private_key.sign(message)
    assert public.verify(message, signature)
    assert not public.verify(message + b"!", signature)
    tampered = bytearray(signature)
    tampered[len(tampered) // 2] ^= 0x01
    assert not public.verify(message, bytes(tampered))


def test_ed25519_vector_data_layout() -> None:
    """The vector's Data is seed || public, and the public key is the same 32 bytes."""
    vec = _load("ed25519")
    priv = bytes.fromhex(vec["private_key_protobuf_hex"])
    pub = bytes.fromhex(vec["public_key_protobuf_hex"])
    assert priv[:4] == bytes([0x08, 0x01, 0x12, 0x40])
    assert pub[:4] == bytes([0x08, 0x01, 0x12, 0x20])
    assert priv[4 + 32 :] == pub[4:]


def test_rsa_vector_is_4096_bits() -> None:
    key = private_key_from_protobuf(bytes.fromhex(_load("rsa")["private_key_protobuf_hex"]))
    assert key.key_type is KeyType.RSA
    assert getattr(key, "bits") == 4096  # noqa: B009 - attribute of RsaPrivateKey only
