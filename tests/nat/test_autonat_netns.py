"""AutoNAT v1 through a real NAT (network namespaces, veth, nftables masquerade).

A public network with an AutoNAT server (``rapidp2p listen --autonat-service``) and a public
node, and a LAN behind a masquerading router with one node. Each node bootstraps to the
server and prints its reachability: the public node learns ``public``, the NATed one
``private`` (the server's dial-back to the router's public IP is refused, since nothing is
forwarded). The same topology then runs go-libp2p and rust-libp2p on either side: their
clients ask our server, and our nodes ask their servers.

Root only (namespaces); skipped with the reason elsewhere, never skipped under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from nat_topology import Topology, repo_python, unavailable

pytestmark = [pytest.mark.timeout(300)]

PORT = 4001
#: The port the second LAN's router forwards to its host.
FORWARDED = 4100


@pytest.fixture(scope="module")
def topology() -> Iterator[dict[str, Any]]:
    reason = unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"NAT tests must run under CI: {reason}")
        pytest.skip(reason)
    with Topology() as topo:
        server_ns, server_ip = topo.public_host("srv")
        public_ns, public_ip = topo.public_host("pub")
        lan_ns, lan_ip, router_ip = topo.natted_host("lan")
        fwd_ns, fwd_ip, fwd_router_ip = topo.natted_host("fwd", forward_port=FORWARDED)
        observers = [topo.public_host(f"o{i}") for i in range(4)]
        yield {
            "topo": topo,
            "server": (server_ns, server_ip),
            "public": (public_ns, public_ip),
            "lan": (lan_ns, lan_ip),
            "router_ip": router_ip,
            "fwd": (fwd_ns, fwd_ip),
            "fwd_router_ip": fwd_router_ip,
            "observers": observers,
        }


class Lines:
    """The JSON lines a process prints, read in a thread (never blocks the test)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.queue.put(line)
        self.queue.put(None)

    def wait_for_all(self, *keys: str, timeout: float = 90.0) -> dict[str, dict[str, Any]]:
        """The first line with each of ``keys``, whatever their order."""
        found: dict[str, dict[str, Any]] = {}
        while len(found) < len(keys):
            record = self.wait_for_any(keys, timeout)
            for k in keys:
                if k in record and k not in found:
                    found[k] = record
        return found

    def wait_for_any(self, keys: tuple[str, ...], timeout: float) -> dict[str, Any]:
        while True:
            try:
                line = self.queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"none of {keys} within {timeout} s") from None
            if line is None:
                raise AssertionError(f"process exited (code {self.proc.wait()}) before {keys}")
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and any(k in record for k in keys):
                return record

    def wait_for(self, key: str, timeout: float = 90.0) -> dict[str, Any]:
        while True:
            try:
                line = self.queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {key!r} line within {timeout} s") from None
            if line is None:
                raise AssertionError(f"process exited (code {self.proc.wait()}) before {key!r}")
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and key in record:
                return record


def _listen(topo: Topology, ns: str, ip: str, *args: str, port: int = PORT) -> Lines:
    argv = [*repo_python(), "listen", "--listen", f"/ip4/{ip}/tcp/{port}", "--json", *args]
    return Lines(topo.popen(ns, argv, stderr=subprocess.DEVNULL))


def _server(t: dict[str, Any]) -> str:
    """Our AutoNAT server on the public network; its full address."""
    if "server_addr" not in t:
        ns, ip = t["server"]
        lines = _listen(t["topo"], ns, ip, "--autonat-service")
        addrs = lines.wait_for("addrs")["addrs"]
        t["server_addr"] = next(a for a in addrs if f"/{ip}/" in a)
    return str(t["server_addr"])


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize(("where", "expected"), [("public", "public"), ("lan", "private")])
def test_node_learns_its_reachability(
    topology: dict[str, Any], where: str, expected: str, version: str
) -> None:
    server = _server(topology)
    ns, ip = topology[where]
    port = PORT + int(version)
    flags = ["--autonat-v2"] if version == "2" else []
    lines = _listen(
        topology["topo"], ns, ip, "--bootstrap", server, "--autonat-delay", "0", *flags, port=port
    )
    change = lines.wait_for("reachability")
    assert change["reachability"] == expected, change
    assert change["via"] == f"autonat/{version}"
    if expected == "public":
        assert change["dialed_at"] == f"/ip4/{ip}/tcp/{port}"
    else:
        # The NATed node keeps advertising only its LAN address (nothing observed counts).
        assert all("/192.168." in a for a in change["addrs"]), change
    if expected == "private" and version == "2":
        # v2 checked the guess "our listen port on the router's public IP", and it failed.
        assert change["dialed_at"] == f"/ip4/{topology['router_ip']}/tcp/{port}"


def _peer_run(name: str) -> str:
    from peers import build_peer

    return str(build_peer(name) / "run")


def _probe(topology: dict[str, Any], name: str, where: str, server: str) -> dict[str, Any]:
    ns, ip = topology[where]
    argv = [_peer_run(name), "autonat-probe", server, "--listen", f"/ip4/{ip}/tcp/{PORT + 5}"]
    out = subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    for line in out.stdout.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        if "autonat_status" in record:
            return dict(record)
    raise AssertionError(f"{name} printed no result: {out.stdout!r} {out.stderr[-2000:]!r}")


@pytest.mark.interop
@pytest.mark.parametrize("name", ["go-peer", "rust-peer"])
@pytest.mark.parametrize(("where", "status"), [("public", "OK"), ("lan", "E_DIAL_ERROR")])
def test_their_client_through_the_nat_asks_our_server(
    topology: dict[str, Any], name: str, where: str, status: str
) -> None:
    result = _probe(topology, name, where, _server(topology))
    assert result["autonat_status"] == status, result


@pytest.mark.interop
@pytest.mark.parametrize("name", ["go-peer", "rust-peer"])
@pytest.mark.parametrize(("where", "expected"), [("public", "public"), ("lan", "private")])
def test_our_node_asks_their_server(
    topology: dict[str, Any], name: str, where: str, expected: str
) -> None:
    ns, ip = topology["server"]
    port = {"go-peer": PORT + 10, "rust-peer": PORT + 11}[name]
    key = f"{name}_addr"
    if key not in topology:
        proc = topology["topo"].popen(
            ns,
            [_peer_run(name), "autonat-serve", "--listen", f"/ip4/{ip}/tcp/{port}"],
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("LISTENING "), line
        topology[key] = line.split(" ", 1)[1].strip()
    node_ns, node_ip = topology[where]
    lines = _listen(
        topology["topo"],
        node_ns,
        node_ip,
        "--bootstrap",
        topology[key],
        "--autonat-delay",
        "0",
        port=PORT + 20 + (name == "rust-peer"),
    )
    change = lines.wait_for("reachability")
    assert change["reachability"] == expected, change


def test_port_forward_seen_by_four_observers_is_advertised_and_public(
    topology: dict[str, Any],
) -> None:
    """A host behind a router that forwards its port: four peers on the public network dial
    it at the router's address; once all four reported that address (identify's observed
    address, four distinct IPs, on the listen port) the host advertises it, and AutoNAT's
    dial-back through the forward makes it public."""
    server = _server(topology)
    ns, ip = topology["fwd"]
    router = topology["fwd_router_ip"]
    topo = topology["topo"]
    node = _listen(topo, ns, ip, "--bootstrap", server, "--autonat-delay", "3", port=FORWARDED)
    own = node.wait_for("addrs")["addrs"]
    peer_id = own[0].rsplit("/p2p/", 1)[1]
    forwarded = f"/ip4/{router}/tcp/{FORWARDED}/p2p/{peer_id}"
    assert forwarded not in own
    for obs_ns, obs_ip in topology["observers"]:
        _listen(topo, obs_ns, obs_ip, "--bootstrap", forwarded, port=PORT + 30)
    seen = node.wait_for_all("advertising", "reachability")
    assert forwarded in seen["advertising"]["advertising"], seen
    assert seen["reachability"]["reachability"] == "public", seen


def _their_server(topology: dict[str, Any], name: str, command: str, port: int) -> str:
    """go-peer or rust-peer ``command`` (an AutoNAT server) on the server's namespace."""
    key = f"{name}-{command}"
    if key not in topology:
        ns, ip = topology["server"]
        args = [_peer_run(name), command, "--listen", f"/ip4/{ip}/tcp/{port}"]
        if name == "go-peer" and command == "autonat2-serve":
            args.append("--public-only")  # as on the internet: 11.0.0.0/24 is global
        proc = topology["topo"].popen(ns, args, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("LISTENING "), line
        topology[key] = line.split(" ", 1)[1].strip()
    return str(topology[key])


@pytest.mark.interop
@pytest.mark.parametrize("name", ["go-peer", "rust-peer"])
@pytest.mark.parametrize(("where", "expected"), [("public", "public"), ("lan", "private")])
def test_our_v2_node_asks_their_v2_server(
    topology: dict[str, Any], name: str, where: str, expected: str
) -> None:
    """AutoNAT v2 through the NAT: the NATed node asks about its listen port on the router's
    public IP (the observed-IP guess), which their server cannot dial."""
    port = {"go-peer": PORT + 12, "rust-peer": PORT + 13}[name]
    server = _their_server(topology, name, "autonat2-serve", port)
    ns, ip = topology[where]
    lines = _listen(
        topology["topo"],
        ns,
        ip,
        "--bootstrap",
        server,
        "--autonat-delay",
        "0",
        "--autonat-v2",
        port=PORT + 40 + (name == "rust-peer"),
    )
    change = lines.wait_for("reachability")
    assert change["reachability"] == expected, change
    assert change["via"] == "autonat/2"


@pytest.mark.interop
def test_go_v2_client_on_the_public_network_asks_our_server(topology: dict[str, Any]) -> None:
    ns, ip = topology["public"]
    argv = [
        _peer_run("go-peer"),
        "autonat2-check",
        _server(topology),
        "--listen",
        f"/ip4/{ip}/tcp/{PORT + 50}",
        "--public-only",
    ]
    out = subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["autonat2_reachability"] == "Public", result
