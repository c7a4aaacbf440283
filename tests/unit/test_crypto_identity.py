"""Identity files: atomic, 0600, validated on load with clear errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rapidp2p.crypto import (
    Ed25519PrivateKey,
    KeyType,
    generate_keypair,
    load_identity,
    save_identity,
)
from rapidp2p.exceptions import KeyError_


@pytest.mark.parametrize("key_type", [KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA])
def test_save_load_round_trip(tmp_path: Path, key_type: KeyType) -> None:
    key = generate_keypair(key_type)
    path = tmp_path / "identity.key"
    save_identity(path, key)
    assert path.read_bytes() == key.to_protobuf()
    assert load_identity(path) == key
    assert load_identity(str(path)) == key


def test_file_mode_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "id"
    old_umask = os.umask(0)
    try:
        save_identity(path, Ed25519PrivateKey.generate())
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_overwrite_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "id"
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    save_identity(path, first)
    save_identity(path, second)
    assert load_identity(path) == second
    assert [p.name for p in tmp_path.iterdir()] == ["id"]


def test_no_overwrite_refuses_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "id"
    first = Ed25519PrivateKey.generate()
    save_identity(path, first, overwrite=False)
    with pytest.raises(FileExistsError):
        save_identity(path, Ed25519PrivateKey.generate(), overwrite=False)
    assert load_identity(path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["id"]


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        save_identity(tmp_path / "nope" / "id", Ed25519PrivateKey.generate())


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_identity(tmp_path / "absent")


def test_load_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "id"
    path.write_bytes(b"")
    with pytest.raises(KeyError_, match="empty"):
        load_identity(path)


def test_load_garbage_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.key"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(KeyError_, match=r"garbage\.key: not a valid libp2p private key"):
        load_identity(path)


def test_load_public_key_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pub"
    path.write_bytes(Ed25519PrivateKey.generate().public_key().to_protobuf())
    with pytest.raises(KeyError_, match="Ed25519 private key must be 64"):
        load_identity(path)


def test_load_huge_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(bytes(1 << 20))
    with pytest.raises(KeyError_, match="too large"):
        load_identity(path)


def test_load_go_style_legacy_ed25519(tmp_path: Path) -> None:
    """Old go-libp2p wrote seed || public || public; it still loads."""
    from rapidp2p import _core

    key = Ed25519PrivateKey.from_seed(bytes(range(32)))
    path = tmp_path / "legacy"
    path.write_bytes(_core.wire.encode_key_protobuf(1, key.raw() + key.public_key().raw()))
    assert load_identity(path) == key
