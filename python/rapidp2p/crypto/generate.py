"""Key generation for every supported key type."""

from __future__ import annotations

from rapidp2p.crypto.ecdsa import EcdsaPrivateKey
from rapidp2p.crypto.ed25519 import Ed25519PrivateKey
from rapidp2p.crypto.keys import KeyType, PrivateKey
from rapidp2p.crypto.rsa import MIN_RSA_BITS, RsaPrivateKey
from rapidp2p.crypto.secp256k1 import Secp256k1PrivateKey


def generate_keypair(
    key_type: KeyType = KeyType.Ed25519, *, bits: int = MIN_RSA_BITS
) -> PrivateKey:
    """A fresh private key of ``key_type``; ``bits`` applies to RSA only (2048..8192)."""
    key_type = KeyType(key_type)
    if key_type is KeyType.Ed25519:
        return Ed25519PrivateKey.generate()
    if key_type is KeyType.Secp256k1:
        return Secp256k1PrivateKey.generate()
    if key_type is KeyType.ECDSA:
        return EcdsaPrivateKey.generate()
    return RsaPrivateKey.generate(bits)
