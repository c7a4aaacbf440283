"""Multibase, multihash and CID codecs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p import _core
from rapidp2p.exceptions import CidError, MultibaseError, MultihashError

# "yes mani !" in every base, from the multibase spec test vectors (tests/basic.csv).
MULTIBASE_VECTORS = [
    ("base58btc", "z7paNL19xttacUY"),
    ("base32", "bpfsxgidnmfxgsibb"),
    ("base32upper", "BPFSXGIDNMFXGSIBB"),
    ("base64url", "ueWVzIG1hbmkgIQ"),
    ("base64", "meWVzIG1hbmkgIQ"),
    ("base16", "f796573206d616e692021"),
    ("base16upper", "F796573206D616E692021"),
]
BASES = [name for name, _ in MULTIBASE_VECTORS]


@pytest.mark.parametrize(("base", "text"), MULTIBASE_VECTORS)
def test_multibase_vectors(base: str, text: str) -> None:
    assert _core.wire.multibase_encode(base, b"yes mani !") == text
    assert _core.wire.multibase_encode(text[0], b"yes mani !") == text
    assert _core.wire.multibase_decode(text) == (base, b"yes mani !")


@given(st.sampled_from(BASES), st.binary(max_size=100))
def test_multibase_round_trip(base: str, data: bytes) -> None:
    assert _core.wire.multibase_decode(_core.wire.multibase_encode(base, data)) == (base, data)


@pytest.mark.parametrize(
    "text", ["", "x1", "z0OIl", "bPFSX", "bpfsxgidnmfxgsibb=", "f7", "F79z", "baf", "u+/"]
)
def test_multibase_rejects(text: str) -> None:
    with pytest.raises(MultibaseError):
        _core.wire.multibase_decode(text)


def test_multibase_unknown_base() -> None:
    with pytest.raises(MultibaseError, match="unsupported"):
        _core.wire.multibase_encode("base36", b"")


def test_multihash_sha256() -> None:
    mh = _core.wire.multihash_sha256(b"foo")
    assert mh == b"\x12\x20" + hashlib.sha256(b"foo").digest()
    assert _core.wire.multihash_decode(mh) == (0x12, hashlib.sha256(b"foo").digest())
    assert _core.wire.multihash_encode(0x12, hashlib.sha256(b"foo").digest()) == mh
    assert _core.wire.multihash_encode(0x00, b"abc") == b"\x00\x03abc"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x12",
        b"\x12\x1f" + b"\x00" * 31,
        b"\x12\x20" + b"\x00" * 31,
        b"\x00\x01ab",
        b"\x99\x00",
    ],
)
def test_multihash_rejects(data: bytes) -> None:
    with pytest.raises(MultihashError):
        _core.wire.multihash_decode(data)


def test_multihash_encode_checks_length() -> None:
    with pytest.raises(MultihashError, match="32 bytes"):
        _core.wire.multihash_encode(0x12, b"short")


def test_cid_spec_example() -> None:
    # Peer-id spec: a sha256 peer ID as a CID, and the same ID as legacy base58.
    version, codec, mh = _core.wire.cid_decode(
        "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
    )
    assert (version, codec) == (1, 0x72)
    assert mh == _core.peer_id.from_base58("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
    assert (
        _core.wire.cid_encode(0x72, mh)
        == "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
    )
    assert _core.wire.cid_decode("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N") == (0, 0x70, mh)


@given(st.integers(min_value=0, max_value=2**63 - 1), st.binary(min_size=32, max_size=32))
def test_cid_round_trip(codec: int, digest: bytes) -> None:
    mh = _core.wire.multihash_encode(0x12, digest)
    for base in ("base32", "base58btc", "base64url"):
        assert _core.wire.cid_decode(_core.wire.cid_encode(codec, mh, base)) == (1, codec, mh)


@pytest.mark.parametrize("text", ["", "b", "bciqa", "Qm" + "0" * 44, "zzzz"])
def test_cid_rejects(text: str) -> None:
    with pytest.raises((CidError, MultibaseError, MultihashError)):
        _core.wire.cid_decode(text)
