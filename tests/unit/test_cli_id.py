"""The ``rapidp2p`` console script, run as ``python -m rapidp2p.cli`` in a subprocess."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import rapidp2p
from rapidp2p.crypto import (
    Ed25519PrivateKey,
    KeyType,
    load_identity,
    public_key_from_protobuf,
    save_identity,
)

ZERO_SEED_PEER_ID = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
B58 = set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")


def cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rapidp2p.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"rapidp2p {rapidp2p.__version__}"


def test_id_prints_a_new_ed25519_peer_id() -> None:
    first, second = cli("id"), cli("id")
    assert first.returncode == 0 and first.stderr == ""
    peer_id = first.stdout.strip()
    assert peer_id.startswith("12D3KooW") and len(peer_id) == 52 and set(peer_id) <= B58
    assert second.stdout.strip() != peer_id


@pytest.mark.parametrize(
    ("type_name", "prefix", "key_type"),
    [
        ("ed25519", "12D3KooW", KeyType.Ed25519),
        ("secp256k1", "16Uiu2HA", KeyType.Secp256k1),
        ("ecdsa", "Qm", KeyType.ECDSA),
        ("rsa", "Qm", KeyType.RSA),
    ],
)
def test_id_json_per_type(type_name: str, prefix: str, key_type: KeyType) -> None:
    result = cli("id", "--type", type_name, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["key_type"] == type_name
    assert info["peer_id"].startswith(prefix)
    assert info["file"] is None
    public = public_key_from_protobuf(base64.b64decode(info["public_key"]))
    assert public.key_type is key_type


def test_save_then_key_shows_the_same_peer_id(tmp_path: Path) -> None:
    path = tmp_path / "identity"
    saved = cli("id", "--save", path, "--json")
    assert saved.returncode == 0, saved.stderr
    info = json.loads(saved.stdout)
    assert info["file"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_identity(path).key_type is KeyType.Ed25519
    shown = cli("id", "--key", path)
    assert shown.returncode == 0
    assert shown.stdout.strip() == info["peer_id"]


def test_key_of_a_known_identity(tmp_path: Path) -> None:
    path = tmp_path / "zero"
    save_identity(path, Ed25519PrivateKey.from_seed(bytes(32)))
    result = cli("id", "--key", path)
    assert result.returncode == 0
    assert result.stdout == ZERO_SEED_PEER_ID + "\n"


def test_save_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "identity"
    first = cli("id", "--save", path).stdout.strip()
    before = path.read_bytes()
    refused = cli("id", "--save", path)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "exists" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert path.read_bytes() == before
    forced = cli("id", "--save", path, "--force")
    assert forced.returncode == 0
    second = forced.stdout.strip()
    assert second != first
    assert cli("id", "--key", path).stdout.strip() == second


def test_save_with_type(tmp_path: Path) -> None:
    path = tmp_path / "k1"
    result = cli("id", "--save", path, "--type", "secp256k1")
    assert result.returncode == 0
    assert load_identity(path).key_type is KeyType.Secp256k1
    assert cli("id", "--key", path).stdout.strip() == result.stdout.strip()


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\x08\x01\x12\x02ab", "Ed25519 private key must be 64")],
)
def test_key_bad_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    result = cli("id", "--key", path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("rapidp2p: error: ")
    assert message in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr


def test_key_missing_file(tmp_path: Path) -> None:
    result = cli("id", "--key", tmp_path / "absent")
    assert result.returncode == 1
    assert "No such file" in result.stderr and "Traceback" not in result.stderr


def test_save_into_missing_directory(tmp_path: Path) -> None:
    result = cli("id", "--save", tmp_path / "no" / "such" / "dir")
    assert result.returncode == 1
    assert "rapidp2p: error:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("id", "--key", "x", "--type", "rsa"),
        ("id", "--key", "x", "--force"),
        ("id", "--bits", "4096"),
        ("id", "--type", "rsa", "--bits", "1024"),
    ],
)
def test_contradictory_or_bad_options(args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.returncode == 1
    assert result.stderr.startswith("rapidp2p: error: ")
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2() -> None:
    both = cli("id", "--key", "a", "--save", "b")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    unknown = cli("id", "--type", "dsa")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    bare = cli()
    assert bare.returncode == 2 and "id" in bare.stderr


def test_in_process_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """main() returns the exit code instead of exiting, for embedding and other subcommands."""
    from rapidp2p.cli import main

    path = tmp_path / "id"
    assert main(["id", "--save", str(path)]) == 0
    peer_id = capsys.readouterr().out.strip()
    assert main(["id", "--key", str(path)]) == 0
    assert capsys.readouterr().out.strip() == peer_id
    assert main(["id", "--save", str(path)]) == 1
    assert "exists" in capsys.readouterr().err
    assert os.path.exists(path)


def test_registry_lists_importable_commands() -> None:
    from rapidp2p.cli.main import build_parser, load_commands
    from rapidp2p.cli.registry import COMMAND_MODULES

    commands = load_commands()
    assert len(commands) == len(COMMAND_MODULES)
    names = [c.NAME for c in commands]
    assert "id" in names and len(set(names)) == len(names)
    help_text = build_parser(commands).format_help()
    for name in names:
        assert name in help_text
