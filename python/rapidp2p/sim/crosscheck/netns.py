"""Network namespaces of one cross-check run: made, addressed and removed by the harness.

Every node gets a namespace of its own named ``rpx<pid>n<i>`` (the harness's process id
keeps concurrent runs apart and lets a later run recognise leftovers of a dead one), with
loopback up and, once the router has created ``tun0`` inside it, the node's address
``10.77.x.y/16`` on ``tun0``: the /16 route sends every other node's packets to the router.
Nothing is created outside these namespaces (no veth, bridge or address on the host).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence

__all__ = ["SUBNET_PREFIX", "Namespaces", "node_addr", "remove_stale"]

SUBNET_PREFIX = "10.77"
_NAME = re.compile(r"^rpx(\d+)n\d+$")


def node_addr(i: int) -> str:
    """The address of node ``i`` (0-based) inside the cross-check subnet 10.77.0.0/16."""
    k = i + 1
    if k >= 65534:
        raise ValueError("at most 65533 nodes fit the cross-check subnet")
    return f"{SUBNET_PREFIX}.{k >> 8}.{k & 0xFF}"


def _ip(args: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    r = subprocess.run(
        ["ip", *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def remove_stale() -> list[str]:
    """Deletes namespaces left by cross-check runs whose harness process is gone."""
    gone = []
    for line in _ip(["netns", "list"], check=False).splitlines():
        name = line.split()[0] if line.strip() else ""
        m = _NAME.match(name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            gone.append(name)
    if gone:
        _ip(["-force", "-batch", "-"], "".join(f"netns del {n}\n" for n in gone), check=False)
    return gone


class Namespaces:
    """``count`` namespaces; use as a context manager so they go even on error."""

    def __init__(self, count: int) -> None:
        pid = os.getpid()
        self.names = [f"rpx{pid}n{i}" for i in range(count)]
        self.addrs = [node_addr(i) for i in range(count)]
        self._made: list[str] = []

    def create(self) -> None:
        """Adds the namespaces with loopback up (``tun0`` comes from the router)."""
        remove_stale()
        self._made = list(self.names)  # before: a half-made batch is still removed
        _ip(["-batch", "-"], "".join(f"netns add {n}\n" for n in self.names))
        for n in self.names:
            _ip(["-n", n, "link", "set", "lo", "up"])

    def configure_tun(self) -> None:
        """Addresses each ``tun0`` (the router must have created them) and brings it up."""
        for n, a in zip(self.names, self.addrs, strict=True):
            _ip(
                ["-n", n, "-batch", "-"],
                f"addr add {a}/16 dev tun0\nlink set tun0 mtu 1500 up\n",
            )

    def exec_argv(self, i: int, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside namespace ``i``."""
        return ["ip", "netns", "exec", self.names[i], *argv]

    def remove(self) -> None:
        """Deletes every namespace this object made (idempotent)."""
        if self._made:
            _ip(
                ["-force", "-batch", "-"],
                "".join(f"netns del {n}\n" for n in self._made),
                check=False,
            )
        self._made = []

    def __enter__(self) -> Namespaces:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
