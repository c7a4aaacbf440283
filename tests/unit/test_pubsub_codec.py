"""The pubsub RPC codec (Rust) and message signing: wire bytes, caps, signatures."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pubsub_util import Node

from rapidp2p import _core
from rapidp2p.crypto import KeyType, generate_keypair
from rapidp2p.exceptions import FrameTooLarge, ProtobufError
from rapidp2p.peer import PeerId
from rapidp2p.pubsub import Message, decode_rpc, default_message_id, sign_message, verify_message
from rapidp2p.pubsub._rpc import Outgoing


def test_subscription_wire_bytes() -> None:
    assert _core.pubsub.encode_rpc(subscriptions=[(True, "t")]) == bytes(
        [0x0A, 5, 0x08, 1, 0x12, 1, ord("t")]
    )


def test_roundtrip_every_field() -> None:
    msg = _core.pubsub.encode_message(b"\x01", b"data", b"\x00" * 8, "t", b"sig", b"key")
    frame = _core.pubsub.encode_rpc(
        subscriptions=[(True, "a"), (False, "b")],
        messages=[msg],
        ihave=[("a", [b"1", b"2"])],
        iwant=[b"3"],
        graft=["a"],
        prune=[("b", [(b"pid", None), (b"pid2", b"rec")], 2**64 - 1)],
        idontwant=[b"4"],
    )
    rpc = decode_rpc(frame, 1 << 20)
    assert rpc.subscriptions == [(True, "a"), (False, "b")]
    (m,) = rpc.messages
    assert (m.from_, m.data, m.seqno, m.topic, m.signature, m.key) == (
        b"\x01",
        b"data",
        b"\x00" * 8,
        "t",
        b"sig",
        b"key",
    )
    assert m.encoded == msg
    assert rpc.ihave == [("a", [b"1", b"2"])]
    assert rpc.iwant == [b"3"]
    assert rpc.graft == ["a"]
    assert rpc.prune == [("b", [(b"pid", None), (b"pid2", b"rec")], 2**64 - 1)]
    assert rpc.idontwant == [b"4"]


def test_absent_fields_stay_absent() -> None:
    enc = _core.pubsub.encode_message(None, None, None, "t")
    assert enc == bytes([0x22, 1, ord("t")])
    (m,) = decode_rpc(_core.pubsub.encode_rpc(messages=[enc]), 100).messages
    assert m.from_ is None and m.data is None and m.seqno is None


def test_oversize_frame_refused() -> None:
    frame = _core.pubsub.encode_rpc(subscriptions=[(True, "x" * 100)])
    with pytest.raises(FrameTooLarge):
        decode_rpc(frame, 50)


def test_garbage_is_a_protobuf_error() -> None:
    with pytest.raises(ProtobufError):
        decode_rpc(b"\x0a\xff\xff\xff\xff\x0f", 1000)


def test_excess_subscriptions_and_ids_trimmed() -> None:
    frame = _core.pubsub.encode_rpc(
        subscriptions=[(True, f"t{i}") for i in range(150)],
        ihave=[("t", [i.to_bytes(4, "big") for i in range(6000)])],
    )
    rpc = decode_rpc(frame, 1 << 20)
    assert len(rpc.subscriptions) == 100
    assert sum(len(ids) for _, ids in rpc.ihave) == 5000


@given(st.binary(max_size=300))
def test_decoder_never_panics(data: bytes) -> None:
    with contextlib.suppress(ProtobufError):
        decode_rpc(data, 1 << 20)


def test_frames_split_at_max_size() -> None:
    out = Outgoing()
    out.graft.append("t")
    out.messages.extend(_core.pubsub.encode_message(None, b"x" * 400, None, "t") for _ in range(5))
    frames = out.frames(1000)
    assert all(len(f) <= 1000 for f in frames)
    got = [m for f in frames for m in decode_rpc(f, 1000).messages]
    assert len(got) == 5
    assert decode_rpc(frames[0], 1000).graft == ["t"]


def test_sign_and_verify_ed25519() -> None:
    node = Node()
    msg = node.message("t", b"hello")
    assert msg.key is None  # Ed25519 peer IDs embed the key
    assert verify_message(msg) is None
    assert default_message_id(msg) == msg.from_ + msg.seqno  # type: ignore[operator]


def test_signing_buffer_is_prefix_plus_fields() -> None:
    buf = _core.pubsub.signing_bytes(b"\x01", b"x", b"\x02", "t")
    assert buf == b"libp2p-pubsub:" + bytes([0x0A, 1, 1, 0x12, 1, 120, 0x1A, 1, 2, 0x22, 1, 116])


def test_tampered_message_fails() -> None:
    msg = Node().message("t", b"hello")
    bad = Message(msg.topic, b"hellO", msg.from_, msg.seqno, msg.signature)
    assert verify_message(bad) == "bad signature"


def test_key_from_mismatch_fails() -> None:
    author = Node()
    other = generate_keypair(KeyType.Secp256k1)
    msg = author.message("t", b"hello")
    msg.key = other.public_key().to_protobuf()
    assert verify_message(msg) == "key does not match from"


def test_key_field_for_keys_not_inlined() -> None:
    key = generate_keypair(KeyType.RSA, bits=2048)
    pid = PeerId.from_public_key(key.public_key())
    msg = Message("t", b"x", pid.to_bytes(), b"\x00" * 8)
    sign_message(key, msg)
    assert msg.key == key.public_key().to_protobuf()
    assert verify_message(msg) is None
    msg.key = None
    assert verify_message(msg) == "no key for from"


def test_unsigned_message_is_not_verified() -> None:
    assert verify_message(Message("t", b"x")) == "missing signature, from or seqno"
