"""Ed25519 keys: the libp2p default. Public Data is the 32-byte key; private Data is
``seed || public`` (64 bytes), with the legacy ``seed || public || public`` (96 bytes) accepted.

On ring (``_core.crypto``), not ``cryptography``: a default host never loads OpenSSL's
bindings (~8 MiB of RSS)."""

from __future__ import annotations

import hmac
import os

from rapidp2p._core.crypto import Ed25519Keypair, ed25519_verify
from rapidp2p.crypto.keys import KeyType, PrivateKey, PublicKey
from rapidp2p.exceptions import KeyError_

_KEY_LEN = 32
_SIG_LEN = 64


class Ed25519PublicKey(PublicKey):
    """An Ed25519 public key (RFC 8032)."""

    key_type = KeyType.Ed25519

    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    @classmethod
    def from_raw(cls, data: bytes) -> Ed25519PublicKey:
        """Parses the 32-byte public key."""
        if len(data) != _KEY_LEN:
            raise KeyError_(f"Ed25519 public key must be 32 bytes, got {len(data)}")
        return cls(bytes(data))

    def raw(self) -> bytes:
        return self._raw

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != _SIG_LEN:
            return False
        return ed25519_verify(self._raw, bytes(data), bytes(signature))


class Ed25519PrivateKey(PrivateKey):
    """An Ed25519 private key; deterministic signatures."""

    key_type = KeyType.Ed25519

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._key = Ed25519Keypair(seed)
        self._public = Ed25519PublicKey(self._key.public())

    @classmethod
    def generate(cls) -> Ed25519PrivateKey:
        """A fresh key from the OS random source."""
        return cls(os.urandom(_KEY_LEN))

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519PrivateKey:
        """The key for a 32-byte seed (the RFC 8032 private key)."""
        if len(seed) != _KEY_LEN:
            raise KeyError_(f"Ed25519 seed must be 32 bytes, got {len(seed)}")
        return cls(bytes(seed))

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
        return self._seed

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(bytes(data))

    def raw(self) -> bytes:
        return self.seed() + self._public.raw()
