"""Key protobufs to key objects and back.

The protobuf framing (strict, deterministic: minimal varints, field order, both fields, nothing
else) is decoded in Rust by ``_core``; this module maps ``KeyType`` to the parsers of each
type's ``Data`` encoding.
"""

from __future__ import annotations

from collections.abc import Callable

from rapidp2p import _core
from rapidp2p.crypto.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from rapidp2p.crypto.keys import KeyType, PrivateKey, PublicKey
from rapidp2p.exceptions import KeyError_, ProtobufError

# Biggest key protobuf accepted: an 8192-bit RSA private key is about 4.7 KB.
MAX_KEY_PROTOBUF = 8192
_PARSED_CACHE_SIZE = 1024
_PARSED_MAX_BYTES = 128
_parsed: dict[bytes, PublicKey] = {}

# Ed25519 (on ring) is here from the start; the other types load ``cryptography``, so their
# parsers are added by the first key of such a type (:func:`_load_parsers`).
_PUBLIC_PARSERS: dict[KeyType, Callable[[bytes], PublicKey]] = {
    KeyType.Ed25519: Ed25519PublicKey.from_raw,
}

_PRIVATE_PARSERS: dict[KeyType, Callable[[bytes], PrivateKey]] = {
    KeyType.Ed25519: Ed25519PrivateKey.from_raw,
}


def _load_parsers() -> None:
    from rapidp2p.crypto.ecdsa import EcdsaPrivateKey, EcdsaPublicKey
    from rapidp2p.crypto.rsa import RsaPrivateKey, RsaPublicKey
    from rapidp2p.crypto.secp256k1 import Secp256k1PrivateKey, Secp256k1PublicKey

    _PUBLIC_PARSERS.update(
        {
            KeyType.RSA: RsaPublicKey.from_raw,
            KeyType.Secp256k1: Secp256k1PublicKey.from_raw,
            KeyType.ECDSA: EcdsaPublicKey.from_raw,
        }
    )
    _PRIVATE_PARSERS.update(
        {
            KeyType.RSA: RsaPrivateKey.from_raw,
            KeyType.Secp256k1: Secp256k1PrivateKey.from_raw,
            KeyType.ECDSA: EcdsaPrivateKey.from_raw,
        }
    )


def encode_key_protobuf(key_type: KeyType, data: bytes) -> bytes:
    """The deterministic ``PublicKey``/``PrivateKey`` protobuf (same shape for both)."""
    return _core.wire.encode_key_protobuf(int(key_type), data)


def decode_key_protobuf(data: bytes) -> tuple[KeyType, bytes]:
    """Splits a key protobuf into (type, Data); raises KeyError_ (cause: ProtobufError)."""
    if len(data) > MAX_KEY_PROTOBUF:
        raise KeyError_(f"key protobuf of {len(data)} bytes exceeds {MAX_KEY_PROTOBUF}")
    try:
        key_type, raw = _core.wire.decode_key_protobuf(bytes(data))
    except ProtobufError as e:
        raise KeyError_(f"invalid key protobuf: {e}") from e
    try:
        return KeyType(key_type), raw
    except ValueError as e:  # the glue already checks 0..3; belt and braces
        raise KeyError_(f"unknown key type {key_type}") from e


def public_key_from_raw(key_type: KeyType, data: bytes) -> PublicKey:
    """Parses a public key's ``Data`` field for the given type."""
    key_type = KeyType(key_type)
    if key_type not in _PUBLIC_PARSERS:
        _load_parsers()
    return _PUBLIC_PARSERS[key_type](data)


def private_key_from_raw(key_type: KeyType, data: bytes) -> PrivateKey:
    """Parses a private key's ``Data`` field for the given type."""
    key_type = KeyType(key_type)
    if key_type not in _PRIVATE_PARSERS:
        _load_parsers()
    return _PRIVATE_PARSERS[key_type](data)


def public_key_from_protobuf(data: bytes) -> PublicKey:
    """Parses a ``PublicKey`` protobuf (as carried in Noise payloads, Identify, peer IDs).

    Small keys (Ed25519, secp256k1, ECDSA: every key a peer ID can inline) are remembered in
    a bounded cache: the same peer's key arrives in its handshake, its identify message and
    its signed record, on every connection. Keys are immutable, so sharing them is safe.
    """
    data = bytes(data)
    key = _parsed.get(data)
    if key is not None:
        return key
    key_type, raw = decode_key_protobuf(data)
    key = public_key_from_raw(key_type, raw)
    if len(data) <= _PARSED_MAX_BYTES:
        if len(_parsed) >= _PARSED_CACHE_SIZE:
            del _parsed[next(iter(_parsed))]  # the oldest entry
        _parsed[data] = key
    return key


def private_key_from_protobuf(data: bytes) -> PrivateKey:
    """Parses a ``PrivateKey`` protobuf (the identity file format of every libp2p)."""
    key_type, raw = decode_key_protobuf(data)
    return private_key_from_raw(key_type, raw)
