"""Key generation for every supported key type."""

from __future__ import annotations

from rapidp2p.crypto.ed25519 import Ed25519PrivateKey
from rapidp2p.crypto.keys import KeyType, PrivateKey

#: ``rsa.MIN_RSA_BITS`` (not imported: the other key types load ``cryptography``, which a
#: default Ed25519 host never needs).
_MIN_RSA_BITS = 2048


def generate_keypair(
    key_type: KeyType = KeyType.Ed25519, *, bits: int = _MIN_RSA_BITS
) -> PrivateKey:
    """A fresh private key of ``key_type``; ``bits`` applies to RSA only (2048..8192)."""
    key_type = KeyType(key_type)
    if key_type is KeyType.Ed25519:
        return Ed25519PrivateKey.generate()
    if key_type is KeyType.Secp256k1:
        from rapidp2p.crypto.secp256k1 import Secp256k1PrivateKey

        return Secp256k1PrivateKey.generate()
    if key_type is KeyType.ECDSA:
        from rapidp2p.crypto.ecdsa import EcdsaPrivateKey

        return EcdsaPrivateKey.generate()
    from rapidp2p.crypto.rsa import RsaPrivateKey

    return RsaPrivateKey.generate(bits)
