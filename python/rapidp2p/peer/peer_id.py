"""Peer IDs: the multihash of a peer's public-key protobuf (see the libp2p peer-id spec)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rapidp2p import _core
from rapidp2p.exceptions import CidError, DecodeError, PeerIdError
from rapidp2p.peer._text import bad_peer_id

if TYPE_CHECKING:
    from rapidp2p.crypto import PublicKey

_from_public_key = _core.peer_id.from_public_key
_validate = _core.peer_id.validate
_to_base58 = _core.peer_id.to_base58
_from_base58 = _core.peer_id.from_base58
_from_string = _core.peer_id.from_string


class PeerId:
    """An immutable, hashable, ordered peer ID holding its multihash bytes.

    ``str()`` is the legacy base58btc form (``12D3KooW...``/``Qm...``), which every libp2p
    implementation prints; :meth:`to_cid` gives the CIDv1 form. ``PeerId("12D3KooW...")``
    parses text (like :meth:`from_string`) and ``PeerId(b"...")`` wraps multihash bytes.
    """

    __slots__ = ("_b58", "_bytes")

    _bytes: bytes
    _b58: str | None

    def __init__(self, data: bytes | bytearray | memoryview | str) -> None:
        """Parses peer-ID text (base58btc or a libp2p-key CID) or wraps multihash bytes;
        raises PeerIdError unless it is a valid peer ID."""
        if isinstance(data, str):
            raw, b58 = _parse_text(data)
            _set_bytes(self, raw)
            _set_b58(self, b58)
            return
        data = bytes(data)
        _validate(data)
        _set_bytes(self, data)
        _set_b58(self, None)

    @classmethod
    def _trusted(cls, data: bytes, b58: str | None = None) -> PeerId:
        # Bytes the codec already validated: skip the check.
        obj = _new(cls)
        _set_bytes(obj, data)
        _set_b58(obj, b58)
        return obj

    @classmethod
    def from_bytes(cls, data: bytes) -> PeerId:
        """Peer ID from its binary multihash (validated: PeerIdError on bad input)."""
        if type(data) is not bytes:
            data = bytes(data)
        _validate(data)
        obj = _new(cls)
        _set_bytes(obj, data)
        _set_b58(obj, None)
        return obj

    @classmethod
    def from_public_key(cls, public_key: PublicKey) -> PeerId:
        """The peer ID of ``public_key`` (identity multihash if its protobuf is <= 42 bytes)."""
        return cls._trusted(_from_public_key(public_key.to_protobuf()))

    @classmethod
    def from_base58(cls, text: str) -> PeerId:
        """Peer ID from its base58btc text (PeerIdError on bad base58 or a bad multihash)."""
        # Base58 text has exactly one encoding per byte string, so `text` is canonical.
        try:
            return cls._trusted(_from_base58(text), text)
        except DecodeError as exc:
            raise PeerIdError(bad_peer_id(text, exc)) from None

    @classmethod
    def from_string(cls, text: str) -> PeerId:
        """Peer ID from either text form: base58btc or a libp2p-key CIDv1 (``bafz...``).

        Raises PeerIdError ("not a valid peer id: ...") for anything else."""
        return cls._trusted(*_parse_text(text))

    def to_bytes(self) -> bytes:
        """The binary multihash."""
        return self._bytes

    def __bytes__(self) -> bytes:
        return self._bytes

    def to_base58(self) -> str:
        """The legacy base58btc text (cached)."""
        b58 = self._b58
        if b58 is None:
            b58 = _to_base58(self._bytes)
            _set_b58(self, b58)
        return b58

    def to_cid(self, base: str = "base32") -> str:
        """The CIDv1 (libp2p-key) text, base32 by default as the spec recommends."""
        return _core.peer_id.to_cid(self._bytes, base)

    def extract_public_key(self) -> PublicKey | None:
        """The public key inlined in an identity peer ID (Ed25519, secp256k1), else None."""
        key = _core.peer_id.public_key(self._bytes)
        if key is None:
            return None
        from rapidp2p.crypto import public_key_from_protobuf

        return public_key_from_protobuf(key)

    def __str__(self) -> str:
        return self.to_base58()

    def __repr__(self) -> str:
        return f"<PeerId {self.to_base58()}>"

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PeerId):
            return self._bytes == other._bytes
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, PeerId):
            return self._bytes != other._bytes
        return NotImplemented

    def __lt__(self, other: PeerId) -> bool:
        if isinstance(other, PeerId):
            return self._bytes < other._bytes
        return NotImplemented

    def __le__(self, other: PeerId) -> bool:
        if isinstance(other, PeerId):
            return self._bytes <= other._bytes
        return NotImplemented

    def __gt__(self, other: PeerId) -> bool:
        if isinstance(other, PeerId):
            return self._bytes > other._bytes
        return NotImplemented

    def __ge__(self, other: PeerId) -> bool:
        if isinstance(other, PeerId):
            return self._bytes >= other._bytes
        return NotImplemented

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("PeerId is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("PeerId is immutable")

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (PeerId, (self._bytes,))


def _parse_text(text: str) -> tuple[bytes, str | None]:
    """(multihash bytes, canonical base58 text when ``text`` is that)."""
    try:
        data = _from_string(text)
    except DecodeError as exc:
        # A CID of another codec stays a CidError (it is a CID, just not a peer's).
        cls = CidError if isinstance(exc, CidError) else PeerIdError
        raise cls(bad_peer_id(text, exc)) from None
    return data, text if text[:1] == "1" or text[:2] == "Qm" else None


# Slot descriptors set the private fields despite the immutable __setattr__, at plain
# attribute-assignment cost.
_new = object.__new__
_set_bytes: Callable[[Any, Any], None] = vars(PeerId)["_bytes"].__set__
_set_b58: Callable[[Any, Any], None] = vars(PeerId)["_b58"].__set__
