"""Key types one by one: generation, encodings, signatures, and refusals (ROBUSTNESS 7)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from rapidp2p import _core
from rapidp2p.crypto import (
    EcdsaPrivateKey,
    Ed25519PrivateKey,
    KeyType,
    PrivateKey,
    RsaPrivateKey,
    RsaPublicKey,
    Secp256k1PrivateKey,
    generate_keypair,
    private_key_from_protobuf,
    private_key_from_raw,
    public_key_from_protobuf,
    public_key_from_raw,
)
from rapidp2p.crypto._ecutil import DETERMINISTIC
from rapidp2p.exceptions import DecodeError, KeyError_

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture(scope="module")
def keys() -> Iterator[dict[KeyType, PrivateKey]]:
    """One key of each type; RSA generation is slow, so once per module."""
    yield {key_type: generate_keypair(key_type) for key_type in KeyType}


def test_default_is_ed25519() -> None:
    assert generate_keypair().key_type is KeyType.Ed25519


def test_key_type_numbers() -> None:
    assert [int(t) for t in (KeyType.RSA, KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA)] == [
        0,
        1,
        2,
        3,
    ]


@pytest.mark.parametrize("key_type", list(KeyType))
def test_round_trips(keys: dict[KeyType, PrivateKey], key_type: KeyType) -> None:
    key = keys[key_type]
    assert key.key_type is key_type
    public = key.public_key()
    assert public.key_type is key_type
    assert private_key_from_protobuf(key.to_protobuf()) == key
    assert private_key_from_raw(key_type, key.raw()).to_protobuf() == key.to_protobuf()
    assert public_key_from_protobuf(public.to_protobuf()) == public
    assert public_key_from_raw(key_type, public.raw()) == public
    assert _core.wire.decode_key_protobuf(public.to_protobuf()) == (int(key_type), public.raw())


@pytest.mark.parametrize("key_type", list(KeyType))
def test_sign_verify(keys: dict[KeyType, PrivateKey], key_type: KeyType) -> None:
    key = keys[key_type]
    other = Ed25519PrivateKey.generate() if key_type is not KeyType.Ed25519 else keys[KeyType.RSA]
    signature = key.sign(b"hello")
    assert key.public_key().verify(b"hello", signature)
    assert not key.public_key().verify(b"hellO", signature)
    assert not other.public_key().verify(b"hello", signature)
    # Garbage of any length is a plain False, never an exception.
    for junk in (b"", b"\x00", b"\x30\x06\x02\x01\x01\x02\x01\x01", signature + b"\x00", bytes(64)):
        assert key.public_key().verify(b"hello", junk) is False


@pytest.mark.parametrize("key_type", list(KeyType))
def test_equality_and_hash(keys: dict[KeyType, PrivateKey], key_type: KeyType) -> None:
    key = keys[key_type]
    again = private_key_from_protobuf(key.to_protobuf())
    assert again == key and hash(again) == hash(key)
    assert again.public_key() == key.public_key()
    assert len({key.public_key(), again.public_key()}) == 1
    different = KeyType.ECDSA if key_type is KeyType.Ed25519 else KeyType.Ed25519
    assert key.public_key() != keys[different].public_key()
    assert key.public_key() != "not a key"
    assert key.raw().hex() not in repr(key)


# --- Ed25519 -----------------------------------------------------------------------------


def test_ed25519_from_seed_is_deterministic() -> None:
    a = Ed25519PrivateKey.from_seed(bytes(range(32)))
    b = Ed25519PrivateKey.from_seed(bytes(range(32)))
    assert a == b and a.sign(b"m") == b.sign(b"m")
    assert a.seed() == bytes(range(32))
    assert a.raw() == bytes(range(32)) + a.public_key().raw()


def test_ed25519_rfc8032_test_1() -> None:
    """RFC 8032 section 7.1, TEST 1 (empty message)."""
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = Ed25519PrivateKey.from_seed(seed)
    assert key.public_key().raw() == bytes.fromhex(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert key.sign(b"") == bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


def test_ed25519_legacy_96_byte_private_key() -> None:
    key = Ed25519PrivateKey.from_seed(bytes(32))
    legacy = key.raw() + key.public_key().raw()
    assert Ed25519PrivateKey.from_raw(legacy) == key
    # Re-serialised in the preferred 64-byte form.
    assert len(private_key_from_raw(KeyType.Ed25519, legacy).raw()) == 64
    with pytest.raises(KeyError_, match="two different public keys"):
        Ed25519PrivateKey.from_raw(legacy[:64] + bytes(32))


@pytest.mark.parametrize("length", [0, 31, 32, 63, 65, 95, 97, 128])
def test_ed25519_private_wrong_length(length: int) -> None:
    with pytest.raises(KeyError_, match="Ed25519 private key must be 64"):
        Ed25519PrivateKey.from_raw(bytes(length))


def test_ed25519_private_public_mismatch() -> None:
    key = Ed25519PrivateKey.from_seed(bytes(32))
    with pytest.raises(KeyError_, match="does not match the seed"):
        Ed25519PrivateKey.from_raw(key.seed() + bytes(32))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_ed25519_public_wrong_length(length: int) -> None:
    with pytest.raises(KeyError_, match="32 bytes"):
        public_key_from_raw(KeyType.Ed25519, bytes(length))


def test_ed25519_bad_seed_length() -> None:
    with pytest.raises(KeyError_, match="seed must be 32"):
        Ed25519PrivateKey.from_seed(bytes(31))


# --- secp256k1 ----------------------------------------------------------------------------


def test_secp256k1_encodings(keys: dict[KeyType, PrivateKey]) -> None:
    key = keys[KeyType.Secp256k1]
    assert len(key.raw()) == 32
    public = key.public_key().raw()
    assert len(public) == 33 and public[0] in (2, 3)


def test_secp256k1_signatures_are_low_s(keys: dict[KeyType, PrivateKey]) -> None:
    key = keys[KeyType.Secp256k1]
    for i in range(32):
        _r, s = decode_dss_signature(key.sign(b"message %d" % i))
        assert 0 < s <= SECP256K1_N // 2


def test_secp256k1_high_s_signature_still_verifies(keys: dict[KeyType, PrivateKey]) -> None:
    """Verification is lenient about S, as go- and rust-libp2p are; only signing normalises."""
    key = keys[KeyType.Secp256k1]
    r, s = decode_dss_signature(key.sign(b"m"))
    high = encode_dss_signature(r, SECP256K1_N - s)
    assert key.public_key().verify(b"m", high)


@pytest.mark.skipif(not DETERMINISTIC, reason="OpenSSL without RFC 6979 nonces")
def test_secp256k1_signatures_are_deterministic(keys: dict[KeyType, PrivateKey]) -> None:
    key = keys[KeyType.Secp256k1]
    assert key.sign(b"m") == key.sign(b"m") != key.sign(b"n")


def test_secp256k1_rejects_uncompressed_point(keys: dict[KeyType, PrivateKey]) -> None:
    key = keys[KeyType.Secp256k1]
    assert isinstance(key, Secp256k1PrivateKey)
    uncompressed = key._key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    with pytest.raises(KeyError_, match="33-byte compressed"):
        public_key_from_raw(KeyType.Secp256k1, uncompressed)


def test_secp256k1_rejects_point_not_on_curve() -> None:
    # x = 5 has no point on secp256k1 (5**3 + 7 = 132 is not a square mod p).
    with pytest.raises(KeyError_, match="invalid secp256k1 public key"):
        public_key_from_raw(KeyType.Secp256k1, b"\x02" + (5).to_bytes(32, "big"))


@pytest.mark.parametrize("scalar", [0, SECP256K1_N, 2**256 - 1])
def test_secp256k1_private_out_of_range(scalar: int) -> None:
    with pytest.raises(KeyError_, match="out of range"):
        private_key_from_raw(KeyType.Secp256k1, scalar.to_bytes(32, "big"))


def test_secp256k1_private_wrong_length() -> None:
    with pytest.raises(KeyError_, match="32 bytes"):
        private_key_from_raw(KeyType.Secp256k1, bytes(33))


def test_secp256k1_known_scalar_one() -> None:
    """Private key 1 has the generator G as its public key."""
    key = private_key_from_raw(KeyType.Secp256k1, (1).to_bytes(32, "big"))
    assert key.public_key().raw() == bytes.fromhex(
        "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    )


# --- ECDSA P-256 ---------------------------------------------------------------------------


def test_ecdsa_encodings(keys: dict[KeyType, PrivateKey]) -> None:
    key = keys[KeyType.ECDSA]
    public = serialization.load_der_public_key(key.public_key().raw())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)
    # SEC1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING (32) ... }
    assert key.raw()[2:7] == bytes([0x02, 0x01, 0x01, 0x04, 0x20])


@pytest.mark.skipif(not DETERMINISTIC, reason="OpenSSL without RFC 6979 nonces")
def test_ecdsa_rfc6979_p256_sha256_vector() -> None:
    """RFC 6979 appendix A.2.5, P-256 with SHA-256, message "sample"."""
    scalar = int("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721", 16)
    der = ec.derive_private_key(scalar, ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    key = private_key_from_raw(KeyType.ECDSA, der)
    r, s = decode_dss_signature(key.sign(b"sample"))
    assert r == int("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716", 16)
    assert s == int("F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8", 16)


def test_ecdsa_rejects_other_curves() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    spki = p384.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyError_, match="P-256"):
        public_key_from_raw(KeyType.ECDSA, spki)
    sec1 = p384.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyError_, match="P-256"):
        private_key_from_raw(KeyType.ECDSA, sec1)


def test_ecdsa_rejects_an_rsa_spki(keys: dict[KeyType, PrivateKey]) -> None:
    with pytest.raises(KeyError_, match="ECDSA public key DER holds"):
        public_key_from_raw(KeyType.ECDSA, keys[KeyType.RSA].public_key().raw())
    with pytest.raises(KeyError_, match="ECDSA private key DER too long"):
        private_key_from_raw(KeyType.ECDSA, keys[KeyType.RSA].raw())
    pkcs8_ed25519 = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyError_, match="ECDSA private key DER holds"):
        private_key_from_raw(KeyType.ECDSA, pkcs8_ed25519)


def test_ecdsa_garbage_der() -> None:
    with pytest.raises(KeyError_, match="invalid ECDSA public key DER"):
        public_key_from_raw(KeyType.ECDSA, b"\x30\x03\x02\x01\x01")
    with pytest.raises(KeyError_, match="invalid ECDSA private key DER"):
        private_key_from_raw(KeyType.ECDSA, b"\x30\x03\x02\x01\x01")


def test_ecdsa_private_from_sec1(keys: dict[KeyType, PrivateKey]) -> None:
    key = keys[KeyType.ECDSA]
    assert isinstance(key, EcdsaPrivateKey)
    assert EcdsaPrivateKey.from_raw(key.raw()) == key


# --- RSA and its size limits (ROBUSTNESS 7) ----------------------------------------------


def _fake_rsa_spki(bits: int) -> bytes:
    """A syntactically valid RSA public key with a modulus of exactly ``bits`` bits.

    Building it from numbers needs no prime generation, so sizes that would take minutes to
    generate cost nothing here.
    """
    modulus = (1 << (bits - 1)) | 1
    return (
        rsa.RSAPublicNumbers(65537, modulus)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@pytest.mark.parametrize("bits", [512, 1024, 2047, 8193, 8200])
def test_rsa_public_key_size_rejected(bits: int) -> None:
    proto = _core.wire.encode_key_protobuf(int(KeyType.RSA), _fake_rsa_spki(bits))
    with pytest.raises(KeyError_, match=f"{bits} bits is outside"):
        public_key_from_protobuf(proto)


@pytest.mark.parametrize("bits", [2048, 8192])
def test_rsa_public_key_size_boundaries_accepted(bits: int) -> None:
    public = public_key_from_raw(KeyType.RSA, _fake_rsa_spki(bits))
    assert isinstance(public, RsaPublicKey) and public.bits == bits


def test_rsa_huge_public_key_refused_before_parsing() -> None:
    with pytest.raises(KeyError_, match="larger than a 8192-bit key"):
        public_key_from_raw(KeyType.RSA, _fake_rsa_spki(16384))


def test_rsa_small_private_key_rejected() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pkcs1 = small.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyError_, match="1024 bits is outside"):
        private_key_from_raw(KeyType.RSA, pkcs1)


@pytest.mark.parametrize("bits", [1024, 2047, 8193, 16384])
def test_rsa_generate_size_rejected(bits: int) -> None:
    with pytest.raises(KeyError_, match="outside"):
        generate_keypair(KeyType.RSA, bits=bits)


def test_rsa_encodings(keys: dict[KeyType, PrivateKey]) -> None:
    key = keys[KeyType.RSA]
    assert isinstance(key, RsaPrivateKey) and key.bits == 2048
    # PKCS#1 RSAPrivateKey starts with version 0; SPKI carries the rsaEncryption OID.
    assert key.raw()[4:7] == bytes([0x02, 0x01, 0x00])
    assert bytes.fromhex("2a864886f70d010101") in key.public_key().raw()[:20]
    assert len(key.sign(b"x")) == 256


def test_rsa_rejects_ec_der(keys: dict[KeyType, PrivateKey]) -> None:
    with pytest.raises(KeyError_, match="RSA public key DER holds"):
        public_key_from_raw(KeyType.RSA, keys[KeyType.ECDSA].public_key().raw())
    with pytest.raises(KeyError_, match="invalid RSA"):
        private_key_from_raw(KeyType.RSA, b"\x30\x00")


# --- generic ----------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_ed25519_sign_verify_any_message(message: bytes) -> None:
    key = Ed25519PrivateKey.from_seed(bytes(32))
    assert key.public_key().verify(message, key.sign(message))


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=300), key_type=st.sampled_from(list(KeyType)))
def test_sign_verify_any_message(
    keys: dict[KeyType, PrivateKey], message: bytes, key_type: KeyType
) -> None:
    key = keys[key_type]
    assert key.public_key().verify(message, key.sign(message))
    assert not key.public_key().verify(message + b"\x00", key.sign(message))


@settings(max_examples=200, deadline=None)
@given(key_type=st.sampled_from(list(KeyType)), data=st.binary(max_size=200))
def test_raw_parsers_raise_only_decode_errors(key_type: KeyType, data: bytes) -> None:
    for parse in (public_key_from_raw, private_key_from_raw):
        with contextlib.suppress(DecodeError):
            parse(key_type, data)
