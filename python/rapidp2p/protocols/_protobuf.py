"""A minimal, bounded protobuf (proto2/proto3 wire format) reader and writer: the one Python
protobuf codec, beside :mod:`rapidp2p.protocols.framing` (the one uvarint and length-prefix
module), for the small, rare messages of relay, AutoNAT, DCUtR and rendezvous. The messages on
hot or security-critical paths (identify, Noise payloads, plaintext's Exchange, Kademlia,
pubsub) are encoded by the Rust codecs in ``_core.proto``, ``_core.kad`` and ``_core.pubsub``.

Only varints (wire type 0) and length-delimited fields (wire type 2) are read; fixed32/fixed64
fields are skipped when seen. Its varints follow protobuf's rule (up to 10 bytes, any uint64),
not the multiformats one of ``framing`` and ``_core.wire`` (at most 9 bytes, values below
2**63, minimal encoding), so they are the one varint code kept apart from ``framing``: a
uint64 field at or above 2**63 is valid protobuf that the multiformats codec refuses.
"""

from __future__ import annotations

from collections.abc import Iterator

from rapidp2p.exceptions import ProtobufError

__all__ = ["field_bytes", "field_fixed64", "field_varint", "iter_fields", "read_varint"]

_MAX_VARINT_BYTES = 10


def read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(value, new position); raises ProtobufError on truncation or over 10 bytes."""
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if value >= 1 << 64:
                raise ProtobufError("varint over 64 bits")
            return value, pos
    raise ProtobufError("varint longer than 10 bytes")


def iter_fields(
    data: bytes, *, max_fields: int = 4096, fixed: bool = False
) -> Iterator[tuple[int, int, int | bytes]]:
    """Yields ``(field number, wire type, value)``: an int for varints, bytes for
    length-delimited fields. Fixed-width fields are skipped (yielded as little-endian ints
    when ``fixed``, for AutoNAT v2's fixed64 nonce); groups are refused."""
    view = memoryview(data)
    pos = 0
    count = 0
    while pos < len(view):
        count += 1
        if count > max_fields:
            raise ProtobufError(f"more than {max_fields} fields")
        key, pos = read_varint(view, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == 0:
            value, pos = read_varint(view, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = read_varint(view, pos)
            end = pos + length
            if end > len(view):
                raise ProtobufError("length-delimited field past the end")
            yield number, wire, bytes(view[pos:end])
            pos = end
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(view):
                raise ProtobufError("fixed-width field past the end")
            if fixed:
                yield number, wire, int.from_bytes(view[pos : pos + width], "little")
            pos += width
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    """One varint field (``value`` >= 0)."""
    if value < 0:
        raise ValueError("negative varint")
    return _varint(number << 3) + _varint(value)


def field_bytes(number: int, value: bytes) -> bytes:
    """One length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def field_fixed64(number: int, value: int) -> bytes:
    """One fixed64 field (``0 <= value < 2**64``)."""
    return _varint(number << 3 | 1) + value.to_bytes(8, "little")
