"""The two-machine walkthrough (docs/how-to/two-machines.md), with two network namespaces as the
two machines: each has its own interface and address on a veth pair, no loopback path between
them. The listener uses the default all-interfaces address and advertises its interface
address (never 0.0.0.0); the other side dials that and they chat, then ping with the CLI.

Needs root and ``ip`` (iproute2): skipped with the reason otherwise, but never under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_examples import EXAMPLES, _env

TIMEOUT = 60
SUBNET = "10.231.77"


def _why_not() -> str | None:
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def two_machines() -> Iterator[tuple[str, str]]:
    """Two namespaces ``(a, b)`` joined by a veth: a is 10.231.77.1, b is 10.231.77.2."""
    reason = _why_not()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"two-machine test cannot run under CI: {reason}")
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:6]
    a, b = f"rp2p-a-{tag}", f"rp2p-b-{tag}"
    va, vb = f"va{tag}", f"vb{tag}"
    _ip("netns", "add", a)
    try:
        _ip("netns", "add", b)
        _ip("link", "add", va, "type", "veth", "peer", "name", vb)
        _ip("link", "set", va, "netns", a)
        _ip("link", "set", vb, "netns", b)
        for ns, dev, host in ((a, va, 1), (b, vb, 2)):
            _ip("-n", ns, "addr", "add", f"{SUBNET}.{host}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _in_ns(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def test_chat_and_ping_between_two_machines(two_machines: tuple[str, str]) -> None:
    a, b = two_machines
    env = _env()
    listener = subprocess.Popen(
        _in_ns(
            a,
            sys.executable,
            str(EXAMPLES / "chat.py"),
            "listen",
            "--listen",
            "/ip4/0.0.0.0/tcp/4001",
            "--once",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert listener.stdout is not None
        advertised: list[str] = []
        for line in listener.stdout:
            if line.startswith("LISTENING "):
                advertised.append(line.split()[1])
                if f"/ip4/{SUBNET}.1/" in line:
                    break
        assert advertised and not any("/0.0.0.0/" in x for x in advertised), advertised
        target = next(x for x in advertised if f"/ip4/{SUBNET}.1/" in x)
        ping = subprocess.run(
            _in_ns(b, sys.executable, "-m", "rapidp2p", "ping", target, "-c", "2"),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
            check=False,
        )
        assert ping.returncode == 0, ping.stderr
        dialer = subprocess.run(
            _in_ns(b, sys.executable, str(EXAMPLES / "chat.py"), "dial", target),
            input="hello from the other machine\n",
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
            check=False,
        )
        assert dialer.returncode == 0, dialer.stderr
        assert "* connected to" in dialer.stdout
        out, err = listener.communicate(timeout=TIMEOUT)
        assert "hello from the other machine" in out, (out, err)
        assert listener.returncode == 0, err
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()


def _cli(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _in_ns(ns, sys.executable, "-m", "rapidp2p", *args),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(),
        check=False,
    )


def _serve(ns: str, *args: str) -> subprocess.Popen[str]:
    """A long-running ``rapidp2p`` command in ``ns``; stderr joined to stdout."""
    return subprocess.Popen(
        _in_ns(ns, sys.executable, "-m", "rapidp2p", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )


def _address_on_a(proc: subprocess.Popen[str]) -> str:
    """The first TCP address on machine A's LAN interface the process prints."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        for word in line.split():
            if word.startswith(f"/ip4/{SUBNET}.1/tcp/4001/p2p/"):
                return word
    raise AssertionError(f"no address on {SUBNET}.1 in {seen}")


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.kill()
    out, _ = proc.communicate(timeout=TIMEOUT)
    return out


def test_pubsub_room_between_two_machines(two_machines: tuple[str, str]) -> None:
    """Section 5: ``pubsub sub`` on A (all interfaces, --port 4001), ``pubsub pub`` from B."""
    a, b = two_machines
    sub = _serve(a, "pubsub", "sub", "news", "--port", "4001")
    try:
        target = _address_on_a(sub)
        pub = _cli(b, "pubsub", "pub", "news", "hello from machine B", "--connect", target)
        assert pub.returncode == 0, pub.stderr
        assert "published 20 bytes to 'news': delivered to 1 of 1 peer" in pub.stdout
        assert sub.stdout is not None
        # The message line (stderr's address lines are interleaved here): B's peer ID, data.
        line = next(ln for ln in sub.stdout if ln.endswith(": hello from machine B\n"))
        sender = line.split(": ", 1)[0]
        assert sender.startswith("12D3KooW") and " " not in sender, line
    finally:
        _stop(sub)


def test_dht_lookup_between_two_machines(two_machines: tuple[str, str]) -> None:
    """Section 6: a DHT server on A; find-peer and provide --stay from B; find-providers on A."""
    a, b = two_machines
    cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    node = _serve(a, "listen", "--dht", "server", "--port", "4001")
    provider: subprocess.Popen[str] | None = None
    try:
        target = _address_on_a(node)
        peer_a = target.rsplit("/", 1)[-1]
        found = _cli(b, "dht", "find-peer", peer_a, "--bootstrap", target)
        assert found.returncode == 0, found.stderr
        assert target in found.stdout.split(), found.stdout
        provider = _serve(b, "dht", "provide", cid, "--bootstrap", target, "--stay")
        assert provider.stdout is not None
        announced = next(ln for ln in provider.stdout if ln.startswith("announced "))
        assert "1 peer" in announced, announced
        local = target.replace(f"/ip4/{SUBNET}.1/", "/ip4/127.0.0.1/")
        providers = _cli(a, "dht", "find-providers", cid, "--bootstrap", local)
        assert providers.returncode == 0, providers.stderr
        peer_b, *addrs = providers.stdout.split()
        assert any(x.startswith(f"/ip4/{SUBNET}.2/") for x in addrs), providers.stdout
        assert all(x.endswith(f"/p2p/{peer_b}") for x in addrs)
        assert provider.poll() is None  # --stay: still serving
    finally:
        if provider is not None:
            _stop(provider)
        _stop(node)


def test_default_dht_mode_serves_on_a_lan(two_machines: tuple[str, str]) -> None:
    """Issue 13 point 3 on private addresses (not loopback): two ``--dht auto`` nodes (the
    library's default mode) become servers once they meet on the LAN, so a lookup through A
    finds B, which A only knows because B announced the DHT protocol."""
    a, b = two_machines
    node_a = _serve(a, "listen", "--dht", "auto", "--port", "4001")
    node_b: subprocess.Popen[str] | None = None
    try:
        target = _address_on_a(node_a)
        node_b = _serve(b, "listen", "--dht", "auto", "--port", "4001", "--bootstrap", target)
        assert node_b.stdout is not None
        peer_b, serving = "", False  # stdout and stderr interleave in any order
        for line in node_b.stdout:
            if line.startswith("peer id: "):
                peer_b = line.split()[-1]
            serving = serving or "kad auto mode: now server" in line
            if peer_b and serving:
                break
        assert peer_b and serving, (peer_b, serving)
        found = None
        for _ in range(20):  # A adds B to its table once B's identify push names the protocol
            found = _cli(b, "dht", "find-peer", peer_b, "--bootstrap", target)
            if found.returncode == 0:
                break
            time.sleep(0.5)
        assert found is not None and found.returncode == 0, found.stderr if found else ""
        assert f"/ip4/{SUBNET}.2/tcp/4001/p2p/{peer_b}" in found.stdout.split(), found.stdout
    finally:
        if node_b is not None:
            _stop(node_b)
        _stop(node_a)


def test_the_walkthrough_names_these_commands() -> None:
    guide = (
        Path(__file__).resolve().parents[2] / "docs" / "how-to" / "two-machines.md"
    ).read_text()
    for needle in (
        "chat.py listen",
        "--listen /ip4/0.0.0.0/tcp/4001",
        "chat.py dial",
        "rapidp2p ping",
        "rapidp2p pubsub sub news --port 4001",
        'rapidp2p pubsub pub news "hello from machine B" --connect',
        "rapidp2p listen --dht server --port 4001",
        "rapidp2p dht find-peer",
        "--stay",
        "rapidp2p dht find-providers",
    ):
        assert needle in guide, needle
