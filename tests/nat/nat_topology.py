"""Network namespaces for NAT tests: a public network, and private LANs behind masquerading
routers (veth pairs, a bridge, nftables), all created and torn down by the test.

```
            public network 11.0.0.0/24 (bridge in its own namespace)
   +---------+-----------+------------------+
 server   public node   router (11.0.0.1)   ...  <- everything here has a global address
 .2        .3           | masquerade
                        +-- LAN 192.168.<n>.0/24 -- node .2
```

The public network uses 11.0.0.0/24, a global range, so implementations that refuse to
dial non-global addresses (go-libp2p's AutoNAT server, rust-libp2p's by default) behave as on
the internet; nothing leaves the namespaces (they have no link to the host's network).

Needs root, ``ip`` (iproute2) and ``nft`` (nftables, installed from Debian with apt-get
when missing). :func:`unavailable` says why a machine cannot run these tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PUBLIC_NET", "Topology", "unavailable"]

PUBLIC_NET = "11.0.0"


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


def unavailable() -> str | None:
    """Why network namespaces cannot be built here (None: they can); installs nftables from
    Debian when it is the only thing missing."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (run the NAT tests as root)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if shutil.which("nft") is None and shutil.which("apt-get") is not None:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "nftables"],
            capture_output=True,
            env=env,
            timeout=600,
            check=False,
        )
    if shutil.which("nft") is None:
        return "nftables' `nft` is not installed (apt-get install nftables)"
    probe = f"rp2p-probe-{os.getpid()}"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    return None


@dataclass
class Topology:
    """Namespaces created on :meth:`__enter__`, all deleted on exit (processes started with
    :meth:`popen` are killed first)."""

    tag: str = field(default_factory=lambda: f"{os.getpid() % 100000}")
    namespaces: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    _hosts: int = 1
    _lans: int = 0

    def ns(self, name: str) -> str:
        return f"rp2p-{name}-{self.tag}"

    def sh(self, ns: str, *argv: str) -> str:
        """Runs a command in namespace ``ns`` (full name); its stdout."""
        return _run("ip", "netns", "exec", ns, *argv).stdout

    def __enter__(self) -> Topology:
        try:
            sw = self._add_ns("sw")
            self.sh(sw, "ip", "link", "add", "br0", "type", "bridge")
            self.sh(sw, "ip", "link", "set", "br0", "up")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _add_ns(self, name: str) -> str:
        full = self.ns(name)
        _run("ip", "netns", "add", full)
        self.namespaces.append(full)
        self.sh(full, "ip", "link", "set", "lo", "up")
        return full

    def _wire_public(self, ns: str, ip: str) -> None:
        """A veth from ``ns`` (``eth0`` with ``ip``/24) to the public bridge."""
        sw = self.ns("sw")
        port = f"p{len(self.namespaces)}"
        _run(
            "ip", "link", "add", "eth0", "netns", ns, "type", "veth",
            "peer", "name", port, "netns", sw,
        )  # fmt: skip
        self.sh(sw, "ip", "link", "set", port, "master", "br0")
        self.sh(sw, "ip", "link", "set", port, "up")
        self.sh(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        self.sh(ns, "ip", "link", "set", "eth0", "up")

    def public_host(self, name: str) -> tuple[str, str]:
        """A namespace on the public network: (namespace, its IP)."""
        ns = self._add_ns(name)
        self._hosts += 1
        ip = f"{PUBLIC_NET}.{self._hosts + 1}"
        self._wire_public(ns, ip)
        return ns, ip

    def natted_host(
        self,
        name: str,
        forward_port: int | None = None,
        *,
        symmetric: bool = False,
        stealth: bool = False,
    ) -> tuple[str, str, str]:
        """A LAN behind its own masquerading router: (host namespace, host IP, the router's
        public IP). The router answers nothing itself: unsolicited inbound connections to
        its public IP are refused, as a home NAT without port forwarding does, except TCP
        ``forward_port``, forwarded to the same port of the host when given.

        The mapping is endpoint-independent (masquerade keeps the source port, so every
        destination sees the host's port: hole punching works) unless ``symmetric``, where
        each new flow gets a random port (``masquerade random,fully-random``: what one peer
        observes is useless to another, hole punching fails). ``stealth``: unsolicited
        packets to the router are dropped silently instead of refused (most home routers; a
        hole punch's early SYN is then retransmitted rather than reset)."""
        self._lans += 1
        lan = f"192.168.{100 + self._lans}"
        router = self._add_ns(f"{name}r")
        self._hosts += 1
        public_ip = f"{PUBLIC_NET}.{self._hosts + 1}"
        self._wire_public(router, public_ip)
        host = self._add_ns(name)
        _run(
            "ip", "link", "add", "lan0", "netns", router, "type", "veth",
            "peer", "name", "eth0", "netns", host,
        )  # fmt: skip
        self.sh(router, "ip", "addr", "add", f"{lan}.1/24", "dev", "lan0")
        self.sh(router, "ip", "link", "set", "lan0", "up")
        self.sh(host, "ip", "addr", "add", f"{lan}.2/24", "dev", "eth0")
        self.sh(host, "ip", "link", "set", "eth0", "up")
        self.sh(host, "ip", "route", "add", "default", "via", f"{lan}.1")
        self.sh(router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        forward = ""
        if forward_port is not None:
            forward = (
                " chain prerouting {\n"
                "  type nat hook prerouting priority dstnat; policy accept;\n"
                f'  iifname "eth0" tcp dport {forward_port} dnat to {lan}.2:{forward_port}\n'
                " }\n"
            )
        stealthy = ""
        if stealth:
            stealthy = (
                " chain input {\n"
                "  type filter hook input priority filter; policy accept;\n"
                '  iifname "eth0" ct state established,related accept\n'
                '  iifname "eth0" drop\n'
                " }\n"
            )
        rules = (
            "table ip nat {\n"
            f"{forward}"
            " chain postrouting {\n"
            "  type nat hook postrouting priority srcnat; policy accept;\n"
            f'  oifname "eth0" masquerade{" random,fully-random" if symmetric else ""}\n'
            " }\n"
            "}\n"
            "table ip filter {\n"
            " chain forward {\n"
            "  type filter hook forward priority filter; policy drop;\n"
            '  iifname "lan0" accept\n'
            "  ct state established,related accept\n"
            "  ct status dnat accept\n"
            " }\n"
            f"{stealthy}"
            "}\n"
        )
        subprocess.run(
            ["ip", "netns", "exec", router, "nft", "-f", "-"],
            input=rules,
            text=True,
            capture_output=True,
            check=True,
            timeout=60,
        )
        return host, f"{lan}.2", public_ip

    def popen(self, ns: str, argv: Sequence[str], **kw: object) -> subprocess.Popen[str]:
        """Starts ``argv`` inside ``ns`` (stdout piped, text); killed at exit."""
        proc: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            **kw,
        )
        self.procs.append(proc)
        return proc

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for ns in reversed(self.namespaces):
            _run("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()


def repo_python() -> list[str]:
    """The interpreter running the tests, with ``-m rapidp2p.cli`` (same package in every
    namespace: they share the file system)."""
    return [sys.executable, "-m", "rapidp2p.cli"]


def here() -> Path:
    return Path(__file__).resolve().parent
