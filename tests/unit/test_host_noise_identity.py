"""NoiseIdentity: one static key and one signed payload per host; the verified-payload cache."""

from __future__ import annotations

import asyncio

import pytest

from rapidp2p import _core
from rapidp2p.crypto import Ed25519PrivateKey, PrivateKey, PublicKey, generate_keypair
from rapidp2p.exceptions import HandshakeError
from rapidp2p.peer import PeerId
from rapidp2p.protocols.memory import memory_stream_pair
from rapidp2p.security import noise
from rapidp2p.security.noise import NoiseIdentity, noise_inbound, noise_outbound

MUXERS = ["/yamux/1.0.0"]


class CountingKey(PrivateKey):
    """Wraps a key and counts signatures."""

    key_type = Ed25519PrivateKey.key_type

    def __init__(self, inner: PrivateKey) -> None:
        self.inner = inner
        self.signed = 0

    def public_key(self) -> PublicKey:
        return self.inner.public_key()

    def sign(self, data: bytes) -> bytes:
        self.signed += 1
        return self.inner.sign(data)

    def raw(self) -> bytes:
        return self.inner.raw()


async def _handshake(
    a_key: PrivateKey, b_key: PrivateKey, a: NoiseIdentity | None, b: NoiseIdentity | None
) -> tuple[noise.SecureSession, noise.SecureSession]:
    x, y = memory_stream_pair()
    out, inn = await asyncio.gather(
        noise_outbound(x, a_key, None, MUXERS, identity=a),
        noise_inbound(y, b_key, MUXERS, identity=b),
    )
    return out, inn


async def test_identity_reuses_static_key_and_signs_once() -> None:
    ka, kb = CountingKey(generate_keypair()), CountingKey(generate_keypair())
    ia, ib = NoiseIdentity(ka), NoiseIdentity(kb)
    for _ in range(3):
        out, inn = await _handshake(ka, kb, ia, ib)
        assert out.remote_peer == PeerId.from_public_key(kb.public_key())
        assert inn.remote_peer == PeerId.from_public_key(ka.public_key())
        assert out.early_muxer == inn.early_muxer == MUXERS[0]
        assert bytes(out.handshake.local_static_public) == ia.static_public
        assert bytes(inn.handshake.remote_static_public) == ia.static_public
        assert bytes(out.handshake.remote_static_public) == ib.static_public
    assert ka.signed == 1 and kb.signed == 1


async def test_identity_and_plain_handshakes_interwork() -> None:
    ka, kb = generate_keypair(), generate_keypair()
    out, inn = await _handshake(ka, kb, NoiseIdentity(ka), None)
    assert inn.remote_peer == PeerId.from_public_key(ka.public_key())
    out, inn = await _handshake(ka, kb, None, NoiseIdentity(kb))
    assert out.remote_peer == PeerId.from_public_key(kb.public_key())


def test_identity_static_public_matches_secret() -> None:
    secret = bytes(range(32))
    ident = NoiseIdentity(generate_keypair(), secret)
    assert ident.static_public == bytes(
        _core.conn.NoiseHandshake(False, secret).local_static_public
    )
    assert ident.payload(MUXERS) is ident.payload(list(MUXERS))


def test_verified_cache_never_accepts_another_signature_or_static_key() -> None:
    key = generate_keypair()
    static = NoiseIdentity(key).static_public
    good = _core.proto.encode_noise_payload(
        key.public_key().to_protobuf(), key.sign(noise.SIGNATURE_PREFIX + static), MUXERS
    )
    peer, _, muxers = noise._verify_payload(good, static)
    assert peer == PeerId.from_public_key(key.public_key()) and muxers == MUXERS
    assert noise._verify_payload(good, static)[0] == peer  # from the cache
    other_static = NoiseIdentity(key).static_public
    with pytest.raises(HandshakeError, match="signature"):
        noise._verify_payload(good, other_static)  # same payload, another static key
    forged = _core.proto.encode_noise_payload(key.public_key().to_protobuf(), b"\x00" * 64, MUXERS)
    with pytest.raises(HandshakeError, match="signature"):
        noise._verify_payload(forged, static)


def test_verified_cache_is_bounded() -> None:
    key = generate_keypair()
    for _ in range(noise.VERIFIED_CACHE_SIZE + 5):
        static = NoiseIdentity(key).static_public
        payload = _core.proto.encode_noise_payload(
            key.public_key().to_protobuf(), key.sign(noise.SIGNATURE_PREFIX + static), []
        )
        noise._verify_payload(payload, static)
    assert len(noise._verified) <= noise.VERIFIED_CACHE_SIZE
