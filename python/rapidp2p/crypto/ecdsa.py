"""ECDSA keys on NIST P-256: public Data is DER SubjectPublicKeyInfo, private Data is the DER
SEC1 ``ECPrivateKey``, signatures are DER ECDSA over SHA-256 (what go- and rust-libp2p use)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rapidp2p.crypto._ecutil import ecdsa_sign, ecdsa_verify
from rapidp2p.crypto.keys import KeyType, PrivateKey, PublicKey
from rapidp2p.exceptions import KeyError_

_CURVE = ec.SECP256R1()
# A P-256 SPKI is 91 bytes and a SEC1 private key 121; far larger input is refused unparsed.
_MAX_DER = 512


def _check_curve(curve: ec.EllipticCurve) -> None:
    if not isinstance(curve, ec.SECP256R1):
        raise KeyError_(f"ECDSA keys must be on P-256 (secp256r1), got {curve.name}")


class EcdsaPublicKey(PublicKey):
    """A P-256 public key. ``raw()`` returns the DER exactly as parsed, so peer IDs computed
    from it match the ones the key's owner computes."""

    key_type = KeyType.ECDSA

    def __init__(self, key: ec.EllipticCurvePublicKey, der: bytes | None = None) -> None:
        _check_curve(key.curve)
        self._key = key
        self._raw = der or key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_raw(cls, data: bytes) -> EcdsaPublicKey:
        """Parses a DER SubjectPublicKeyInfo holding a P-256 point."""
        if len(data) > _MAX_DER:
            raise KeyError_(f"ECDSA public key DER too long ({len(data)} bytes)")
        try:
            key = serialization.load_der_public_key(bytes(data))
        except (ValueError, TypeError) as e:
            raise KeyError_(f"invalid ECDSA public key DER: {e}") from e
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise KeyError_(f"ECDSA public key DER holds a {type(key).__name__}")
        return cls(key, bytes(data))

    def raw(self) -> bytes:
        return self._raw

    def verify(self, data: bytes, signature: bytes) -> bool:
        return ecdsa_verify(self._key, data, signature)


class EcdsaPrivateKey(PrivateKey):
    """A P-256 private key."""

    key_type = KeyType.ECDSA

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        _check_curve(key.curve)
        self._key = key
        self._public = EcdsaPublicKey(key.public_key())

    @classmethod
    def generate(cls) -> EcdsaPrivateKey:
        """A fresh key from the OS random source."""
        return cls(ec.generate_private_key(_CURVE))

    @classmethod
    def from_raw(cls, data: bytes) -> EcdsaPrivateKey:
        """Parses a DER SEC1 ``ECPrivateKey`` (the form go's x509.MarshalECPrivateKey writes)."""
        if len(data) > _MAX_DER:
            raise KeyError_(f"ECDSA private key DER too long ({len(data)} bytes)")
        try:
            key = serialization.load_der_private_key(bytes(data), password=None)
        except (ValueError, TypeError) as e:
            raise KeyError_(f"invalid ECDSA private key DER: {e}") from e
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeyError_(f"ECDSA private key DER holds a {type(key).__name__}")
        return cls(key)

    def public_key(self) -> EcdsaPublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return ecdsa_sign(self._key, data)

    def raw(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
