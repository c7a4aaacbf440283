"""A pair of network namespaces joined by a veth, made (and removed) by a test.

mDNS needs a real multicast-capable interface; a veth between two namespaces the test owns is
one, and nothing leaves them. ``NetnsPair.create()`` skips the test (with the reason) where
namespaces cannot be made: not root, no ``ip``, or the kernel refuses. The caller's CI policy
turns that skip into a failure under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


class NetnsPair:
    """Namespaces ``a`` and ``b``; ``a`` has 10.251.N.1/24, ``b`` 10.251.N.2/24 on the veth,
    IPv6 link-local addresses without DAD, a multicast route, and loopback up."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.a = f"rp2p-{tag}-a"
        self.b = f"rp2p-{tag}-b"
        self.subnet = int(tag[:2], 16) % 250 + 1
        self.ip_a = f"10.251.{self.subnet}.1"
        self.ip_b = f"10.251.{self.subnet}.2"
        self._made: list[str] = []

    @classmethod
    def create(cls) -> NetnsPair:
        if os.geteuid() != 0:
            pytest.skip("network namespaces need root")
        if shutil.which("ip") is None:
            pytest.skip("the `ip` tool (iproute2) is not installed")
        pair = cls()
        try:
            pair._setup()
        except subprocess.CalledProcessError as exc:
            pair.remove()
            pytest.skip(f"cannot create network namespaces here: {exc.stderr.strip()}")
        return pair

    def _setup(self) -> None:
        for ns in (self.a, self.b):
            _ip("netns", "add", ns)
            self._made.append(ns)
        _ip(
            "link",
            "add",
            "veth0",
            "netns",
            self.a,
            "type",
            "veth",
            "peer",
            "name",
            "veth0",
            "netns",
            self.b,
        )
        for ns, addr in ((self.a, self.ip_a), (self.b, self.ip_b)):
            for key in ("all", "default"):
                subprocess.run(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        "sysctl",
                        "-q",
                        "-w",
                        f"net.ipv6.conf.{key}.accept_dad=0",
                    ],
                    capture_output=True,
                    check=False,
                    timeout=30,
                )
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "veth0")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", "veth0", "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "veth0")

    def command(self, ns: str, argv: list[str]) -> list[str]:
        """``argv`` run inside namespace ``ns``."""
        return ["ip", "netns", "exec", ns, *argv]

    def remove(self) -> None:
        for ns in self._made:
            _ip("netns", "del", ns, check=False)
        self._made.clear()
