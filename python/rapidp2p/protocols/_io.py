"""Kept for the modules that import it: the helpers live in :mod:`rapidp2p.protocols.framing`."""

from __future__ import annotations

from rapidp2p.protocols.framing import (
    UnexpectedEOF,
    encode_delimited,
    encode_uvarint,
    read_delimited,
    read_exactly,
    read_uvarint,
    write_delimited,
)

__all__ = [
    "UnexpectedEOF",
    "encode_delimited",
    "encode_uvarint",
    "read_delimited",
    "read_exactly",
    "read_uvarint",
    "write_delimited",
]
