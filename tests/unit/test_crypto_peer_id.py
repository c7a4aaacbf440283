"""Peer IDs of known keys: the Ed25519 key with the all-zero seed has a well-known peer ID."""

from __future__ import annotations

import hashlib

import pytest

from rapidp2p.crypto import Ed25519PrivateKey, KeyType, PublicKey, generate_keypair
from rapidp2p.peer import PeerId

ZERO_SEED_PEER_ID = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    """A deliberately naive base58btc, independent of the library under test."""
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58[rem] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _reference_peer_id(public: PublicKey) -> str:
    encoded = public.to_protobuf()
    if len(encoded) <= 42:
        multihash = bytes([0x00, len(encoded)]) + encoded
    else:
        multihash = bytes([0x12, 0x20]) + hashlib.sha256(encoded).digest()
    return _base58(multihash)


def test_zero_seed_reference_peer_id() -> None:
    key = Ed25519PrivateKey.from_seed(bytes(32))
    assert _reference_peer_id(key.public_key()) == ZERO_SEED_PEER_ID


def test_zero_seed_peer_id_via_peer_module() -> None:
    key = Ed25519PrivateKey.from_seed(bytes(32))
    peer_id = PeerId.from_public_key(key.public_key())
    assert str(peer_id) == ZERO_SEED_PEER_ID
    assert peer_id.extract_public_key() == key.public_key()


@pytest.mark.parametrize("key_type", list(KeyType))
def test_peer_module_agrees_with_reference(key_type: KeyType) -> None:
    public = generate_keypair(key_type).public_key()
    assert str(PeerId.from_public_key(public)) == _reference_peer_id(public)
