"""The ``.well-known/libp2p/protocols`` discovery document (libp2p/specs ``http``).

A JSON object mapping each protocol id a server mounts to ``{"path": "<prefix>/"}``, the
path its handler serves under, exactly as go-libp2p's ``WellKnownHandler`` writes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from rapidp2p.exceptions import HttpProtocolError

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "PROTOCOL_ID",
    "WELL_KNOWN_PATH",
    "decode_document",
    "encode_document",
    "normalize_prefix",
]

PROTOCOL_ID = "/http/1.1"
"""The multistream-select id of HTTP/1.1 over a libp2p stream (one request per stream)."""
WELL_KNOWN_PATH = "/.well-known/libp2p/protocols"
MAX_DOCUMENT_BYTES = 256 * 1024
"""A peer's document larger than this is refused (thousands of protocols)."""


def normalize_prefix(path: str) -> str:
    """A mount path as go-libp2p stores it: leading and trailing ``/``."""
    if not path.startswith("/"):
        path = "/" + path
    if not path.endswith("/"):
        path += "/"
    return path


def encode_document(mapping: Mapping[str, str]) -> bytes:
    """``{protocol: path}`` to the JSON document."""
    return json.dumps(
        {proto: {"path": path} for proto, path in sorted(mapping.items())},
        separators=(",", ":"),
    ).encode()


def decode_document(data: bytes) -> dict[str, str]:
    """The JSON document to ``{protocol: path}``; raises HttpProtocolError when malformed."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise HttpProtocolError(f"well-known document over {MAX_DOCUMENT_BYTES} B")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpProtocolError(f"well-known document is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise HttpProtocolError("well-known document is not a JSON object")
    out: dict[str, str] = {}
    for proto, meta in doc.items():
        if not isinstance(meta, dict) or not isinstance(meta.get("path"), str):
            raise HttpProtocolError(f"well-known entry for {proto!r} has no string path")
        out[proto] = meta["path"]
    return out
