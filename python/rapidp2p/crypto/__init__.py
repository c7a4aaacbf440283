"""libp2p keys: Ed25519 (default), secp256k1, ECDSA P-256 and RSA, with the peer-ids spec's
encodings, signatures and identity files. Built on ``cryptography``."""

from __future__ import annotations

from rapidp2p.crypto.ecdsa import EcdsaPrivateKey, EcdsaPublicKey
from rapidp2p.crypto.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from rapidp2p.crypto.generate import generate_keypair
from rapidp2p.crypto.identity import load_identity, save_identity
from rapidp2p.crypto.keys import KeyType, PrivateKey, PublicKey
from rapidp2p.crypto.rsa import MAX_RSA_BITS, MIN_RSA_BITS, RsaPrivateKey, RsaPublicKey
from rapidp2p.crypto.secp256k1 import Secp256k1PrivateKey, Secp256k1PublicKey
from rapidp2p.crypto.serialization import (
    private_key_from_protobuf,
    private_key_from_raw,
    public_key_from_protobuf,
    public_key_from_raw,
)

__all__ = [
    "MAX_RSA_BITS",
    "MIN_RSA_BITS",
    "EcdsaPrivateKey",
    "EcdsaPublicKey",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "RsaPrivateKey",
    "RsaPublicKey",
    "Secp256k1PrivateKey",
    "Secp256k1PublicKey",
    "generate_keypair",
    "load_identity",
    "private_key_from_protobuf",
    "private_key_from_raw",
    "public_key_from_protobuf",
    "public_key_from_raw",
    "save_identity",
]
