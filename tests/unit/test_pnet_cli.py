"""``--swarm-key FILE`` on the console script: a listener and a pinger in one network, an
outsider refused with the private-network error, a bad key file refused before connecting."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rapidp2p.pnet import FORCE_PNET_ENV, PreSharedKey


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rapidp2p.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.fixture
def swarm_key(tmp_path: Path) -> Path:
    path = tmp_path / "swarm.key"
    PreSharedKey.generate().write(path)
    return path


@pytest.fixture
def listener(swarm_key: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rapidp2p.cli", "listen", "--swarm-key", str(swarm_key)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        addr = ""
        for line in proc.stdout:
            if line.startswith("listening on "):
                addr = line.split()[-1]
                break
        assert addr, proc.stderr.read() if proc.stderr else ""
        yield addr
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_ping_inside_and_outside_the_network(
    listener: str, swarm_key: Path, tmp_path: Path
) -> None:
    ok = cli("ping", "-c", "1", "--swarm-key", swarm_key, listener)
    assert ok.returncode == 0, ok.stderr
    assert "1 pings transmitted, 1 received" in ok.stdout

    other = tmp_path / "other.key"
    PreSharedKey.generate().write(other)
    refused = cli("ping", "-c", "1", "--swarm-key", other, listener)
    assert refused.returncode == 1
    assert "not in our private network (PSK mismatch)" in refused.stderr

    ident = cli("identify", "--json", "--swarm-key", swarm_key, listener)
    assert ident.returncode == 0, ident.stderr
    assert '"agent_version": "rapidp2p/' in ident.stdout


def test_bad_swarm_key_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("/key/swarm/psk/1.0.0/\n/base16/\nnot-hex\n")
    result = cli("ping", "-c", "1", "--swarm-key", bad, "/ip4/127.0.0.1/tcp/1")
    assert result.returncode == 1
    assert "bad.key" in result.stderr and "base16" in result.stderr


def test_force_pnet_refuses_a_public_listener() -> None:
    env = {**os.environ, FORCE_PNET_ENV: "1"}
    result = cli("listen", env=env)
    assert result.returncode == 1
    assert "LIBP2P_FORCE_PNET=1 requires a private network" in result.stderr
