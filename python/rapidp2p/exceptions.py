"""The exception hierarchy of rapidp2p.

Every parser and protocol raises a subclass of :class:`Libp2pError`, so callers can catch
one base class. The Rust extension raises these same classes (it looks them up here), which
keeps the hierarchy importable and documented without the compiled module.

Following h11/h2, a peer's violation is a :class:`RemoteProtocolError` and a misuse of the
API by local code is a :class:`LocalProtocolError`.
"""

from __future__ import annotations


class Libp2pError(Exception):
    """Base class of every error rapidp2p raises on purpose."""


# --- decoding and identities -------------------------------------------------------------


class DecodeError(Libp2pError, ValueError):
    """Bytes or text that do not parse; the message names what is wrong."""


class VarintError(DecodeError):
    """A varint that is truncated, longer than 9 bytes, or not minimally encoded."""


class FrameTooLarge(DecodeError):
    """A length prefix above the protocol's cap, refused before the body is read."""


class MultibaseError(DecodeError):
    """Unknown multibase prefix or bad characters for the base."""


class MultihashError(DecodeError):
    """Unknown multihash code or a digest of the wrong length."""


class CidError(DecodeError):
    """A CID that does not parse or is not a libp2p-key CID where one is required."""


class MultiaddrError(DecodeError):
    """Unknown multiaddr protocol or a malformed value."""


class ProtobufError(DecodeError):
    """A protobuf message that does not decode or is not in the expected deterministic form."""


class KeyError_(DecodeError):
    """Undecodable or unsupported key material (named so it does not shadow builtins.KeyError)."""


class PeerIdError(DecodeError):
    """A peer ID that does not parse or is not valid."""


class SignatureError(Libp2pError):
    """A signature that does not verify."""


# --- protocol state machines -------------------------------------------------------------


class ProtocolError(Libp2pError):
    """A protocol state machine was driven into an invalid state."""


class RemoteProtocolError(ProtocolError):
    """The remote peer violated the protocol; the offending stream or connection is closed."""


class LocalProtocolError(ProtocolError):
    """Local code misused the API (for example, a write after close)."""


__all__ = [
    "CidError",
    "DecodeError",
    "FrameTooLarge",
    "KeyError_",
    "Libp2pError",
    "LocalProtocolError",
    "MultiaddrError",
    "MultibaseError",
    "MultihashError",
    "PeerIdError",
    "ProtocolError",
    "ProtobufError",
    "RemoteProtocolError",
    "SignatureError",
    "VarintError",
]
