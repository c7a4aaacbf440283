"""PeerId: derivation from keys, both text forms, validation (ROBUSTNESS 24)."""

from __future__ import annotations

import hashlib
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p import _core
from rapidp2p.exceptions import CidError, DecodeError, PeerIdError, ProtobufError
from rapidp2p.peer import PeerId

# Public-key protobufs from the libp2p peer-id spec test vectors (peer-ids.md).
ED25519_PUB = bytes.fromhex(
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
SECP256K1_PUB = bytes.fromhex(
    "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"
)
ECDSA_PUB = bytes.fromhex(
    "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d"
    "83abab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec0"
    "34e9f77c409e62"
)
# Peer-id spec text examples: one sha256 ID in both forms, one ed25519 identity ID.
SPEC_CID = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
SPEC_QM = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
SPEC_ED = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def ref_b58encode(data: bytes) -> str:
    """Independent reference base58btc encoder for cross-checking."""
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


class FakeKey:
    """Stands in for rapidp2p.crypto.PublicKey: only to_protobuf() is used."""

    def __init__(self, pb: bytes) -> None:
        self.pb = pb

    def to_protobuf(self) -> bytes:
        return self.pb


@pytest.mark.parametrize("pb", [ED25519_PUB, SECP256K1_PUB])
def test_small_keys_use_identity(pb: bytes) -> None:
    pid = PeerId.from_public_key(FakeKey(pb))  # type: ignore[arg-type]
    assert pid.to_bytes() == bytes([0, len(pb)]) + pb
    assert pid.to_base58() == ref_b58encode(pid.to_bytes())
    assert _core.peer_id.public_key(pid.to_bytes()) == pb


def test_ed25519_base58_form() -> None:
    pid = PeerId.from_public_key(FakeKey(ED25519_PUB))  # type: ignore[arg-type]
    assert str(pid).startswith("12D3KooW")
    assert PeerId.from_string(str(pid)) == pid


def test_large_keys_use_sha256() -> None:
    pid = PeerId.from_public_key(FakeKey(ECDSA_PUB))  # type: ignore[arg-type]
    assert pid.to_bytes() == b"\x12\x20" + hashlib.sha256(ECDSA_PUB).digest()
    assert str(pid).startswith("Qm")
    assert pid.extract_public_key() is None


def test_spec_text_examples() -> None:
    a = PeerId.from_string(SPEC_CID)
    b = PeerId.from_string(SPEC_QM)
    assert a == b
    assert hash(a) == hash(b)
    assert str(a) == SPEC_QM
    assert a.to_cid() == SPEC_CID
    ed = PeerId.from_base58(SPEC_ED)
    assert ed.to_bytes()[:2] == b"\x00\x24"
    assert str(ed) == SPEC_ED
    assert PeerId.from_string(ed.to_cid()) == ed
    assert PeerId.from_string(ed.to_cid("base58btc")) == ed


def test_key_protobuf_is_checked() -> None:
    with pytest.raises(ProtobufError):
        PeerId.from_public_key(FakeKey(b"\x08\x01\x12\x20short"))  # type: ignore[arg-type]


def test_rejects_identity_over_42_bytes() -> None:
    # ROBUSTNESS 24.
    with pytest.raises(PeerIdError, match="42"):
        PeerId.from_bytes(b"\x00\x2b" + b"\x01" * 43)
    PeerId.from_bytes(b"\x00\x2a" + b"\x01" * 42)
    with pytest.raises(PeerIdError):
        PeerId.from_base58(ref_b58encode(b"\x00\x2b" + b"\x01" * 43))


@pytest.mark.parametrize(
    "data",
    [b"\x12\x1f" + b"\x01" * 31, b"\x12\x20" + b"\x01" * 31, b"\x12\x20" + b"\x01" * 33, b""],
)
def test_rejects_bad_sha256_lengths(data: bytes) -> None:
    with pytest.raises(PeerIdError):
        PeerId.from_bytes(data)


def test_rejects_cid_with_other_codec() -> None:
    mh = PeerId.from_string(SPEC_QM).to_bytes()
    with pytest.raises(CidError, match="libp2p-key"):
        PeerId.from_string(_core.wire.cid_encode(0x70, mh))
    with pytest.raises(CidError, match="libp2p-key"):
        PeerId.from_string(_core.wire.cid_encode(0x55, mh, "base58btc"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5O",  # 'O' is not base58
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5",  # one char short
        "12D3KooW",
        "1" * 300,
        "x" + SPEC_CID,
        "not a peer id",
    ],
)
def test_rejects_bad_text(text: str) -> None:
    with pytest.raises(DecodeError):
        PeerId.from_string(text)


def test_value_semantics() -> None:
    a = PeerId.from_string(SPEC_QM)
    b = PeerId.from_string(SPEC_ED)
    assert sorted([a, b]) == sorted([b, a])
    assert (a < b) == (a.to_bytes() < b.to_bytes())
    assert a != b
    assert a != SPEC_QM
    assert {a, b, PeerId.from_string(SPEC_CID)} == {a, b}
    assert repr(a) == f"<PeerId {SPEC_QM}>"
    assert bytes(a) == a.to_bytes()
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(AttributeError):
        a._bytes = b"x"  # type: ignore[misc]


@given(st.integers(min_value=0, max_value=3), st.binary(max_size=120))
def test_round_trips(key_type: int, key: bytes) -> None:
    pb = _core.wire.encode_key_protobuf(key_type, key)
    pid = PeerId.from_public_key(FakeKey(pb))  # type: ignore[arg-type]
    if len(pb) <= 42:
        assert pid.to_bytes() == bytes([0, len(pb)]) + pb
    else:
        assert pid.to_bytes() == b"\x12\x20" + hashlib.sha256(pb).digest()
    assert pid.to_base58() == ref_b58encode(pid.to_bytes())
    assert PeerId.from_base58(pid.to_base58()) == pid
    assert PeerId.from_string(pid.to_cid()) == pid
    assert PeerId.from_bytes(pid.to_bytes()) == pid


@given(st.text(max_size=80))
def test_random_text_only_decode_errors(text: str) -> None:
    for parse in (PeerId.from_string, PeerId.from_base58):
        try:
            pid = parse(text)
        except DecodeError:
            continue
        assert PeerId.from_bytes(pid.to_bytes()) == pid


@given(st.binary(max_size=60))
def test_random_bytes_only_decode_errors(data: bytes) -> None:
    try:
        pid = PeerId.from_bytes(data)
    except DecodeError:
        return
    assert PeerId.from_string(str(pid)) == pid


def test_lone_surrogate_is_a_decode_error() -> None:
    with pytest.raises(PeerIdError):
        PeerId.from_string("Qm\ud800")
