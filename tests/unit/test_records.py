"""Signed envelopes and peer records (RFC 0002 / 0003; ROBUSTNESS 26)."""

from __future__ import annotations

import pytest

from rapidp2p import _core
from rapidp2p.crypto import KeyType, PrivateKey, generate_keypair
from rapidp2p.exceptions import DecodeError, ProtobufError, RecordError, SignatureError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.records import (
    PEER_RECORD_DOMAIN,
    PEER_RECORD_PAYLOAD_TYPE,
    Envelope,
    PeerRecord,
    signing_buffer,
)

ADDRS = (Multiaddr("/ip4/1.2.3.4/tcp/4001"), Multiaddr("/ip6/::1/udp/4001/quic-v1"))


@pytest.fixture(params=[KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA])
def key(request: pytest.FixtureRequest) -> PrivateKey:
    return generate_keypair(request.param)


def test_seal_open_roundtrip(key: PrivateKey) -> None:
    pid = PeerId.from_public_key(key.public_key())
    env = Envelope.seal(key, PeerRecord(pid, 42, ADDRS))
    opened, record = Envelope.open(env.raw, PEER_RECORD_DOMAIN)
    assert isinstance(record, PeerRecord)
    assert record == PeerRecord(pid, 42, ADDRS)
    assert opened.public_key == key.public_key()
    assert opened.payload_type == PEER_RECORD_PAYLOAD_TYPE == b"\x03\x01"
    assert opened == env


def test_signature_covers_domain_separated_buffer(key: PrivateKey) -> None:
    pid = PeerId.from_public_key(key.public_key())
    env = Envelope.seal(key, PeerRecord(pid, 1, ADDRS))
    buf = signing_buffer(PEER_RECORD_DOMAIN, b"\x03\x01", env.payload)
    assert buf.startswith(b"\x12libp2p-peer-record\x02\x03\x01")
    assert key.public_key().verify(buf, env.signature)


def _tampered(env: Envelope, **fields: bytes) -> bytes:
    parts = {
        "public_key": env.public_key.to_protobuf(),
        "payload_type": env.payload_type,
        "payload": env.payload,
        "signature": env.signature,
    }
    parts.update(fields)
    return _core.proto.encode_envelope(**parts)


def test_wrong_domain_altered_type_or_payload_rejected() -> None:
    key = generate_keypair()
    pid = PeerId.from_public_key(key.public_key())
    env = Envelope.seal(key, PeerRecord(pid, 1, ADDRS))
    with pytest.raises(SignatureError):
        Envelope.open(env.raw, "libp2p-routing-state")
    with pytest.raises(SignatureError):
        Envelope.open(_tampered(env, payload_type=b"\x03\x02"), PEER_RECORD_DOMAIN)
    altered = _core.proto.encode_peer_record(pid.to_bytes(), 2, [a.to_bytes() for a in ADDRS])
    with pytest.raises(SignatureError):
        Envelope.open(_tampered(env, payload=altered), PEER_RECORD_DOMAIN)
    other = generate_keypair()
    with pytest.raises(SignatureError):
        Envelope.open(
            _tampered(env, public_key=other.public_key().to_protobuf()), PEER_RECORD_DOMAIN
        )


def test_record_for_another_peer_rejected() -> None:
    key, victim = generate_keypair(), generate_keypair()
    victim_id = PeerId.from_public_key(victim.public_key())
    env = Envelope.seal(key, PeerRecord(victim_id, 1, ADDRS))
    with pytest.raises(RecordError, match="another peer"):
        Envelope.open(env.raw, PEER_RECORD_DOMAIN)


def test_unknown_payload_type_rejected_after_verification() -> None:
    key = generate_keypair()
    payload = b"opaque"
    sig = key.sign(signing_buffer(PEER_RECORD_DOMAIN, b"\x99\x01", payload))
    raw = _core.proto.encode_envelope(key.public_key().to_protobuf(), b"\x99\x01", payload, sig)
    with pytest.raises(RecordError, match="payload type"):
        Envelope.open(raw, PEER_RECORD_DOMAIN)
    opened = Envelope.open_unchecked_payload(raw, PEER_RECORD_DOMAIN)
    assert opened.payload == payload


def test_payload_not_decoded_before_verification() -> None:
    """A garbage payload with a bad signature fails on the signature, not the decoder."""
    key = generate_keypair()
    raw = _core.proto.encode_envelope(
        key.public_key().to_protobuf(), b"\x03\x01", b"\xff\xff", b"x"
    )
    with pytest.raises(SignatureError):
        Envelope.open(raw, PEER_RECORD_DOMAIN)


@pytest.mark.parametrize("data", [b"", b"\x0a\x05abc", b"\xff" * 10])
def test_garbage_envelopes_raise_decode_errors(data: bytes) -> None:
    with pytest.raises((ProtobufError, DecodeError)):
        Envelope.open(data, PEER_RECORD_DOMAIN)


def test_peer_record_create_uses_increasing_seq() -> None:
    pid = PeerId.from_public_key(generate_keypair().public_key())
    a = PeerRecord.create(pid, ADDRS)
    b = PeerRecord.create(pid, ADDRS)
    assert b.seq >= a.seq > 0
    assert PeerRecord.unmarshal(a.marshal()) == a


# Sealed by py-libp2p 0.8.1 (Ed25519 key, seq 77, one address); checks wire compatibility.
PY_LIBP2P_ENVELOPE = bytes.fromhex(
    "0a2408011220b34843d752bee42d2bbd7bbc289a6741685b99e6af60df119563c77550c4ac64120203011a36"
    "0a26002408011220b34843d752bee42d2bbd7bbc289a6741685b99e6af60df119563c77550c4ac64104d1a0a"
    "0a080401020304060fa12a404bcf5cf233ff17e0f0f6bb4b3e3add22d94c4881175946ebae38e98090196506"
    "a2acf9c6b95fa71450be36f26ee3f6e9627dedbde8cca21fc1a5029f5f45b900"
)


def test_opens_envelope_sealed_by_py_libp2p() -> None:
    envelope, record = PeerRecord.open_envelope(PY_LIBP2P_ENVELOPE)
    assert str(record.peer_id) == "12D3KooWMtD4LC78cckox83kmqU2poe6DnHixkjQpE3nDSwqEYXu"
    assert record.seq == 77
    assert record.addrs == (Multiaddr("/ip4/1.2.3.4/tcp/4001"),)
    assert envelope.raw == PY_LIBP2P_ENVELOPE
    flipped = bytearray(PY_LIBP2P_ENVELOPE)
    flipped[-1] ^= 1
    with pytest.raises(SignatureError):
        PeerRecord.open_envelope(bytes(flipped))
