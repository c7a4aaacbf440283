"""Wire framing, written once: unsigned varints and varint-length-prefixed frames.

Most libp2p protocols (identify, Kademlia, pubsub, plaintext, multistream-select, ...) frame
each message as ``uvarint(length) || message``. Every Python reader and writer of that framing
is here; where a buffer already holds the bytes the work is done in Rust
(``rapidp2p._core.wire``: one call per chunk). Use them for your own protocols over any
:class:`ByteStream` (a :class:`~rapidp2p.Stream` included)::

    from rapidp2p.protocols.framing import read_delimited, write_delimited

    await write_delimited(stream, b"request")
    answer = await read_delimited(stream, max_size=64 * 1024)   # None at a clean EOF

Reads never go past the message they need, so the stream stays aligned for whoever reads
next. Lengths are checked against a cap before any body is read (ROBUSTNESS 2-3); varints
longer than allowed or not minimal are refused (ROBUSTNESS 1). For line-based protocols use
:meth:`Stream.readline <rapidp2p.Stream.readline>` and
:meth:`Stream.readuntil <rapidp2p.Stream.readuntil>`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rapidp2p._core import wire as _wire
from rapidp2p.exceptions import DecodeError, FrameTooLarge, UnexpectedEOF, VarintError

__all__ = [
    "DEFAULT_MAX_SIZE",
    "MAX_VARINT_BYTES",
    "ByteStream",
    "FrameSplitter",
    "UnexpectedEOF",
    "UvarintDecoder",
    "encode_delimited",
    "encode_uvarint",
    "read_delimited",
    "read_exactly",
    "read_uvarint",
    "write_delimited",
]

#: Longest uvarint accepted (multiformats: 63-bit values, 9 bytes).
MAX_VARINT_BYTES = 9

#: Default cap of :func:`read_delimited` (1 MiB); pass your protocol's own limit.
DEFAULT_MAX_SIZE = 1 << 20

_varint_encode = _wire.varint_encode
_split_frames = _wire.split_frames
_varint_decode = _wire.varint_decode
#: One-byte varints (0..127), prebuilt: most lengths on the hot paths are small.
_SMALL = [bytes((i,)) for i in range(0x80)]


@runtime_checkable
class ByteStream(Protocol):
    """What framing (and negotiation, ping, identify...) needs from a stream.

    ``read(n)`` returns between 1 and ``n`` bytes, or ``b""`` at EOF; ``write`` queues bytes;
    ``drain`` waits until the queued bytes may be sent (backpressure).
    """

    async def read(self, n: int) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


def encode_uvarint(value: int) -> bytes:
    """Unsigned varint of a non-negative int below 2**63."""
    if 0 <= value < 0x80:
        return _SMALL[value]
    try:
        out: bytes = _varint_encode(value)
    except OverflowError as exc:  # negative, or over 64 bits: not a uvarint
        raise VarintError(f"cannot encode {value} as an unsigned varint") from exc
    return out


def encode_delimited(message: bytes) -> bytes:
    """``uvarint(len(message)) || message``."""
    return encode_uvarint(len(message)) + message


class UvarintDecoder:
    """Decodes a uvarint one byte at a time (lets a reader never read past the prefix)."""

    __slots__ = ("_count", "_max_bytes", "_value")

    def __init__(self, max_bytes: int = MAX_VARINT_BYTES) -> None:
        self._max_bytes = max_bytes
        self._value = 0
        self._count = 0

    @property
    def started(self) -> bool:
        """True once a byte of an unfinished varint was pushed."""
        return self._count > 0

    def push(self, byte: int) -> int | None:
        """Adds one byte; returns the value once complete (then starts over), else None."""
        if self._count >= self._max_bytes:
            raise VarintError(f"varint too long (over {self._max_bytes} bytes)")
        self._value |= (byte & 0x7F) << (7 * self._count)
        self._count += 1
        if byte & 0x80:
            return None
        if byte == 0 and self._count > 1:
            raise VarintError("non-minimal varint")
        value = self._value
        self._value = 0
        self._count = 0
        return value


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
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def read_uvarint(stream: ByteStream, max_bytes: int = MAX_VARINT_BYTES) -> int | None:
    """One minimal unsigned varint read byte by byte; None on a clean EOF before it."""
    decoder = UvarintDecoder(max_bytes)
    while True:
        chunk = await stream.read(1)
        if not chunk:
            if decoder.started:
                raise UnexpectedEOF("stream ended inside a varint")
            return None
        value = decoder.push(chunk[0])
        if value is not None:
            return value


async def read_delimited(
    stream: ByteStream, max_size: int = DEFAULT_MAX_SIZE, max_varint_bytes: int = MAX_VARINT_BYTES
) -> bytes | None:
    """One uvarint-length-prefixed message of at most ``max_size`` bytes; None at a clean EOF
    (before the length). Raises FrameTooLarge (before reading the body), VarintError, and
    UnexpectedEOF when the stream ends inside the message."""
    length = await read_uvarint(stream, max_varint_bytes)
    if length is None:
        return None
    if length > max_size:
        raise FrameTooLarge(f"message of {length} bytes exceeds the {max_size}-byte limit")
    return await read_exactly(stream, length) if length else b""


async def write_delimited(stream: ByteStream, message: bytes) -> None:
    """Writes ``uvarint(len(message)) || message`` and waits for :meth:`drain`."""
    stream.write(encode_delimited(message))
    await stream.drain()


class FrameSplitter:
    """Splits length-prefixed frames out of chunks as they arrive (one Rust call per chunk).

    A frame split across chunks is kept until it is complete; while its body is still
    arriving, chunks are only collected (not re-parsed), so a large frame costs one join.
    """

    __slots__ = ("_have", "_max_size", "_need", "_parts")

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self._max_size = max_size
        self._parts: list[bytes] = []
        self._have = 0
        self._need = 0

    def feed(self, chunk: bytes) -> list[bytes] | None:
        """Every frame ``chunk`` completes, in order; None while a frame body is still short.

        Raises FrameTooLarge (a length over ``max_size``, before its body arrives) and
        VarintError (a malformed length); the splitter is unusable after an error.
        """
        parts = self._parts
        if parts:
            parts.append(chunk)
            self._have += len(chunk)
            if self._have < self._need:
                return None
            data = b"".join(parts)
            parts.clear()
        else:
            data = chunk
        frames, used = _split_frames(data, self._max_size)
        if used < len(data):
            rest = data[used:] if used else data
            parts.append(rest)
            self._have = len(rest)
            self._need = _frame_size(rest)
        return frames

    @property
    def pending(self) -> int:
        """Bytes held of an incomplete frame (non-zero at EOF means a truncated frame)."""
        return self._have if self._parts else 0


def _frame_size(tail: bytes) -> int:
    """Total size (prefix + body) of the frame ``tail`` starts; 0 if its prefix is partial."""
    try:
        length, used = _varint_decode(tail[:MAX_VARINT_BYTES])
    except DecodeError:  # only a truncated prefix gets here: split_frames refused bad ones
        return 0
    return used + length
