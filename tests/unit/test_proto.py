"""The protobuf glue of rapidp2p._core: byte layouts from the specs, caps, typed errors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p import _core
from rapidp2p.exceptions import ProtobufError


def test_noise_payload_layout_and_roundtrip() -> None:
    data = _core.proto.encode_noise_payload(b"\x08\x01", b"sig", ["/yamux/1.0.0"])
    assert data == (b"\x0a\x02\x08\x01" + b"\x12\x03sig" + b"\x22\x0e\x12\x0c/yamux/1.0.0")
    assert _core.proto.decode_noise_payload(data) == (b"\x08\x01", b"sig", ["/yamux/1.0.0"])


def test_noise_payload_without_extensions_omits_field_4() -> None:
    data = _core.proto.encode_noise_payload(b"k", b"s")
    assert data == b"\x0a\x01k\x12\x01s"
    assert _core.proto.decode_noise_payload(data) == (b"k", b"s", [])


def test_noise_payload_missing_fields_rejected() -> None:
    with pytest.raises(ProtobufError, match="identity_key"):
        _core.proto.decode_noise_payload(b"")
    with pytest.raises(ProtobufError, match="identity_sig"):
        _core.proto.decode_noise_payload(b"\x0a\x01k")


def test_identify_field_numbers() -> None:
    data = _core.proto.encode_identify(
        public_key=b"P",
        listen_addrs=[b"A"],
        protocols=["/p"],
        observed_addr=b"O",
        protocol_version="v",
        agent_version="g",
        signed_peer_record=b"R",
    )
    assert data == b"\x0a\x01P\x12\x01A\x1a\x02/p\x22\x01O\x2a\x01v\x32\x01g\x42\x01R"
    assert _core.proto.decode_identify(data) == (b"P", [b"A"], ["/p"], b"O", "v", "g", b"R")


def test_identify_absent_fields_are_none() -> None:
    assert _core.proto.decode_identify(b"") == (None, [], [], None, None, None, None)


def test_identify_cap() -> None:
    ok = _core.proto.encode_identify(agent_version="a" * (_core.proto.MAX_IDENTIFY_SIZE - 3))
    assert len(ok) == _core.proto.MAX_IDENTIFY_SIZE
    _core.proto.decode_identify(ok)
    with pytest.raises(ProtobufError, match="8192"):
        _core.proto.decode_identify(ok + b"\x2a\x00")


def test_envelope_and_peer_record_roundtrip() -> None:
    rec = _core.proto.encode_peer_record(b"\x00\x01", 7, [b"\x04\x7f\x00\x00\x01"])
    assert rec == b"\x0a\x02\x00\x01\x10\x07\x1a\x07\x0a\x05\x04\x7f\x00\x00\x01"
    assert _core.proto.decode_peer_record(rec) == (b"\x00\x01", 7, [b"\x04\x7f\x00\x00\x01"])
    env = _core.proto.encode_envelope(b"PK", b"\x03\x01", rec, b"SIG")
    assert _core.proto.decode_envelope(env) == (b"PK", b"\x03\x01", rec, b"SIG")


def test_envelope_requires_signature_and_cap() -> None:
    with pytest.raises(ProtobufError, match="signature"):
        _core.proto.decode_envelope(_core.proto.encode_envelope(b"PK", b"\x03\x01", b"x", b""))
    with pytest.raises(ProtobufError):
        _core.proto.decode_envelope(b"\x00" * (_core.proto.MAX_ENVELOPE_SIZE + 1))


def test_peer_record_seq_full_u64() -> None:
    rec = _core.proto.encode_peer_record(b"p", 2**64 - 1, [])
    assert _core.proto.decode_peer_record(rec)[1] == 2**64 - 1


def test_signing_buffer() -> None:
    buf = _core.proto.envelope_signing_buffer(b"libp2p-peer-record", b"\x03\x01", b"abc")
    assert buf == b"\x12libp2p-peer-record" + b"\x02\x03\x01" + b"\x03abc"


@given(st.binary(max_size=300))
def test_decoders_raise_only_protobuf_error(data: bytes) -> None:
    for decode in (
        _core.proto.decode_identify,
        _core.proto.decode_noise_payload,
        _core.proto.decode_envelope,
        _core.proto.decode_peer_record,
    ):
        with contextlib.suppress(ProtobufError):
            decode(data)
