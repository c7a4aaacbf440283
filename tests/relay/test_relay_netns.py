"""Circuit Relay v2 across real NATs made of network namespaces: a relay R on a public
network, A and B each on a private LAN behind its own masquerading router (nftables). B cannot
reach A directly, neither at A's address nor at A's router; A reserves on R, and B pings A
through R. All three run the ``rapidp2p`` CLI, as a user would (``listen --relay-service``,
``listen --relay``, ``ping``).

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

pytestmark = [pytest.mark.interop, pytest.mark.peers(), pytest.mark.timeout(300)]

CLI = [sys.executable, "-m", "rapidp2p.cli"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _sysctl(ns: str, setting: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", setting],
        capture_output=True,
        check=True,
        timeout=30,
    )


class Topology:
    """A public network and two private LANs, each behind its own NAT router::

        lan_a 192.168.S.2 -- rt_a (masquerade) 10.252.S.2 --+
                                                            pub: relay, 10.252.S.1 / 10.253.S.1
        lan_b 192.168.T.2 -- rt_b (masquerade) 10.253.S.2 --+

    ``pub`` routes between the two routers' public sides (the internet); the LANs are
    reachable from nowhere but their router, and the routers forward nothing inbound that
    their NAT did not open (nftables ``masquerade``, no port forwarding)."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.s = int(tag[:2], 16) % 120 + 1
        self.t = self.s + 120
        self.pub, self.rt_a, self.rt_b, self.lan_a, self.lan_b = (
            f"rp2p-{tag}-{n}" for n in ("pub", "rta", "rtb", "lana", "lanb")
        )
        self.pub_a = f"10.252.{self.s}.1"
        self.wan_a = f"10.252.{self.s}.2"
        self.pub_b = f"10.253.{self.s}.1"
        self.wan_b = f"10.253.{self.s}.2"
        self.ip_a = f"192.168.{self.s}.2"
        self.ip_b = f"192.168.{self.t}.2"
        self._made: list[str] = []

    def _link(self, ns1: str, dev1: str, ip1: str, ns2: str, dev2: str, ip2: str) -> None:
        _ip("link", "add", dev1, "netns", ns1, "type", "veth", "peer", "name", dev2,
            "netns", ns2)  # fmt: skip
        for ns, dev, ip in ((ns1, dev1, ip1), (ns2, dev2, ip2)):
            _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")

    def setup(self) -> None:
        for ns in (self.pub, self.rt_a, self.rt_b, self.lan_a, self.lan_b):
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        self._link(self.pub, "to-a", self.pub_a, self.rt_a, "wan", self.wan_a)
        self._link(self.pub, "to-b", self.pub_b, self.rt_b, "wan", self.wan_b)
        self._link(self.rt_a, "lan", f"192.168.{self.s}.1", self.lan_a, "eth0", self.ip_a)
        self._link(self.rt_b, "lan", f"192.168.{self.t}.1", self.lan_b, "eth0", self.ip_b)
        _sysctl(self.pub, "net.ipv4.ip_forward=1")
        for rt, gw, lan_gw in (
            (self.rt_a, self.pub_a, f"192.168.{self.s}.1"),
            (self.rt_b, self.pub_b, f"192.168.{self.t}.1"),
        ):
            _sysctl(rt, "net.ipv4.ip_forward=1")
            _ip("-n", rt, "route", "add", "default", "via", gw)
            lan = self.lan_a if rt == self.rt_a else self.lan_b
            _ip("-n", lan, "route", "add", "default", "via", lan_gw)
            nft = ["ip", "netns", "exec", rt, "nft", "-f", "-"]
            rules = (
                "table ip nat {\n"
                " chain natting { type nat hook postrouting priority 100; "
                'oifname "wan" masquerade; }\n'
                "}\n"
                "table ip filter {\n"
                " chain forwarding { type filter hook forward priority 0; policy drop;\n"
                "  ct state established,related accept\n"
                '  iifname "lan" accept\n'
                " }\n"
                "}\n"
            )
            subprocess.run(nft, input=rules, text=True, capture_output=True, check=True,
                           timeout=30)  # fmt: skip

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
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` ({package}) is not installed")
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
def listen(
    topo: Topology, ns: str, *args: str, log: list[str] | None = None
) -> Iterator[list[str]]:
    """``rapidp2p listen --json`` in ``ns``; yields the addresses it printed (its stderr goes
    into ``log`` once it stopped, when given)."""
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
        if log is not None and proc.stderr is not None:
            log.extend(proc.stderr.read().splitlines())


def ping(topo: Topology, ns: str, addr: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        topo.run(ns, [*CLI, "ping", addr, "-c", "3", "-i", "0", "--json"]),
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_peers_behind_two_nats_meet_through_the_relay(topo: Topology) -> None:
    relay_log: list[str] = []
    with listen(
        topo, topo.pub, "--listen", "/ip4/0.0.0.0/tcp/0", "--relay-service", "-v", log=relay_log
    ) as r_addrs:
        relay_for_a = next(a for a in r_addrs if f"/ip4/{topo.pub_a}/" in a)
        with listen(
            topo, topo.lan_a, "--listen", f"/ip4/{topo.ip_a}/tcp/0", "--relay", relay_for_a
        ) as a_addrs:
            direct = next(a for a in a_addrs if "/p2p-circuit" not in a)
            # The reservation lists every relay address: B takes the one on its side.
            circuit = next(a for a in a_addrs if "/p2p-circuit" in a and f"/ip4/{topo.pub_b}/" in a)
            # A's private address is unreachable from behind the other NAT...
            refused = ping(topo, topo.lan_b, direct)
            assert refused.returncode != 0
            # ...and so is A's router, whose NAT opens nothing inbound.
            port = direct.split("/tcp/")[1].split("/")[0]
            peer = direct.rsplit("/p2p/", 1)[1]
            wan = f"/ip4/{topo.wan_a}/tcp/{port}/p2p/{peer}"
            assert ping(topo, topo.lan_b, wan).returncode != 0
            # Through the relay, B reaches A.
            done = ping(topo, topo.lan_b, circuit)
            assert done.returncode == 0, done.stderr
            records = [json.loads(x) for x in done.stdout.splitlines()]
            assert records[0]["limited"] is True
            assert f"/ip4/{topo.pub_b}/" in records[0]["addr"]
            assert records[-1]["received"] == 3
    # The relay saw A and B at their routers' public addresses: the NATs translated.
    opened = "\n".join(line for line in relay_log if "connection opened" in line)
    assert f"/ip4/{topo.wan_a}/" in opened and f"/ip4/{topo.wan_b}/" in opened, opened
