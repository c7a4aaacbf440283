"""Ed25519 keys: the libp2p default. Public Data is the 32-byte key; private Data is
``seed || public`` (64 bytes), with the legacy ``seed || public || public`` (96 bytes) accepted."""

from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from rapidp2p.crypto.keys import KeyType, PrivateKey, PublicKey
from rapidp2p.exceptions import KeyError_

_KEY_LEN = 32
_SIG_LEN = 64


class Ed25519PublicKey(PublicKey):
    """An Ed25519 public key (RFC 8032)."""

    key_type = KeyType.Ed25519

    def __init__(self, key: ed25519.Ed25519PublicKey) -> None:
        self._key = key
        self._raw = key.public_bytes_raw()

    @classmethod
    def from_raw(cls, data: bytes) -> Ed25519PublicKey:
        """Parses the 32-byte public key."""
        if len(data) != _KEY_LEN:
            raise KeyError_(f"Ed25519 public key must be 32 bytes, got {len(data)}")
        try:
            return cls(ed25519.Ed25519PublicKey.from_public_bytes(bytes(data)))
        except ValueError as e:
            raise KeyError_(f"invalid Ed25519 public key: {e}") from e

    def raw(self) -> bytes:
        return self._raw

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != _SIG_LEN:
            return False
        try:
            self._key.verify(bytes(signature), bytes(data))
        except InvalidSignature:
            return False
        return True


class Ed25519PrivateKey(PrivateKey):
    """An Ed25519 private key; deterministic signatures."""

    key_type = KeyType.Ed25519

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self._public = Ed25519PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> Ed25519PrivateKey:
        """A fresh key from the OS random source."""
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519PrivateKey:
        """The key for a 32-byte seed (the RFC 8032 private key)."""
        if len(seed) != _KEY_LEN:
            raise KeyError_(f"Ed25519 seed must be 32 bytes, got {len(seed)}")
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @classmethod
    def from_raw(cls, data: bytes) -> Ed25519PrivateKey:
        """Parses ``seed || public`` (64 bytes) or the legacy ``seed || public || public``.

        The embedded public key must match the seed, so a corrupted key file is caught here
        rather than producing signatures no peer accepts.
        """
        if len(data) == 3 * _KEY_LEN:
            if not hmac.compare_digest(data[32:64], data[64:96]):
                raise KeyError_("legacy 96-byte Ed25519 private key has two different public keys")
            data = data[:64]
        if len(data) != 2 * _KEY_LEN:
            raise KeyError_(f"Ed25519 private key must be 64 (or legacy 96) bytes, got {len(data)}")
        key = cls.from_seed(data[:32])
        if not hmac.compare_digest(key.public_key().raw(), bytes(data[32:])):
            raise KeyError_("Ed25519 private key: embedded public key does not match the seed")
        return key

    def seed(self) -> bytes:
        """The 32-byte seed."""
        return self._key.private_bytes_raw()

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(bytes(data))

    def raw(self) -> bytes:
        return self.seed() + self._public.raw()
