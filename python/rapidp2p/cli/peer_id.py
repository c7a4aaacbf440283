"""Peer ID text for the CLI: ``rapidp2p.peer.PeerId`` when the build has it.

The fallback (identity multihash up to 42 bytes, else sha256, then base58btc) exists only so
the CLI works in a tree where the peer module has not landed yet; it follows the peer-ids spec.
"""

from __future__ import annotations

import hashlib

from rapidp2p.crypto import PublicKey

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_MAX_INLINE_KEY = 42


def peer_id_text(public_key: PublicKey) -> str:
    """The canonical (base58btc multihash) text of the key's peer ID."""
    try:
        from rapidp2p.peer import PeerId  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return _fallback_peer_id(public_key)
    return str(PeerId.from_public_key(public_key))


def _fallback_peer_id(public_key: PublicKey) -> str:
    encoded = public_key.to_protobuf()
    if len(encoded) <= _MAX_INLINE_KEY:
        multihash = bytes([0x00, len(encoded)]) + encoded
    else:
        multihash = bytes([0x12, 0x20]) + hashlib.sha256(encoded).digest()
    number = int.from_bytes(multihash, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_B58_ALPHABET[remainder])
    zeros = len(multihash) - len(multihash.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))
