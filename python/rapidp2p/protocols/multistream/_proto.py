"""multistream-select 1.0 messages, sans-IO.

A message is ``uvarint(len(body)) || body`` where ``body`` is UTF-8 text ending in ``\\n``
and ``len(body)`` counts that newline. Bodies over :data:`MAX_MESSAGE_SIZE` bytes, empty
bodies, a missing newline, non-minimal length varints and invalid UTF-8 are refused with
:class:`~rapidp2p.exceptions.NegotiationError` (ROBUSTNESS 4).
"""

from __future__ import annotations

from rapidp2p.exceptions import NegotiationError, VarintError
from rapidp2p.protocols.framing import UvarintDecoder, encode_uvarint

PROTOCOL_ID = "/multistream/1.0.0"
NA = "na"
LS = "ls"
MAX_MESSAGE_SIZE = 1024
"""Largest body accepted (go-multistream's limit); a 2-byte varint covers it."""

MAX_LENGTH_BYTES = 2
"""Longest length prefix accepted (two bytes cover :data:`MAX_MESSAGE_SIZE`)."""


def encode_message(text: str) -> bytes:
    """Frames one protocol id or command as a multistream message."""
    out = _encoded.get(text)
    if out is None:
        body = text.encode("utf-8") + b"\n"
        if len(body) > MAX_MESSAGE_SIZE:
            raise NegotiationError(f"multistream message of {len(body)} bytes exceeds 1024")
        out = encode_uvarint(len(body)) + body
        if len(_encoded) < _ENCODED_CACHE_SIZE:
            _encoded[text] = out
    return out


def encode_messages(*texts: str) -> bytes:
    """Several messages in one buffer, for a single write (pipelining)."""
    return b"".join([encode_message(t) for t in texts])


#: Framed messages of the ids we send (the same few on every stream); bounded, first come.
_ENCODED_CACHE_SIZE = 256
_encoded: dict[str, bytes] = {}


def encode_ls_response(protocols: list[str]) -> bytes:
    """Response to ``ls``: one message whose body is the framed protocol ids plus ``\\n``."""
    inner = b"".join(encode_uvarint(len(p.encode()) + 1) + p.encode() + b"\n" for p in protocols)
    body = inner + b"\n"
    return encode_uvarint(len(body)) + body


def check_length(length: int) -> None:
    """Validates a decoded length prefix before its body is read."""
    if length == 0:
        raise NegotiationError("zero-length multistream message")
    if length > MAX_MESSAGE_SIZE:
        raise NegotiationError(f"multistream message of {length} bytes exceeds 1024")


def decode_body(body: bytes) -> str:
    """Turns a message body (length prefix removed) into its text, without the newline."""
    if not body.endswith(b"\n"):
        raise NegotiationError("multistream message does not end with a newline")
    try:
        return body[:-1].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NegotiationError("multistream message is not valid UTF-8") from exc


class VarintAccumulator:
    """A length prefix one byte at a time (the reader never over-reads): the framing module's
    decoder capped at 2 bytes, its errors and bad lengths as NegotiationError."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = UvarintDecoder(MAX_LENGTH_BYTES)

    @property
    def started(self) -> bool:
        """True while a length prefix is partly read."""
        return self._decoder.started

    def push(self, byte: int) -> int | None:
        """Adds one byte; returns the checked length once complete, else None."""
        try:
            value = self._decoder.push(byte)
        except VarintError as exc:
            raise NegotiationError(f"multistream length prefix: {exc}") from exc
        if value is not None:
            check_length(value)
        return value


class MessageParser:
    """Incremental parser: feed bytes, get complete messages.

    Used where a buffer already holds bytes (e.g. a test, or a driver that reads in chunks);
    :attr:`buffered` exposes any bytes past the last complete message.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._varint = VarintAccumulator()
        self._need: int | None = None

    def feed(self, data: bytes) -> list[str]:
        """Adds ``data`` and returns every message it completed, in order."""
        self._buf += data
        out: list[str] = []
        while True:
            if self._need is None:
                if not self._buf:
                    return out
                byte = self._buf.pop(0)
                self._need = self._varint.push(byte)
                continue
            if len(self._buf) < self._need:
                return out
            body = bytes(self._buf[: self._need])
            del self._buf[: self._need]
            self._need = None
            out.append(decode_body(body))

    @property
    def buffered(self) -> bytes:
        """Bytes received beyond the last complete message (only when no message is partial)."""
        return bytes(self._buf)

    @property
    def in_message(self) -> bool:
        """True while a message has started but is not complete (EOF now is an error)."""
        return self._need is not None or self._varint.started
