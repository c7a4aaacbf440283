"""Circuit Relay v2 across network namespaces: a relay R in ``pub`` with one link to each of
two private namespaces, A and B. ``pub`` does not forward, so A and B cannot reach each other;
A reserves on R, and B pings A through R. All three run the ``rapidp2p`` CLI, as a user would
(``listen --relay-service``, ``listen --relay``, ``ping``).

Needs root (namespaces, veths); skips with the reason elsewhere, and the interop policy turns
that skip into a failure under CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

pytestmark = [pytest.mark.interop, pytest.mark.peers(), pytest.mark.timeout(240)]

CLI = [sys.executable, "-m", "rapidp2p.cli"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


class Topology:
    """``pub`` (10.252.S.1 towards A, 10.253.S.1 towards B), ``a`` (10.252.S.2), ``b``
    (10.253.S.2); no forwarding anywhere."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.subnet = int(tag[:2], 16) % 250 + 1
        self.pub, self.a, self.b = (f"rp2p-{tag}-{n}" for n in ("pub", "a", "b"))
        self.pub_a = f"10.252.{self.subnet}.1"
        self.ip_a = f"10.252.{self.subnet}.2"
        self.pub_b = f"10.253.{self.subnet}.1"
        self.ip_b = f"10.253.{self.subnet}.2"
        self._made: list[str] = []

    def setup(self) -> None:
        for ns in (self.pub, self.a, self.b):
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            subprocess.run(
                ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0"],
                capture_output=True,
                check=False,
                timeout=30,
            )
        for side, ns, pub_ip, ip in (
            ("a", self.a, self.pub_a, self.ip_a),
            ("b", self.b, self.pub_b, self.ip_b),
        ):
            dev = f"veth{side}"
            _ip("link", "add", dev, "netns", self.pub, "type", "veth", "peer", "name", "eth0",
                "netns", ns)  # fmt: skip
            _ip("-n", self.pub, "addr", "add", f"{pub_ip}/24", "dev", dev)
            _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            _ip("-n", self.pub, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def remove(self) -> None:
        for ns in self._made:
            _ip("netns", "del", ns, check=False)
        self._made.clear()

    def run(self, ns: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]


@pytest.fixture
def topo() -> Iterator[Topology]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("the `ip` tool (iproute2) is not installed")
    t = Topology()
    try:
        t.setup()
    except subprocess.CalledProcessError as exc:
        t.remove()
        pytest.skip(f"cannot create network namespaces here: {exc.stderr.strip()}")
    try:
        yield t
    finally:
        t.remove()


@contextmanager
def listen(topo: Topology, ns: str, *args: str) -> Iterator[list[str]]:
    """``rapidp2p listen --json`` in ``ns``; yields the addresses it printed."""
    proc = subprocess.Popen(
        topo.run(ns, [*CLI, "listen", "--json", *args]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"listen exited: {proc.stderr.read() if proc.stderr else ''}"
        yield list(json.loads(line)["addrs"])
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ping(topo: Topology, ns: str, addr: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        topo.run(ns, [*CLI, "ping", addr, "-c", "3", "-i", "0", "--json"]),
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_private_peers_meet_through_the_relay(topo: Topology) -> None:
    with listen(topo, topo.pub, "--listen", "/ip4/0.0.0.0/tcp/0", "--relay-service") as r_addrs:
        to_relay_from_a = next(a for a in r_addrs if f"/ip4/{topo.pub_a}/" in a)
        with listen(
            topo, topo.a, "--listen", f"/ip4/{topo.ip_a}/tcp/0", "--relay", to_relay_from_a
        ) as a_addrs:
            direct = next(a for a in a_addrs if "/p2p-circuit" not in a)
            # The reservation lists every relay address: B uses the one on its side.
            via_b_side = next(
                a for a in a_addrs if "/p2p-circuit" in a and f"/ip4/{topo.pub_b}/" in a
            )
            refused = ping(topo, topo.b, direct)
            assert refused.returncode != 0  # no route from B to A
            done = ping(topo, topo.b, via_b_side)
            assert done.returncode == 0, done.stderr
            records = [json.loads(x) for x in done.stdout.splitlines()]
            assert records[0]["limited"] is True
            assert f"/ip4/{topo.pub_b}/" in records[0]["addr"]
            assert records[-1]["received"] == 3
