"""libp2p keys: Ed25519 (default), secp256k1, ECDSA P-256 and RSA, with the peer-ids spec's
encodings, signatures and identity files. Built on ``cryptography``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rapidp2p.crypto.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from rapidp2p.crypto.generate import generate_keypair
from rapidp2p.crypto.keys import KeyType, PrivateKey, PublicKey
from rapidp2p.crypto.serialization import (
    private_key_from_protobuf,
    private_key_from_raw,
    public_key_from_protobuf,
    public_key_from_raw,
)

if TYPE_CHECKING:
    from rapidp2p.crypto.ecdsa import EcdsaPrivateKey, EcdsaPublicKey
    from rapidp2p.crypto.identity import load_identity, save_identity
    from rapidp2p.crypto.rsa import MAX_RSA_BITS, MIN_RSA_BITS, RsaPrivateKey, RsaPublicKey
    from rapidp2p.crypto.secp256k1 import Secp256k1PrivateKey, Secp256k1PublicKey

#: Imported on first use: ECDSA, RSA and secp256k1 load ``cryptography`` (~8 MiB of RSS), which
#: a default (Ed25519) host never needs.
_LAZY = {
    "EcdsaPrivateKey": "ecdsa",
    "EcdsaPublicKey": "ecdsa",
    "MAX_RSA_BITS": "rsa",
    "MIN_RSA_BITS": "rsa",
    "RsaPrivateKey": "rsa",
    "RsaPublicKey": "rsa",
    "Secp256k1PrivateKey": "secp256k1",
    "Secp256k1PublicKey": "secp256k1",
    "load_identity": "identity",
    "save_identity": "identity",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
