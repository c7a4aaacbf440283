"""Key objects cache their protobuf; parsed small public keys are shared, bounded."""

from __future__ import annotations

import pytest

from rapidp2p.crypto import KeyType, generate_keypair, public_key_from_protobuf, serialization
from rapidp2p.exceptions import KeyError_


def test_to_protobuf_is_computed_once_and_stable() -> None:
    pk = generate_keypair().public_key()
    first = pk.to_protobuf()
    assert pk.to_protobuf() is first
    assert public_key_from_protobuf(first) == pk


def test_parsed_keys_are_shared_and_bad_bytes_still_fail() -> None:
    pb = generate_keypair().public_key().to_protobuf()
    assert public_key_from_protobuf(pb) is public_key_from_protobuf(bytes(bytearray(pb)))
    with pytest.raises(KeyError_):
        public_key_from_protobuf(pb[:-1])
    with pytest.raises(KeyError_):
        public_key_from_protobuf(pb[:-1])  # a failure is never cached as a key


def test_large_keys_are_not_cached_and_the_cache_is_bounded() -> None:
    rsa = generate_keypair(KeyType.RSA, bits=2048).public_key().to_protobuf()
    public_key_from_protobuf(rsa)
    assert rsa not in serialization._parsed
    for _ in range(serialization._PARSED_CACHE_SIZE + 10):
        public_key_from_protobuf(generate_keypair().public_key().to_protobuf())
    assert len(serialization._parsed) <= serialization._PARSED_CACHE_SIZE
