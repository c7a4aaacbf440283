"""The libp2p TLS 1.3 handshake (``/tls/1.0.0``, libp2p/specs ``tls/tls.md``) over a byte stream.

The TLS state machine, the certificate checks and the identity-signature verification are Rust
(``_core.conn.TlsHandshake``; rustls on ring, the four key types verified in Rust because rustls
calls the verifier in the middle of the handshake); this module moves whole TLS records
between the stream and Rust and builds our certificate once per identity key: Rust makes the
certificate key, the identity key (``cryptography``) signs ``"libp2p-tls-handshake:" + SPKI``,
Rust builds the self-signed certificate with the libp2p extension.

Records are read one at a time (5-byte header, then the body), so the handshake never reads
past its last record: whatever the peer sent after it stays in the connection's buffer for
the record layer that takes over under the muxer.

Early muxer negotiation: ``/yamux/1.0.0`` goes into the ALPN list before ``libp2p``; when both
sides list it, ALPN settles the muxer and no multistream-select runs inside TLS.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rapidp2p import _core
from rapidp2p.exceptions import DecodeError, HandshakeError, Libp2pError
from rapidp2p.security.noise import HandshakeStream, SecureSession

if TYPE_CHECKING:
    from rapidp2p.crypto import PrivateKey
    from rapidp2p.peer import PeerId

__all__ = ["TLS_PROTOCOL_ID", "TlsIdentity", "tls_inbound", "tls_outbound"]

TLS_PROTOCOL_ID = "/tls/1.0.0"
#: RFC 8446 5.1/5.2: a record body is at most 2^14 + 256 bytes.
MAX_RECORD_BODY = 16384 + 256
#: A handshake longer than this many records is abandoned (a real one takes fewer than 10).
MAX_HANDSHAKE_RECORDS = 64


class TlsIdentity:
    """One local identity's certificate (made once, shared by every TLS handshake, like
    go- and rust-libp2p's per-host TLS config)."""

    __slots__ = ("identity", "key")

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        cert_key = _core.conn.TlsCertKey()
        signature = key.sign(cert_key.message_to_sign)
        self.identity = cert_key.certify(key.public_key().to_protobuf(), signature)

    def new_handshake(
        self, initiator: bool, expected: PeerId | None, muxers: list[str]
    ) -> _core.conn.TlsHandshake:
        peer = None if expected is None else expected.to_bytes()
        return _core.conn.TlsHandshake(self.identity, initiator, peer, list(muxers))


async def _read_record(stream: HandshakeStream) -> bytes:
    try:
        header = await stream.readexactly(5)
        size = int.from_bytes(header[3:5], "big")
        if size > MAX_RECORD_BODY:
            raise HandshakeError(f"TLS record of {size} bytes during the handshake")
        return header + await stream.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise HandshakeError("connection closed during the TLS handshake") from exc


async def _run(stream: HandshakeStream, hs: _core.conn.TlsHandshake) -> SecureSession:
    for _ in range(MAX_HANDSHAKE_RECORDS):
        out = hs.data_to_send()
        if out:
            stream.write(out)
            await stream.drain()
        if hs.is_finished:
            return _session(hs)
        record = await _read_record(stream)
        try:
            hs.receive(record)
        except Libp2pError:
            alert = hs.data_to_send()  # tell the peer why, best effort
            if alert:
                stream.write(alert)
            raise
    raise HandshakeError(f"TLS handshake not finished after {MAX_HANDSHAKE_RECORDS} records")


def _session(hs: _core.conn.TlsHandshake) -> SecureSession:
    from rapidp2p.crypto import public_key_from_protobuf
    from rapidp2p.peer import PeerId

    if hs.take_early_data():
        raise HandshakeError("application data inside the TLS handshake")
    peer_bytes, key_pb, muxer = hs.remote()
    try:
        remote_key = public_key_from_protobuf(bytes(key_pb))
    except DecodeError as exc:  # Rust verified it; Python may support fewer key forms
        raise HandshakeError(f"identity key in the certificate: {exc}") from exc
    peer = PeerId.from_bytes(bytes(peer_bytes))
    return SecureSession(peer, remote_key, hs, muxer, protocol=TLS_PROTOCOL_ID)


async def tls_outbound(
    stream: HandshakeStream,
    identity: TlsIdentity,
    expected_peer: PeerId | None = None,
    muxers: list[str] | None = None,
) -> SecureSession:
    """Runs the handshake as the client; raises :class:`PeerIdMismatch` when the remote is not
    ``expected_peer`` and :class:`CertificateError` when its certificate is refused."""
    return await _run(stream, identity.new_handshake(True, expected_peer, list(muxers or [])))


async def tls_inbound(
    stream: HandshakeStream, identity: TlsIdentity, muxers: list[str] | None = None
) -> SecureSession:
    """Runs the handshake as the server (a client certificate is required)."""
    return await _run(stream, identity.new_handshake(False, None, list(muxers or [])))
