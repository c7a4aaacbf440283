"""Framing for your own protocols: exact reads and unsigned-varint-delimited messages.

Most libp2p protocols (identify, Kademlia, pubsub, ...) frame each protobuf message as
``uvarint(length) || message``; these helpers read and write that framing over any
:class:`~rapidp2p.protocols.multistream.ByteStream` (a :class:`~rapidp2p.Stream` included)::

    from rapidp2p.protocols.framing import read_delimited, write_delimited

    await write_delimited(stream, b"request")
    answer = await read_delimited(stream, max_size=64 * 1024)   # None at a clean EOF

Reads never go past the message they need, so the stream stays aligned for whoever reads
next. Lengths are checked against a cap before any body is read (ROBUSTNESS 2-3). For
line-based protocols use :meth:`Stream.readline <rapidp2p.Stream.readline>` and
:meth:`Stream.readuntil <rapidp2p.Stream.readuntil>`.
"""

from __future__ import annotations

from rapidp2p.exceptions import FrameTooLarge, UnexpectedEOF, VarintError
from rapidp2p.protocols.multistream.negotiate import ByteStream

__all__ = [
    "DEFAULT_MAX_SIZE",
    "UnexpectedEOF",
    "encode_delimited",
    "encode_uvarint",
    "read_delimited",
    "read_exactly",
    "read_uvarint",
    "write_delimited",
]

_MAX_VARINT_BYTES = 9

#: Default cap of :func:`read_delimited` (1 MiB); pass your protocol's own limit.
DEFAULT_MAX_SIZE = 1 << 20


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


async def read_delimited(stream: ByteStream, max_size: int = DEFAULT_MAX_SIZE) -> bytes | None:
    """One uvarint-length-prefixed message of at most ``max_size`` bytes; None at a clean EOF
    (before the length). Raises FrameTooLarge (before reading the body), VarintError, and
    UnexpectedEOF when the stream ends inside the message."""
    length = await read_uvarint(stream)
    if length is None:
        return None
    if length > max_size:
        raise FrameTooLarge(f"message of {length} bytes exceeds the {max_size}-byte limit")
    return await read_exactly(stream, length)


async def write_delimited(stream: ByteStream, message: bytes) -> None:
    """Writes ``uvarint(len(message)) || message`` and waits for :meth:`drain`."""
    stream.write(encode_delimited(message))
    await stream.drain()


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
