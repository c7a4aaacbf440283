"""Shared ECDSA helpers for the secp256k1 and P-256 keys: sign and verify over SHA-256."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def _deterministic_or_random() -> ec.ECDSA:
    """RFC 6979 deterministic nonces when OpenSSL has them (3.2+, cryptography 43+), as
    go- and rust-libp2p sign; otherwise random nonces, which verify the same everywhere."""
    try:
        return ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
    except (TypeError, UnsupportedAlgorithm):
        return _ECDSA_SHA256


_SIGNING = _deterministic_or_random()
DETERMINISTIC = _SIGNING is not _ECDSA_SHA256

# An ECDSA DER signature over a curve of at most 521 bits is well below this; longer input is
# refused before OpenSSL sees it.
MAX_DER_SIGNATURE = 160


def ecdsa_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """DER ECDSA signature of SHA-256(data)."""
    return key.sign(bytes(data), _SIGNING)


def ecdsa_verify(key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    """True for a valid DER ECDSA signature of SHA-256(data); False for anything else."""
    if not signature or len(signature) > MAX_DER_SIGNATURE:
        return False
    try:
        key.verify(bytes(signature), bytes(data), _ECDSA_SHA256)
    except (InvalidSignature, ValueError):
        return False
    return True
