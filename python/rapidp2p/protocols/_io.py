"""Exact reads and varint-delimited messages over a ByteStream, shared by the protocols.

Reads never go past the message they need, so the stream stays aligned for whoever reads
next. Lengths are checked against a cap before any body is read (ROBUSTNESS 2-3).
"""

from __future__ import annotations

from rapidp2p.exceptions import FrameTooLarge, RemoteProtocolError, VarintError
from rapidp2p.protocols.multistream.negotiate import ByteStream

_MAX_VARINT_BYTES = 9


class UnexpectedEOF(RemoteProtocolError):
    """The stream ended in the middle of a message."""


async def read_exactly(stream: ByteStream, n: int) -> bytes:
    """Exactly ``n`` bytes; raises UnexpectedEOF if the stream ends first."""
    parts: list[bytes] = []
    remaining = n
    while remaining:
        chunk = await stream.read(remaining)
        if not chunk:
            raise UnexpectedEOF(f"stream ended {remaining} bytes short of {n}")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


async def read_uvarint(stream: ByteStream) -> int | None:
    """One minimal unsigned varint read byte by byte; None on a clean EOF before it."""
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        chunk = await stream.read(1)
        if not chunk:
            if i == 0:
                return None
            raise UnexpectedEOF("stream ended inside a varint")
        byte = chunk[0]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise VarintError("non-minimal varint")
            return value
    raise VarintError("varint longer than 9 bytes")


async def read_delimited(stream: ByteStream, max_size: int) -> bytes | None:
    """One uvarint-length-prefixed message of at most ``max_size`` bytes; None at clean EOF."""
    length = await read_uvarint(stream)
    if length is None:
        return None
    if length > max_size:
        raise FrameTooLarge(f"message of {length} bytes exceeds the {max_size}-byte limit")
    return await read_exactly(stream, length)


def encode_uvarint(value: int) -> bytes:
    """Unsigned varint of a non-negative int."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_delimited(message: bytes) -> bytes:
    """``uvarint(len(message)) || message``."""
    return encode_uvarint(len(message)) + message
