"""``rapidp2p._core.crypto``: Ed25519 on ring, so a default host never loads ``cryptography``.

Keep in step with ``rust/py/src/crypto.rs``.
"""

from typing import final

__all__ = ["Ed25519Keypair", "ed25519_verify"]

@final
class Ed25519Keypair:
    """An Ed25519 key pair from its 32-byte seed; ``ValueError`` for another length."""

    def __new__(cls, seed: bytes) -> Ed25519Keypair: ...
    def public(self) -> bytes: ...
    def sign(self, data: bytes) -> bytes: ...

def ed25519_verify(public: bytes, data: bytes, signature: bytes) -> bool: ...
