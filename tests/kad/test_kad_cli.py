"""``rapidp2p listen --dht server`` nodes and ``rapidp2p dht`` operations, as processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

CLI = [sys.executable, "-m", "rapidp2p.cli"]
NS = ["--permissive-namespace", "test"]


def _start(*extra: str) -> tuple[subprocess.Popen[str], str]:
    # Loopback only: DHT lookups dial whatever addresses the nodes advertise (the default,
    # all interfaces, is covered in tests/unit/test_cli_consistency.py).
    proc = subprocess.Popen(
        [*CLI, "listen", "--listen", "/ip4/127.0.0.1/tcp/0", "--dht", "server", *NS, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("listening on /ip4/127.0.0.1/"):
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
    put = dht("put", "/test/cli", "hello", *boot, *NS)
    assert put.returncode == 0, put.stderr
    n = int(re.fullmatch(r"stored /test/cli on (\d+) peers?\n", put.stdout).group(1))  # type: ignore[union-attr]
    assert n >= 1
    got = dht("get", "/test/cli", *boot, "--bootstrap", servers[2], *NS)
    assert got.returncode == 0 and got.stdout == "hello\n", got.stderr
    got_json = dht("get", "/test/cli", *boot, *NS, "--json")
    assert json.loads(got_json.stdout)["value"] == "hello", got_json.stderr
    missing = dht("get", "/test/none", *boot, *NS)
    assert missing.returncode == 1 and "error" in missing.stderr
    cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    assert dht("find-providers", cid, *boot).returncode == 1
    provided = dht("provide", cid, *boot, "--listen", "/ip4/127.0.0.1/tcp/0", "--json")
    assert provided.returncode == 0, provided.stderr
    record = json.loads(provided.stdout)
    assert record["cid"] == cid and record["announced_to"] >= 1
    providers = dht("find-providers", cid, "--bootstrap", servers[2])
    assert providers.returncode == 0, providers.stderr
    (line,) = providers.stdout.splitlines()
    peer_id, *addrs = line.split()
    assert peer_id == record["provider"]
    assert addrs and all(a.endswith(f"/p2p/{peer_id}") for a in addrs)
    peer0 = servers[0].rsplit("/", 1)[-1]
    found = dht("find-peer", peer0, *boot)
    assert found.returncode == 0 and servers[0] in found.stdout.split(), found.stdout
    assert all(a.endswith(f"/p2p/{peer0}") for a in found.stdout.split())
    closest = dht("get-closest-peers", "some-key", *boot)
    assert closest.returncode == 0 and len(closest.stdout.split()) == 3
    bad = dht("get", "/test/cli", "--bootstrap", "/ip4/127.0.0.1/tcp/1/p2p/" + peer0)
    assert bad.returncode == 1


def test_put_outside_the_default_namespaces_says_how(servers: list[str]) -> None:
    # Library and CLI share one default: only /pk/ records unless a namespace is named.
    put = dht("put", "/test/x", "v", "--bootstrap", servers[0])
    assert put.returncode == 1
    assert "no validator for namespace 'test'" in put.stderr
    assert "PermissiveValidator" in put.stderr or "--permissive-namespace" in put.stderr


def test_wrong_peer_id_in_bootstrap_is_named(servers: list[str]) -> None:
    wrong = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
    addr = servers[0].rsplit("/p2p/", 1)[0] + f"/p2p/{wrong}"
    res = dht("get-closest-peers", "k", "--bootstrap", addr)
    assert res.returncode == 1
    assert "peer id mismatch" in res.stderr and wrong in res.stderr, res.stderr


def test_provide_stay_keeps_serving(servers: list[str]) -> None:
    cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    stay = subprocess.Popen(
        [
            *CLI, "dht", "provide", cid, "--bootstrap", servers[1],
            "--listen", "/ip4/127.0.0.1/tcp/0", "--stay",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert stay.stdout is not None
        assert stay.stdout.readline().startswith("announced ")
        providers = dht("find-providers", cid, "--bootstrap", servers[2])
        assert providers.returncode == 0, providers.stderr
        _peer, addr, *_ = providers.stdout.split()
        # The provider is still up: it answers a ping at the address it announced.
        ping = subprocess.run(
            [*CLI, "ping", addr, "-c", "1"], capture_output=True, text=True, timeout=60
        )
        assert ping.returncode == 0, ping.stderr
        assert stay.poll() is None
    finally:
        stay.kill()
        stay.wait()
