"""``/plaintext/2.0.0``: identities exchanged in the clear, NO encryption.

Only for tests and trusted links; the host offers it only when ``HostConfig.enable_plaintext``
is set. Each side sends one varint-length-prefixed ``Exchange { bytes id = 1;
PublicKey pubkey = 2; }`` and checks that the remote's ``id`` is the peer ID of its key.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rapidp2p import _core
from rapidp2p.exceptions import DecodeError, HandshakeError, PeerIdMismatch
from rapidp2p.security.noise import ByteStream, SecureSession

if TYPE_CHECKING:
    from rapidp2p.crypto import PrivateKey
    from rapidp2p.peer import PeerId

__all__ = ["PLAINTEXT_PROTOCOL_ID", "decode_exchange", "encode_exchange", "plaintext_handshake"]

PLAINTEXT_PROTOCOL_ID = "/plaintext/2.0.0"
MAX_EXCHANGE = 4096


def _field(number: int, value: bytes) -> bytes:
    out: bytes = _core.varint_encode(number << 3 | 2) + _core.varint_encode(len(value)) + value
    return out


def encode_exchange(peer_id: bytes, public_key_pb: bytes) -> bytes:
    return _field(1, peer_id) + _field(2, public_key_pb)


def decode_exchange(data: bytes) -> tuple[bytes, bytes]:
    """Returns (id, pubkey protobuf); both fields are required."""
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        tag, used = _core.varint_decode(data[pos:])
        pos += used
        if tag & 7 != 2:
            raise DecodeError("plaintext Exchange: unexpected wire type")
        size, used = _core.varint_decode(data[pos:])
        pos += used
        if pos + size > len(data):
            raise DecodeError("plaintext Exchange: truncated field")
        fields[tag >> 3] = data[pos : pos + size]
        pos += size
    if 1 not in fields or 2 not in fields:
        raise DecodeError("plaintext Exchange: missing id or pubkey")
    return fields[1], fields[2]


async def _read_varint_message(stream: ByteStream) -> bytes:
    prefix = b""
    while True:
        b = await stream.readexactly(1)
        prefix += b
        if not b[0] & 0x80:
            break
        if len(prefix) > 9:
            raise HandshakeError("plaintext: bad length prefix")
    size, _ = _core.varint_decode(prefix)
    if size > MAX_EXCHANGE:
        raise HandshakeError("plaintext: Exchange message too large")
    return await stream.readexactly(size)


async def plaintext_handshake(
    stream: ByteStream, key: PrivateKey, expected_peer: PeerId | None = None
) -> SecureSession:
    """Sends our Exchange, reads theirs, checks the peer ID against the key."""
    from rapidp2p.crypto import public_key_from_protobuf
    from rapidp2p.peer import PeerId

    pub = key.public_key()
    msg = encode_exchange(PeerId.from_public_key(pub).to_bytes(), pub.to_protobuf())
    stream.write(_core.varint_encode(len(msg)) + msg)
    await stream.drain()
    try:
        raw_id, key_pb = decode_exchange(await _read_varint_message(stream))
        remote_key = public_key_from_protobuf(key_pb)
        peer = PeerId.from_bytes(raw_id)
    except asyncio.IncompleteReadError as exc:
        raise HandshakeError("connection closed during the plaintext exchange") from exc
    except DecodeError as exc:
        raise HandshakeError(f"plaintext: {exc}") from exc
    if PeerId.from_public_key(remote_key) != peer:
        raise HandshakeError("plaintext: peer ID does not match the public key")
    if expected_peer is not None and peer != expected_peer:
        raise PeerIdMismatch(f"dialed {expected_peer}, but the remote proved to be {peer}")
    return SecureSession(peer, remote_key, None, None, PLAINTEXT_PROTOCOL_ID)
