"""secp256k1 keys in the Bitcoin encodings libp2p uses: public Data is the 33-byte compressed
point, private Data is the raw 32-byte scalar, signatures are DER ECDSA over SHA-256."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from rapidp2p.crypto._ecutil import ecdsa_sign, ecdsa_verify
from rapidp2p.crypto.keys import KeyType, PrivateKey, PublicKey
from rapidp2p.exceptions import KeyError_

# The order of the secp256k1 group.
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_CURVE = ec.SECP256K1()


class Secp256k1PublicKey(PublicKey):
    """A secp256k1 public key."""

    key_type = KeyType.Secp256k1

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(key.curve, ec.SECP256K1):
            raise KeyError_(f"expected a secp256k1 key, got curve {key.curve.name}")
        self._key = key
        self._raw = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    @classmethod
    def from_raw(cls, data: bytes) -> Secp256k1PublicKey:
        """Parses a 33-byte compressed point (the only form whose re-encoding is identical)."""
        if len(data) != 33 or data[0] not in (2, 3):
            raise KeyError_(
                f"secp256k1 public key must be a 33-byte compressed point, got {len(data)} bytes"
            )
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, bytes(data))
        except ValueError as e:
            raise KeyError_(f"invalid secp256k1 public key: {e}") from e
        return cls(key)

    def raw(self) -> bytes:
        return self._raw

    def verify(self, data: bytes, signature: bytes) -> bool:
        return ecdsa_verify(self._key, data, signature)


class Secp256k1PrivateKey(PrivateKey):
    """A secp256k1 private key. Signatures are normalised to low S (BIP 62): OpenSSL does not
    do it, and some verifiers (js-libp2p's noble-secp256k1 by default) reject high S.
    Verification accepts both forms, like go- and rust-libp2p."""

    key_type = KeyType.Secp256k1

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256K1):
            raise KeyError_(f"expected a secp256k1 key, got curve {key.curve.name}")
        self._key = key
        self._public = Secp256k1PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> Secp256k1PrivateKey:
        """A fresh key from the OS random source."""
        return cls(ec.generate_private_key(_CURVE))

    @classmethod
    def from_raw(cls, data: bytes) -> Secp256k1PrivateKey:
        """Parses the 32-byte big-endian scalar, which must lie in [1, n-1]."""
        if len(data) != 32:
            raise KeyError_(f"secp256k1 private key must be 32 bytes, got {len(data)}")
        scalar = int.from_bytes(data, "big")
        if not 0 < scalar < _N:
            raise KeyError_("secp256k1 private key is out of range [1, n-1]")
        return cls(ec.derive_private_key(scalar, _CURVE))

    def public_key(self) -> Secp256k1PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(ecdsa_sign(self._key, data))
        if s > _N // 2:
            s = _N - s
        return encode_dss_signature(r, s)

    def raw(self) -> bytes:
        return self._key.private_numbers().private_value.to_bytes(32, "big")
