"""The libp2p Noise handshake (``/noise``): XX over 2-byte length frames + the libp2p payload.

The Noise state machine (``_core.conn.NoiseHandshake``) is Rust; this module moves its messages
over a :class:`HandshakeStream`, builds our NoiseHandshakePayload (identity key protobuf and a
signature over ``"noise-libp2p-static-key:" + static key``) and checks the remote's: the
signature must verify against the identity key and the static key the Noise state proved,
and the peer ID derived from that key must be the one the dialer expected.

Early muxer negotiation: the responder lists its muxers in message 2 and the initiator in
message 3; the muxer is the first of the initiator's list the responder also offers. The
extensions in message 1 are never read (nothing there is authenticated yet).

Per-connection cost: a :class:`NoiseIdentity` (one per host, as rust-libp2p's ``noise::Config``)
keeps one x25519 static key and our signed payload per muxer list, so a handshake signs
nothing; forward secrecy comes from the ephemeral keys, which stay per handshake. A remote's
payload that verified once (same identity key, static key and signature) is remembered in a
bounded cache, so a peer that reconnects costs no second signature check.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from rapidp2p import _core
from rapidp2p.exceptions import CertificateError, DecodeError, HandshakeError, PeerIdMismatch

if TYPE_CHECKING:
    from rapidp2p.crypto import PrivateKey, PublicKey
    from rapidp2p.peer import PeerId

__all__ = [
    "NOISE_PROTOCOL_ID",
    "SIGNATURE_PREFIX",
    "HandshakeStream",
    "NoiseIdentity",
    "SecureSession",
    "noise_inbound",
    "noise_outbound",
    "select_early_muxer",
    "verify_identity",
]

NOISE_PROTOCOL_ID = "/noise"
SIGNATURE_PREFIX = b"noise-libp2p-static-key:"
#: A Noise message can never exceed this (the 2-byte length prefix).
MAX_NOISE_MESSAGE = 65535
#: An identity key protobuf larger than this is refused before any parsing (RSA 8192 is ~1.1 KB).
MAX_IDENTITY_KEY = 2048
#: Remote payloads remembered as verified (identity key, static key, signature).
VERIFIED_CACHE_SIZE = 512


class HandshakeStream(Protocol):
    """What a security handshake (Noise, TLS) needs from the raw connection before it is
    secured: ``readexactly`` (``asyncio.StreamReader``'s), not the ``read`` of
    :class:`rapidp2p.protocols.framing.ByteStream`, which protocol code uses on streams."""

    async def readexactly(self, n: int) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


@dataclass
class SecureSession:
    """A finished handshake: who the remote is, plus the Noise state for the connection."""

    remote_peer: PeerId
    remote_key: PublicKey
    handshake: Any  # _core.conn.NoiseHandshake (finished) or None for plaintext
    early_muxer: str | None
    protocol: str = NOISE_PROTOCOL_ID


def select_early_muxer(initiator: list[str], responder: list[str]) -> str | None:
    """The first muxer of the initiator's list the responder also supports."""
    for name in initiator:
        if name in responder:
            return name
    return None


async def _read_message(stream: HandshakeStream) -> bytes:
    try:
        header = await stream.readexactly(2)
        size = int.from_bytes(header, "big")
        return await stream.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise HandshakeError("connection closed during the Noise handshake") from exc


async def _write_message(stream: HandshakeStream, message: bytes) -> None:
    if len(message) > MAX_NOISE_MESSAGE:
        raise HandshakeError("Noise handshake message too large")
    stream.write(len(message).to_bytes(2, "big") + message)
    await stream.drain()


def _payload(key: PrivateKey, static_public: bytes, muxers: list[str]) -> bytes:
    signature = key.sign(SIGNATURE_PREFIX + static_public)
    out: bytes = _core.proto.encode_noise_payload(key.public_key().to_protobuf(), signature, muxers)
    return out


class NoiseIdentity:
    """One local identity's Noise static key and its signed handshake payloads, reused by
    every handshake (the signature binds the static key to the identity key, so it only
    changes with the static key)."""

    __slots__ = ("_payloads", "key", "static_public", "static_secret")

    def __init__(self, key: PrivateKey, static_secret: bytes | None = None) -> None:
        self.key = key
        self.static_secret = static_secret if static_secret is not None else os.urandom(32)
        self.static_public: bytes = bytes(
            _core.conn.NoiseHandshake(True, self.static_secret).local_static_public
        )
        self._payloads: dict[tuple[str, ...], bytes] = {}

    def payload(
        self, muxers: list[str], webtransport_certhashes: list[bytes] | None = None
    ) -> bytes:
        """Our NoiseHandshakePayload listing ``muxers`` (signed once per list) and, for a
        WebTransport listener, its certificate hashes in the NoiseExtensions."""
        if webtransport_certhashes:
            signature = self.key.sign(SIGNATURE_PREFIX + self.static_public)
            out_wt: bytes = _core.proto.encode_noise_payload(
                self.key.public_key().to_protobuf(), signature, muxers, webtransport_certhashes
            )
            return out_wt
        wanted = tuple(muxers)
        out = self._payloads.get(wanted)
        if out is None:
            out = _payload(self.key, self.static_public, muxers)
            if len(self._payloads) < 16:
                self._payloads[wanted] = out
        return out

    def new_handshake(self, initiator: bool) -> Any:
        return _core.conn.NoiseHandshake(initiator, self.static_secret)


_verified: OrderedDict[tuple[bytes, bytes, bytes], tuple[PeerId, PublicKey]] = OrderedDict()


def _verify_payload(payload: bytes, remote_static: bytes) -> tuple[PeerId, PublicKey, list[str]]:
    """Checks the remote's payload; returns its peer ID, identity key and muxer list."""
    try:
        key_pb, sig, muxers = _core.proto.decode_noise_payload(payload)
    except DecodeError as exc:
        raise HandshakeError(f"undecodable Noise payload: {exc}") from exc
    if not key_pb or not sig:
        raise HandshakeError("Noise payload without identity key or signature")
    if len(key_pb) > MAX_IDENTITY_KEY:
        raise HandshakeError("identity key in the Noise payload is too large")
    peer, remote_key = verify_identity(bytes(key_pb), bytes(sig), bytes(remote_static))
    return peer, remote_key, [str(m) for m in muxers]


def verify_identity(key_pb: bytes, signature: bytes, static_key: bytes) -> tuple[PeerId, PublicKey]:
    """The remote's identity key ``key_pb`` (a PublicKey protobuf) signed its Noise static
    key: returns its peer ID and key, or raises HandshakeError. Remembered in a bounded cache,
    so a peer that reconnects costs no second check. Also answers the Rust upgrade's
    EV_VERIFY (see ``host/upgrader.py``)."""
    from rapidp2p.crypto import public_key_from_protobuf
    from rapidp2p.peer import PeerId

    memo = (key_pb, static_key, signature)
    known = _verified.get(memo)
    if known is not None:
        _verified.move_to_end(memo)
        return known
    try:
        remote_key = public_key_from_protobuf(memo[0])
    except DecodeError as exc:
        raise HandshakeError(f"bad identity key in the Noise payload: {exc}") from exc
    try:
        ok = remote_key.verify(SIGNATURE_PREFIX + memo[1], memo[2])
    except Exception as exc:
        raise HandshakeError(f"Noise identity signature check failed: {exc}") from exc
    if not ok:
        raise HandshakeError("bad Noise identity signature")
    peer = PeerId.from_public_key(remote_key)
    _verified[memo] = (peer, remote_key)
    if len(_verified) > VERIFIED_CACHE_SIZE:
        _verified.popitem(last=False)
    return peer, remote_key


def _new_handshake(initiator: bool) -> Any:
    return _core.conn.NoiseHandshake(initiator)


async def noise_outbound(
    stream: HandshakeStream,
    key: PrivateKey,
    expected_peer: PeerId | None = None,
    muxers: list[str] | None = None,
    *,
    identity: NoiseIdentity | None = None,
    webtransport_certhash: bytes | None = None,
) -> SecureSession:
    """Runs XX as the initiator; raises :class:`PeerIdMismatch` if the remote is not
    ``expected_peer``. ``identity`` (for ``key``) reuses its static key and signed payload.

    ``webtransport_certhash``: a WebTransport dial's, the multihash of the certificate the
    server presented. Per libp2p/specs ``webtransport/README.md`` a client that knows which
    certificate was used checks that its hash is among the ``webtransport_certhashes`` of
    the responder's (signed, encrypted) message 2, so a man in the middle with another
    certificate cannot relay the handshake; otherwise :class:`CertificateError`, before
    message 3 goes out."""
    local_muxers = list(muxers or [])
    hs = _new_handshake(True) if identity is None else identity.new_handshake(True)
    await _write_message(stream, hs.write_message(b""))
    payload = hs.read_message(await _read_message(stream))
    peer, remote_key, remote_muxers = _verify_payload(payload, bytes(hs.remote_static_public))
    if expected_peer is not None and peer != expected_peer:
        raise PeerIdMismatch(f"dialed {expected_peer}, but the remote proved to be {peer}")
    if webtransport_certhash is not None:
        try:
            listed = [bytes(h) for h in _core.proto.decode_noise_certhashes(payload)]
        except DecodeError as exc:
            raise HandshakeError(f"undecodable Noise payload: {exc}") from exc
        if webtransport_certhash not in listed:
            raise CertificateError(
                "the WebTransport server's Noise extensions do not list the certificate it "
                f"presented ({len(listed)} hashes listed)"
            )
    if identity is None:
        ours = _payload(key, hs.local_static_public, local_muxers)
    else:
        ours = identity.payload(local_muxers)
    await _write_message(stream, hs.write_message(ours))
    if not hs.is_finished:
        raise HandshakeError("Noise handshake did not finish after three messages")
    return SecureSession(peer, remote_key, hs, select_early_muxer(local_muxers, remote_muxers))


async def noise_inbound(
    stream: HandshakeStream,
    key: PrivateKey,
    muxers: list[str] | None = None,
    *,
    identity: NoiseIdentity | None = None,
    webtransport_certhashes: list[bytes] | None = None,
) -> SecureSession:
    """Runs XX as the responder (``identity``: as in :func:`noise_outbound`;
    ``webtransport_certhashes``: a WebTransport listener's, sent in message 2)."""
    local_muxers = list(muxers or [])
    hs = _new_handshake(False) if identity is None else identity.new_handshake(False)
    hs.read_message(await _read_message(stream))  # message 1's payload is ignored
    if identity is None:
        ours = _payload(key, hs.local_static_public, local_muxers)
        if webtransport_certhashes:
            ours = _core.proto.encode_noise_payload(
                key.public_key().to_protobuf(),
                key.sign(SIGNATURE_PREFIX + bytes(hs.local_static_public)),
                local_muxers,
                webtransport_certhashes,
            )
    else:
        ours = identity.payload(local_muxers, webtransport_certhashes)
    await _write_message(stream, hs.write_message(ours))
    payload = hs.read_message(await _read_message(stream))
    if not hs.is_finished:
        raise HandshakeError("Noise handshake did not finish after three messages")
    peer, remote_key, remote_muxers = _verify_payload(payload, bytes(hs.remote_static_public))
    return SecureSession(peer, remote_key, hs, select_early_muxer(remote_muxers, local_muxers))
