"""Shared ECDSA helpers for the secp256k1 and P-256 keys: sign and verify over SHA-256."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())

# An ECDSA DER signature over a curve of at most 521 bits is well below this; longer input is
# refused before OpenSSL sees it.
MAX_DER_SIGNATURE = 160


def ecdsa_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """DER ECDSA signature of SHA-256(data)."""
    return key.sign(bytes(data), _ECDSA_SHA256)


def ecdsa_verify(key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    """True for a valid DER ECDSA signature of SHA-256(data); False for anything else."""
    if not signature or len(signature) > MAX_DER_SIGNATURE:
        return False
    try:
        key.verify(bytes(signature), bytes(data), _ECDSA_SHA256)
    except (InvalidSignature, ValueError):
        return False
    return True
