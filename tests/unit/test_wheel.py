"""The built wheel installs into a fresh virtualenv and works with no Rust toolchain around.

Runs when RAPIDP2P_WHEEL names a wheel file (the nox ``tests`` session sets it); otherwise it
is skipped with the reason. Dependencies come from PyPI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WHEEL = os.environ.get("RAPIDP2P_WHEEL", "")
RUST_TOOLS = ("cargo", "rustc", "rustup", "maturin")

pytestmark = [
    pytest.mark.skipif(
        not WHEEL, reason="RAPIDP2P_WHEEL is not set (the nox tests session sets it)"
    ),
    pytest.mark.timeout(900),
]


def _path_without_rust(venv_bin: Path) -> str:
    """The venv's bin plus every PATH entry that holds none of the Rust tools."""
    kept = [str(venv_bin)]
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and not any((Path(entry) / tool).exists() for tool in RUST_TOOLS):
            kept.append(entry)
    return os.pathsep.join(kept)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv with the wheel installed, and an environment with no Rust toolchain."""
    wheel = Path(WHEEL)
    if not wheel.is_file():
        pytest.fail(f"RAPIDP2P_WHEEL={WHEEL} is not a file")
    root = tmp_path_factory.mktemp("wheel-venv")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=300)
    bin_dir = root / "venv" / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=600,
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CARGO", "RUSTUP", "RUST", "PYTHON", "VIRTUAL_ENV", "MATURIN"))
    }
    env["PATH"] = _path_without_rust(bin_dir)
    env["VIRTUAL_ENV"] = str(root / "venv")
    return bin_dir, env


def _run(
    bin_dir: Path, env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_no_rust_toolchain_on_path(venv: tuple[Path, dict[str, str]]) -> None:
    _bin_dir, env = venv
    for tool in RUST_TOOLS:
        assert shutil.which(tool, path=env["PATH"]) is None, tool


def test_extension_imports_from_the_installed_wheel(
    venv: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    bin_dir, env = venv
    code = (
        "import json, rapidp2p, rapidp2p._core as c, rapidp2p.crypto as k;"
        "key = k.generate_keypair();"
        "assert key.public_key().verify(b'x', key.sign(b'x'));"
        "print(json.dumps({'file': c.__file__, 'version': rapidp2p.__version__}))"
    )
    result = _run(bin_dir, env, tmp_path, str(bin_dir / "python"), "-c", code)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    # Imported from the venv's site-packages, not from a source tree.
    assert info["file"].startswith(str(bin_dir.parent)), info["file"]
    assert info["version"]


def test_console_script_works(venv: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, env = venv
    script = shutil.which("rapidp2p", path=env["PATH"])
    assert script is not None and Path(script).parent == bin_dir
    new = _run(bin_dir, env, tmp_path, "rapidp2p", "id", "--save", "id.key")
    assert new.returncode == 0, new.stderr
    peer_id = new.stdout.strip()
    assert peer_id.startswith("12D3KooW")
    shown = _run(bin_dir, env, tmp_path, "rapidp2p", "id", "--key", "id.key")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == peer_id
    version = _run(bin_dir, env, tmp_path, "rapidp2p", "--version")
    assert version.returncode == 0 and version.stdout.startswith("rapidp2p ")
