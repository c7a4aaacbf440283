"""Packaging facts a newcomer relies on: one version, one licence, ``python -m rapidp2p``,
and ``help(Host)`` listing the attributes every program uses."""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import pydoc
import subprocess
import sys
from pathlib import Path

import pytest

import rapidp2p
from rapidp2p import Host

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]


def _cargo_workspace() -> dict[str, object]:
    data = tomllib.loads((ROOT / "Cargo.toml").read_text())
    package: dict[str, object] = data["workspace"]["package"]
    return package


def test_version_has_one_source() -> None:
    """pyproject's version is dynamic (maturin reads Cargo), the extension reports Cargo's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert rapidp2p.__version__ == _cargo_workspace()["version"]
    assert importlib.metadata.version("rapidp2p") == rapidp2p.__version__


def test_licence_is_mit_everywhere() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    assert "License :: OSI Approved :: MIT License" in project["classifiers"]
    assert _cargo_workspace()["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    for manifest in ROOT.glob("rust/*/Cargo.toml"):
        text = manifest.read_text()
        assert "license.workspace = true" in text or 'license = "MIT"' in text, manifest


def test_project_urls_and_changelog() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    urls = project["urls"]
    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(urls)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in changelog
    assert f"## [{rapidp2p.__version__}]" in changelog


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(rapidp2p.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def test_python_dash_m_rapidp2p(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "rapidp2p"]
    version = subprocess.run(
        [*run, "--version"], capture_output=True, text=True, timeout=60, env=_env(), check=False
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"rapidp2p {rapidp2p.__version__}"
    new = subprocess.run(
        [*run, "id", "--save", str(tmp_path / "id.key")],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=False,
    )
    assert new.returncode == 0, new.stderr
    assert new.stdout.strip().startswith("12D3KooW")
    usage = subprocess.run(
        [*run, "no-such-command"], capture_output=True, text=True, timeout=60, env=_env()
    )
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


@pytest.mark.parametrize("name", ["peer_id", "peerstore", "events"])
def test_help_host_shows_core_attributes(name: str) -> None:
    attr = inspect.getattr_static(Host, name)
    assert isinstance(attr, property) and attr.__doc__, name
    text = pydoc.render_doc(Host, renderer=pydoc.plaintext)
    # pydoc lists properties under "Readonly properties" with their docstrings.
    section = text.split("Readonly properties", 1)[1]
    assert f"\n |  {name}\n" in section, name


def test_help_host_starts_with_an_overview() -> None:
    """help(Host) opens with an example and what a host has by default (transports,
    security, muxers) and where the rest lives (services, HostConfig)."""
    doc = inspect.getdoc(Host) or ""
    assert "Host.create(listen=" in doc
    for word in ("QUIC v1", "TLS 1.3", "Noise", "yamux", "peerstore", "events", "add_service"):
        assert word in doc, word
    # The claims match the defaults: QUIC is among the transports of a host without a PSK.
    names = {type(t).__name__ for t in Host().transports}
    assert {"TcpTransport", "QuicTransport", "WebSocketTransport", "MemoryTransport"} <= names
