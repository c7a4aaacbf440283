"""The ``libp2p-PeerID`` scheme's wire pieces (libp2p/specs ``http/peer-id-auth.md``): header
parameters, base64url, the signed byte string, and the HMAC-sealed opaque state and tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from typing import Any

from rapidp2p.crypto import PrivateKey, PublicKey, public_key_from_protobuf
from rapidp2p.exceptions import Libp2pError, PeerIdAuthError
from rapidp2p.protocols.framing import encode_uvarint

__all__ = [
    "CHALLENGE_BYTES",
    "MAX_HEADER_BYTES",
    "SCHEME",
    "b64decode",
    "b64encode",
    "build_header",
    "data_to_sign",
    "new_challenge",
    "open_sealed",
    "parse_header",
    "seal",
    "sign",
    "verify",
]

SCHEME = "libp2p-PeerID"
CHALLENGE_BYTES = 32
MAX_HEADER_BYTES = 2048
"""The spec's suggested bound on an authentication header (go-libp2p's too)."""
_KNOWN = {"bearer", "challenge-client", "challenge-server", "opaque", "public-key", "sig"}


def b64encode(data: bytes) -> str:
    """Base64 with the URL-safe alphabet, padded (go-libp2p decodes padded only)."""
    return base64.urlsafe_b64encode(data).decode()


def b64decode(text: str) -> bytes:
    """URL-safe base64, padding optional (the spec's rule)."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise PeerIdAuthError("a parameter is not base64url") from None


def new_challenge() -> str:
    """A fresh random challenge: 32 bytes, base64url."""
    return b64encode(secrets.token_bytes(CHALLENGE_BYTES))


def parse_header(value: str | None) -> dict[str, str]:
    """The ``libp2p-PeerID`` parameters of an auth header (empty when the scheme is absent).

    Values must be quoted; unknown parameters are ignored, repeats keep the last value;
    a following scheme ends the list (RFC 9110's challenge list).
    """
    if not value:
        return {}
    if len(value) > MAX_HEADER_BYTES:
        raise PeerIdAuthError(f"auth header over {MAX_HEADER_BYTES} B")
    start = value.find(SCHEME)
    if start < 0:
        return {}
    rest = value[start + len(SCHEME) :]
    params: dict[str, str] = {}
    for token in rest.replace(",", " ").split():
        if "=" not in token:
            break  # the next scheme
        key, _, raw = token.partition("=")
        if len(raw) < 2 or raw[0] != '"' or raw[-1] != '"':
            raise PeerIdAuthError(f"auth parameter {key!r} is not a quoted string")
        if key in _KNOWN:
            params[key] = raw[1:-1]
    return params


def build_header(params: Iterable[tuple[str, str]]) -> str:
    """``libp2p-PeerID k="v", ...`` (empty values left out, like go-libp2p)."""
    return SCHEME + " " + ", ".join(f'{k}="{v}"' for k, v in params if v)


def data_to_sign(parts: Iterable[tuple[str, bytes]]) -> bytes:
    """The scheme name, then each ``key=value`` sorted by key with a varint length prefix."""
    out = bytearray(SCHEME.encode())
    for key, value in sorted(parts, key=lambda kv: kv[0]):
        item = key.encode() + b"=" + value
        out += encode_uvarint(len(item))
        out += item
    return bytes(out)


def sign(key: PrivateKey, parts: Iterable[tuple[str, bytes]]) -> str:
    """The base64url signature of ``parts`` by ``key``."""
    return b64encode(key.sign(data_to_sign(parts)))


def verify(public_key: PublicKey, parts: Iterable[tuple[str, bytes]], sig_b64: str) -> None:
    """Raises PeerIdAuthError unless ``sig_b64`` signs ``parts`` with ``public_key``."""
    if not public_key.verify(data_to_sign(parts), b64decode(sig_b64)):
        raise PeerIdAuthError("libp2p-PeerID signature does not verify")


def decode_public_key(b64: str) -> tuple[bytes, PublicKey]:
    """The key protobuf (as sent) and the key; PeerIdAuthError when unusable."""
    raw = b64decode(b64)
    try:
        return raw, public_key_from_protobuf(raw)
    except Libp2pError as exc:
        raise PeerIdAuthError(f"bad public key: {exc}") from None


def seal(secret: bytes, state: dict[str, Any]) -> str:
    """Server state the client carries back: HMAC-SHA256 then JSON, base64url."""
    body = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return b64encode(hmac.new(secret, body, hashlib.sha256).digest() + body)


def open_sealed(secret: bytes, b64: str) -> dict[str, Any]:
    """The state :func:`seal` made; PeerIdAuthError if forged, altered or malformed."""
    raw = b64decode(b64)
    mac, body = raw[:32], raw[32:]
    if len(raw) < 32 or not hmac.compare_digest(
        mac, hmac.new(secret, body, hashlib.sha256).digest()
    ):
        raise PeerIdAuthError("opaque value or token failed its HMAC")
    try:
        state = json.loads(body)
    except ValueError:
        raise PeerIdAuthError("opaque value is not JSON") from None
    if not isinstance(state, dict):
        raise PeerIdAuthError("opaque value is not a JSON object")
    return state
