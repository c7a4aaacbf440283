"""``/plaintext/2.0.0``: identities exchanged in the clear, NO encryption.

Only for tests and trusted links; the host offers it only when ``HostConfig.enable_plaintext``
is set. Each side sends one varint-length-prefixed ``Exchange { bytes id = 1;
PublicKey pubkey = 2; }`` and checks that the remote's ``id`` is the peer ID of its key. The
message is encoded and decoded by the Rust ``proto`` crate; the framing is
:mod:`rapidp2p.protocols.framing`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rapidp2p._core import proto as _proto
from rapidp2p.exceptions import DecodeError, HandshakeError, PeerIdMismatch, UnexpectedEOF
from rapidp2p.protocols.framing import ByteStream, encode_delimited, read_delimited
from rapidp2p.security.noise import SecureSession

if TYPE_CHECKING:
    from rapidp2p.crypto import PrivateKey
    from rapidp2p.peer import PeerId

__all__ = ["PLAINTEXT_PROTOCOL_ID", "decode_exchange", "encode_exchange", "plaintext_handshake"]

PLAINTEXT_PROTOCOL_ID = "/plaintext/2.0.0"
MAX_EXCHANGE = _proto.MAX_PLAINTEXT_EXCHANGE_SIZE


def encode_exchange(peer_id: bytes, public_key_pb: bytes) -> bytes:
    """The Exchange protobuf of our peer ID bytes and encoded PublicKey."""
    return _proto.encode_plaintext_exchange(peer_id, public_key_pb)


def decode_exchange(data: bytes) -> tuple[bytes, bytes]:
    """Returns (id, pubkey protobuf); both fields are required (ProtobufError otherwise)."""
    return _proto.decode_plaintext_exchange(data)


async def plaintext_handshake(
    stream: ByteStream, key: PrivateKey, expected_peer: PeerId | None = None
) -> SecureSession:
    """Sends our Exchange, reads theirs, checks the peer ID against the key."""
    from rapidp2p.crypto import public_key_from_protobuf
    from rapidp2p.peer import PeerId

    pub = key.public_key()
    stream.write(
        encode_delimited(encode_exchange(PeerId.from_public_key(pub).to_bytes(), pub.to_protobuf()))
    )
    await stream.drain()
    try:
        msg = await read_delimited(stream, MAX_EXCHANGE)
        if msg is None:
            raise HandshakeError("connection closed during the plaintext exchange")
        raw_id, key_pb = decode_exchange(msg)
        remote_key = public_key_from_protobuf(key_pb)
        peer = PeerId.from_bytes(raw_id)
    except UnexpectedEOF as exc:
        raise HandshakeError("connection closed during the plaintext exchange") from exc
    except DecodeError as exc:
        raise HandshakeError(f"plaintext: {exc}") from exc
    if PeerId.from_public_key(remote_key) != peer:
        raise HandshakeError("plaintext: peer ID does not match the public key")
    if expected_peer is not None and peer != expected_peer:
        raise PeerIdMismatch(f"dialed {expected_peer}, but the remote proved to be {peer}")
    return SecureSession(peer, remote_key, None, None, PLAINTEXT_PROTOCOL_ID)
