"""ROBUSTNESS 6-8 and 11 at the libp2p Noise layer (``rapidp2p.security.noise``).

A hand-driven ``_core.conn.NoiseHandshake`` plays the hostile side, so each test controls exactly
which bytes the library under test receives: truncated messages, bad identity payloads, a
peer that proves another identity, and data the library must not act on before verifying.
"""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rapidp2p import _core
from rapidp2p.crypto import PrivateKey, generate_keypair
from rapidp2p.exceptions import HandshakeError, PeerIdMismatch
from rapidp2p.peer import PeerId
from rapidp2p.protocols.memory import MemoryStream, memory_stream_pair
from rapidp2p.security import noise
from rapidp2p.security.noise import SIGNATURE_PREFIX, noise_inbound, noise_outbound

MUXERS = ["/yamux/1.0.0"]


def framed(message: bytes) -> bytes:
    return len(message).to_bytes(2, "big") + message


async def read_framed(stream: MemoryStream) -> bytes:
    size = int.from_bytes(await stream.readexactly(2), "big")
    return await stream.readexactly(size)


def signed_payload(key: PrivateKey, static: bytes, muxers: list[str] | None = None) -> bytes:
    sig = key.sign(SIGNATURE_PREFIX + static)
    return bytes(
        _core.proto.encode_noise_payload(key.public_key().to_protobuf(), sig, muxers or [])
    )


def fake_rsa_key_protobuf(bits: int) -> bytes:
    """An RSA public key protobuf of exactly ``bits`` bits (no primes needed)."""
    spki = (
        rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 1)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return bytes(_core.wire.encode_key_protobuf(0, spki))


# ---- 6: truncated handshake messages ---------------------------------------------------------


@pytest.mark.parametrize("sent", [b"", b"\x00", b"\x00\x20" + bytes(10)])
async def test_6_eof_inside_a_handshake_message_fails_the_handshake(sent: bytes) -> None:
    a, b = memory_stream_pair()
    a.write(sent)
    a.close()
    with pytest.raises(HandshakeError, match="closed during"):
        await noise_inbound(b, generate_keypair(), MUXERS)


async def test_6_truncated_message_2_fails_the_initiator() -> None:
    a, b = memory_stream_pair()
    dial = asyncio.ensure_future(noise_outbound(a, generate_keypair(), None, MUXERS))
    responder = _core.conn.NoiseHandshake(False)
    responder.read_message(await read_framed(b))
    msg2 = responder.write_message(signed_payload(generate_keypair(), b"x" * 32))
    b.write(framed(msg2[: len(msg2) // 2]))  # a well-framed but cut message
    with pytest.raises(HandshakeError):
        await dial
    assert a.bytes_written == 2 + 32, "only message 1 was sent: nothing after the failure"


# ---- 7: bad identity payloads ------------------------------------------------------------------


def _bad_payload_cases() -> list[tuple[str, bytes, str]]:
    key = generate_keypair()
    static = bytes(32)
    pub = key.public_key().to_protobuf()
    good_sig = key.sign(SIGNATURE_PREFIX + static)
    ed_data = pub[4:]
    return [
        ("undecodable payload", b"\xff\xff\xff", "undecodable"),
        ("no signature", bytes(_core.proto.encode_noise_payload(pub, b"")), "without"),
        ("bad signature", bytes(_core.proto.encode_noise_payload(pub, b"\x01" * 64)), "signature"),
        (
            "signature over another static key",
            bytes(_core.proto.encode_noise_payload(pub, key.sign(SIGNATURE_PREFIX + b"\x01" * 32))),
            "signature",
        ),
        (
            "undecodable key",
            bytes(_core.proto.encode_noise_payload(b"\x08\x01\x12", good_sig)),
            "bad identity key",
        ),
        (
            "unknown key type",
            bytes(_core.proto.encode_noise_payload(b"\x08\x04\x12\x20" + ed_data, good_sig)),
            "bad identity key",
        ),
        (
            "RSA 1024 bits",
            bytes(_core.proto.encode_noise_payload(fake_rsa_key_protobuf(1024), good_sig)),
            "bad identity key.*1024 bits",
        ),
        (
            "RSA 8193 bits",
            bytes(_core.proto.encode_noise_payload(fake_rsa_key_protobuf(8193), good_sig)),
            "bad identity key.*8193 bits",
        ),
        (
            "RSA 16384 bits",
            bytes(_core.proto.encode_noise_payload(fake_rsa_key_protobuf(16384), good_sig)),
            "too large",
        ),
    ]


@pytest.mark.parametrize(
    ("payload", "match"),
    [pytest.param(p, m, id=name) for name, p, m in _bad_payload_cases()],
)
def test_7_bad_identity_payload_is_a_handshake_error(payload: bytes, match: str) -> None:
    # The RSA cases prove the size check runs before any verification: a verify would have
    # failed with "bad Noise identity signature" instead.
    with pytest.raises(HandshakeError, match=match):
        noise._verify_payload(payload, bytes(32))


async def test_7_bad_signature_in_message_3_terminates_the_responder() -> None:
    a, b = memory_stream_pair()
    listen = asyncio.ensure_future(noise_inbound(b, generate_keypair(), MUXERS))
    initiator = _core.conn.NoiseHandshake(True)
    a.write(framed(initiator.write_message(b"")))
    initiator.read_message(await read_framed(a))
    key = generate_keypair()
    forged = bytes(_core.proto.encode_noise_payload(key.public_key().to_protobuf(), b"\x00" * 64))
    a.write(framed(initiator.write_message(forged)))
    with pytest.raises(HandshakeError, match="signature"):
        await listen


# ---- 8: the remote proves another peer ID ------------------------------------------------------


async def test_8_peer_id_mismatch_before_we_reveal_our_identity() -> None:
    a, b = memory_stream_pair()
    expected = PeerId.from_public_key(generate_keypair().public_key())
    dial = asyncio.ensure_future(noise_outbound(a, generate_keypair(), expected, MUXERS))
    responder = _core.conn.NoiseHandshake(False)
    responder.read_message(await read_framed(b))
    actual = generate_keypair()
    b.write(framed(responder.write_message(signed_payload(actual, responder.local_static_public))))
    with pytest.raises(PeerIdMismatch, match=str(PeerId.from_public_key(actual.public_key()))):
        await dial
    assert a.bytes_written == 2 + 32, "message 3 (our identity) was never sent"


# ---- 11: message 1 extensions and early data are not acted upon --------------------------------


async def _run_with_message_1_payload(
    msg1_payload: bytes, msg3_muxers: list[str], trailing: bytes
) -> tuple[noise.SecureSession, MemoryStream]:
    a, b = memory_stream_pair()
    listen = asyncio.ensure_future(
        noise_inbound(b, generate_keypair(), ["/yamux/1.0.0", "/evil/1.0.0"])
    )
    key = generate_keypair()
    initiator = _core.conn.NoiseHandshake(True)
    a.write(framed(initiator.write_message(msg1_payload)))
    initiator.read_message(await read_framed(a))
    ours = signed_payload(key, initiator.local_static_public, msg3_muxers)
    a.write(framed(initiator.write_message(ours)) + trailing)
    session = await listen
    assert session.remote_peer == PeerId.from_public_key(key.public_key())
    return session, b


async def test_11_extensions_in_message_1_are_ignored() -> None:
    # Message 1 is not authenticated: a muxer list there must not steer the choice.
    unauthenticated = bytes(_core.proto.encode_noise_payload(b"k", b"s", ["/evil/1.0.0"]))
    session, _ = await _run_with_message_1_payload(unauthenticated, ["/yamux/1.0.0"], b"")
    assert session.early_muxer == "/yamux/1.0.0"
    session, _ = await _run_with_message_1_payload(unauthenticated, [], b"")
    assert session.early_muxer is None


async def test_11_early_data_is_left_unread_by_the_handshake() -> None:
    session, rest = await _run_with_message_1_payload(b"", MUXERS, b"early muxer bytes")
    assert session.early_muxer == "/yamux/1.0.0"
    assert await rest.read() == b"early muxer bytes"
