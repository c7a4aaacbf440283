"""``rapidp2p listen --dht server`` nodes and ``rapidp2p dht`` operations, as processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

CLI = [sys.executable, "-m", "rapidp2p.cli"]


def _start(*extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*CLI, "listen", "--dht", "server", *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("listening on "):
            return proc, line.split()[-1]
    raise AssertionError(f"listener did not start: {proc.stderr.read() if proc.stderr else ''}")


@pytest.fixture
def servers() -> Iterator[list[str]]:
    procs: list[subprocess.Popen[str]] = []
    try:
        first, addr0 = _start()
        procs.append(first)
        addrs = [addr0]
        for _ in range(2):
            p, a = _start("--bootstrap", addr0)
            procs.append(p)
            addrs.append(a)
        yield addrs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def dht(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "dht", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_roundtrip(servers: list[str]) -> None:
    boot = ["--bootstrap", servers[1]]
    put = dht("put", "/test/cli", "hello", *boot)
    assert put.returncode == 0, put.stderr
    assert int(put.stdout.strip()) >= 1
    got = dht("get", "/test/cli", *boot, "--bootstrap", servers[2])
    assert got.returncode == 0 and got.stdout == "hello\n", got.stderr
    missing = dht("get", "/test/none", *boot)
    assert missing.returncode == 1 and "error" in missing.stderr
    cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    assert dht("find-providers", cid, *boot).returncode == 1
    provided = dht("provide", cid, *boot)
    assert provided.returncode == 0 and int(provided.stdout) >= 1, provided.stderr
    providers = dht("find-providers", cid, "--bootstrap", servers[2])
    assert providers.returncode == 0 and len(providers.stdout.split()) == 1, providers.stderr
    peer0 = servers[0].rsplit("/", 1)[-1]
    found = dht("find-peer", peer0, *boot)
    assert found.returncode == 0 and found.stdout.strip() == servers[0].rsplit("/p2p/", 1)[0]
    closest = dht("get-closest-peers", "some-key", *boot)
    assert closest.returncode == 0 and len(closest.stdout.split()) == 3
    bad = dht("get", "/test/cli", "--bootstrap", "/ip4/127.0.0.1/tcp/1/p2p/" + peer0)
    assert bad.returncode == 1
