"""The key interfaces every key type implements, and the libp2p ``KeyType`` numbers.

Each concrete key keeps the ``cryptography`` object for signing and verifying, plus the exact
bytes of the protobuf ``Data`` field, because peer IDs are hashes of those bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import IntEnum
from typing import ClassVar


class KeyType(IntEnum):
    """The ``KeyType`` enum of the libp2p key protobuf (peer-ids spec)."""

    RSA = 0
    Ed25519 = 1
    Secp256k1 = 2
    ECDSA = 3


class PublicKey(ABC):
    """A public key that verifies libp2p signatures and serialises to the key protobuf."""

    key_type: ClassVar[KeyType]

    @abstractmethod
    def raw(self) -> bytes:
        """The protobuf ``Data`` field: the key in its type's libp2p encoding."""

    @abstractmethod
    def verify(self, data: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid signature of ``data``; never raises on bad input."""

    #: ``to_protobuf()`` once computed (keys are immutable; handshakes, identify and the
    #: peerstore each ask for it on every connection).
    _protobuf: bytes | None = None

    def to_protobuf(self) -> bytes:
        """The deterministic ``PublicKey`` protobuf (what peer IDs hash)."""
        pb = self._protobuf
        if pb is None:
            from rapidp2p.crypto.serialization import encode_key_protobuf

            pb = self._protobuf = encode_key_protobuf(self.key_type, self.raw())
        return pb

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self.key_type == other.key_type and self.raw() == other.raw()

    def __hash__(self) -> int:
        return hash((int(self.key_type), self.raw()))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.raw()[:8].hex()}...>"


class PrivateKey(ABC):
    """A private key that signs with its type's libp2p signature scheme."""

    key_type: ClassVar[KeyType]

    @abstractmethod
    def public_key(self) -> PublicKey:
        """The matching public key."""

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """The libp2p signature of ``data`` (the scheme depends on the key type)."""

    @abstractmethod
    def raw(self) -> bytes:
        """The ``PrivateKey`` protobuf ``Data`` field, in its type's libp2p encoding."""

    def to_protobuf(self) -> bytes:
        """The ``PrivateKey`` protobuf: the on-disk identity format of every libp2p."""
        from rapidp2p.crypto.serialization import encode_key_protobuf

        return encode_key_protobuf(self.key_type, self.raw())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PrivateKey):
            return NotImplemented
        return self.key_type == other.key_type and self.raw() == other.raw()

    def __hash__(self) -> int:
        return hash((int(self.key_type), self.public_key().raw()))

    def __repr__(self) -> str:
        # Never print secret material.
        return f"<{type(self).__name__} public={self.public_key().raw()[:8].hex()}...>"
