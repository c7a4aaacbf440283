"""Port mapping through a real gateway: Debian's miniupnpd (nftables backend) on the router
of a NATed LAN, speaking UPnP IGD, PCP and NAT-PMP.

``rapidp2p listen --nat-portmap`` on the LAN maps its TCP and QUIC (UDP) ports on the router
and prints the mapped addresses; a node on the public network pings it at those addresses
(TCP, then QUIC), which only works through the mapping (the router refuses unsolicited
inbound connections otherwise); after the host closes, the gateway's table no longer has the
mappings (miniupnpd's nftables chains, and UPnP's GetSpecificPortMappingEntry). One test maps
via UPnP, one via PCP (miniupnpd answers PCP; the NAT-PMP fallback is unit-tested against a
NAT-PMP-only fake in tests/unit/test_nat_portmap.py).

Root only (namespaces), with ``miniupnpd`` installed from Debian (``miniupnpd-nftables``,
installed with apt-get when missing); skipped with the reason elsewhere, never under
``CI=true``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nat_topology import Topology, repo_python, unavailable
from test_autonat_netns import Lines

pytestmark = [pytest.mark.timeout(300)]

#: miniupnpd's own nftables table (chains it fills; the topology's tables are left alone).
MINIUPNPD_RULES = """table inet miniupnpd {
 chain forward {
  type filter hook forward priority -1; policy accept;
  jump miniupnpd
 }
 chain miniupnpd {
 }
 chain prerouting {
  type nat hook prerouting priority -101; policy accept;
  jump prerouting_miniupnpd
 }
 chain postrouting {
  type nat hook postrouting priority 99; policy accept;
  jump postrouting_miniupnpd
 }
 chain prerouting_miniupnpd {
 }
 chain postrouting_miniupnpd {
 }
}
"""


def _miniupnpd_unavailable() -> str | None:
    if shutil.which("miniupnpd") is None and shutil.which("apt-get") is not None:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "miniupnpd-nftables"],
            capture_output=True,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
            timeout=600,
            check=False,
        )
    if shutil.which("miniupnpd") is None:
        return "miniupnpd is not installed (apt-get install miniupnpd-nftables)"
    return None


@pytest.fixture(scope="module")
def gateway() -> Iterator[dict[str, Any]]:
    reason = unavailable() or _miniupnpd_unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"port mapping tests must run under CI: {reason}")
        pytest.skip(reason)
    with Topology() as topo, tempfile.TemporaryDirectory() as tmp:
        pub_ns, pub_ip = topo.public_host("pub")
        lan_ns, lan_ip, router_ip = topo.natted_host("lan")
        router_ns = topo.ns("lanr")
        subprocess.run(
            ["ip", "netns", "exec", router_ns, "nft", "-f", "-"],
            input=MINIUPNPD_RULES,
            text=True,
            capture_output=True,
            check=True,
            timeout=60,
        )
        lan_net = lan_ip.rsplit(".", 1)[0] + ".0/24"
        conf = Path(tmp) / "miniupnpd.conf"
        conf.write_text(
            "ext_ifname=eth0\n"
            "listening_ip=lan0\n"
            "http_port=0\n"
            "enable_upnp=yes\n"
            "enable_natpmp=yes\n"  # NAT-PMP and PCP
            "secure_mode=yes\n"  # a client maps ports to itself only
            "system_uptime=yes\n"
            "upnp_table_name=miniupnpd\n"
            "upnp_nat_table_name=miniupnpd\n"
            f"lease_file={tmp}/leases\n"
            "uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b\n"
            f"allow 1024-65535 {lan_net} 1024-65535\n"
            "deny 0-65535 0.0.0.0/0 0-65535\n"
        )
        # -d: foreground (stopped with the topology), logging to stderr.
        log = open(Path(tmp) / "miniupnpd.log", "w")  # noqa: SIM115 - closed below
        topo.popen(
            router_ns,
            ["miniupnpd", "-d", "-f", str(conf), "-P", f"{tmp}/miniupnpd.pid"],
            stderr=log,
        )
        _wait_ready(Path(tmp) / "miniupnpd.log")
        try:
            yield {
                "topo": topo,
                "pub": (pub_ns, pub_ip),
                "lan": (lan_ns, lan_ip),
                "router": (router_ns, router_ip),
                "log": Path(tmp) / "miniupnpd.log",
            }
        finally:
            log.close()


_DNAT = re.compile(
    r"(0x6|0x11|tcp|udp)\s+(?:th\s+)?dport\s+(\d+)\s+dnat(?:\s+ip)?\s+to\s+([\d.]+):(\d+)"
)


def _wait_ready(log: Path) -> None:
    """Until miniupnpd says it serves HTTP (UPnP) and NAT-PMP/PCP (a loaded machine may take
    a while to start it)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "HTTP listening on port" in text and "NAT-PMP/PCP traffic" in text:
            return
        time.sleep(0.1)
    raise AssertionError(f"miniupnpd did not start: {log.read_text(errors='replace')[-2000:]}")


def _forwards(g: dict[str, Any]) -> set[tuple[str, int, str, int]]:
    """miniupnpd's port forwards, from its DNAT chain: (protocol, external port, internal
    IP, internal port). nft prints miniupnpd's protocol match as ``@nh,72,8 0x6 th dport``."""
    text = g["topo"].sh(
        g["router"][0], "nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd"
    )
    names = {"0x6": "tcp", "0x11": "udp", "tcp": "tcp", "udp": "udp"}
    return {(names[m[1]], int(m[2]), m[3], int(m[4])) for m in _DNAT.finditer(str(text))}


def _upnp_entry(g: dict[str, Any], protocol: str, port: int) -> Any:
    """GetSpecificPortMappingEntry asked from the LAN (our UPnP client, a fresh search)."""
    code = (
        "import asyncio, json\n"
        "from rapidp2p.nat.gateway import discover_upnp\n"
        "async def main():\n"
        "    gw = await discover_upnp(3)\n"
        f"    print(json.dumps(await gw.get_mapping({protocol!r}, {port})))\n"
        "asyncio.run(main())\n"
    )
    out = g["topo"].sh(g["lan"][0], sys.executable, "-c", code)
    return json.loads(out.strip().splitlines()[-1])


def _ping(g: dict[str, Any], addr: str) -> dict[str, Any]:
    argv = [*repo_python(), "ping", addr, "-c", "2", "-i", "0.2", "--json"]
    out = subprocess.run(
        ["ip", "netns", "exec", g["pub"][0], *argv], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, (addr, out.stdout[-2000:], out.stderr[-2000:])
    return {"stdout": out.stdout}


def _run_mapping(
    g: dict[str, Any], via: str, port: int, expect_kind: str, stop: signal.Signals
) -> None:
    topo = g["topo"]
    lan_ns, lan_ip = g["lan"]
    router_ip = g["router"][1]
    argv = [
        *repo_python(),
        "listen",
        "--listen",
        f"/ip4/0.0.0.0/tcp/{port}",
        "--listen",
        f"/ip4/0.0.0.0/udp/{port}/quic-v1",
        "--nat-portmap",
        "--nat-portmap-via",
        via,
        "--json",
    ]
    proc = topo.popen(lan_ns, argv, stderr=subprocess.DEVNULL)
    lines = Lines(proc)
    mapped: dict[str, dict[str, Any]] = {}
    while len(mapped) < 2:
        rec = lines.wait_for("port_mapping", timeout=60)
        assert rec["port_mapping"] == "mapped", rec
        mapped[rec["protocol"]] = rec
    for _proto, rec in mapped.items():
        assert rec["via"] == expect_kind, rec
        assert rec["external_ip"] == router_ip, rec
        assert rec["internal_port"] == port
        assert rec["external_port"] == port, rec  # the port was free: same as internal
    tcp_addr = mapped["tcp"]["addrs"][0]
    quic_addr = mapped["udp"]["addrs"][0]
    assert tcp_addr.startswith(f"/ip4/{router_ip}/tcp/{port}/p2p/"), tcp_addr
    assert quic_addr.startswith(f"/ip4/{router_ip}/udp/{port}/quic-v1/p2p/"), quic_addr
    # The host advertises them (Host.addrs, what identify sends): LocalAddressesChanged.
    while True:
        advertised = lines.wait_for("advertising", timeout=60)["advertising"]
        if tcp_addr in advertised and quic_addr in advertised:
            break

    # The gateway holds both (its DNAT rules to our LAN address).
    forwards = _forwards(g)
    assert ("tcp", port, lan_ip, port) in forwards, forwards
    assert ("udp", port, lan_ip, port) in forwards, forwards
    if expect_kind == "upnp":
        entry = _upnp_entry(g, "tcp", port)
        assert entry is not None and entry["NewInternalClient"] == lan_ip, entry
        assert entry["NewInternalPort"] == str(port), entry

    # A node on the public network reaches us at the mapped addresses only.
    _ping(g, tcp_addr)
    _ping(g, quic_addr)

    # Close the host (Ctrl-C, or SIGTERM as a service manager stops it): the mappings are
    # removed from the gateway.
    proc.send_signal(stop)
    assert proc.wait(60) == 0
    forwards = _forwards(g)
    assert not [f for f in forwards if f[1] == port], forwards
    if expect_kind == "upnp":
        assert _upnp_entry(g, "tcp", port) is None
        assert _upnp_entry(g, "udp", port) is None


def test_upnp_maps_tcp_and_quic_then_removes_them(gateway: dict[str, Any]) -> None:
    _run_mapping(gateway, "upnp", 4301, "upnp", signal.SIGINT)


def test_pcp_maps_tcp_and_quic_then_removes_them(gateway: dict[str, Any]) -> None:
    _run_mapping(gateway, "natpmp", 4302, "pcp", signal.SIGTERM)


def test_any_gateway_protocol_prefers_upnp(gateway: dict[str, Any]) -> None:
    """miniupnpd answers both searches; UPnP is preferred (the default --nat-portmap)."""
    _run_mapping(gateway, "any", 4304, "upnp", signal.SIGINT)


def test_without_the_mapping_the_public_node_cannot_dial(gateway: dict[str, Any]) -> None:
    """The control: the same host without --nat-portmap is not reachable at the router."""
    topo = gateway["topo"]
    lan_ns, _lan_ip = gateway["lan"]
    router_ip = gateway["router"][1]
    argv = [*repo_python(), "listen", "--listen", "/ip4/0.0.0.0/tcp/4303", "--json"]
    lines = Lines(topo.popen(lan_ns, argv, stderr=subprocess.DEVNULL))
    own = lines.wait_for("addrs")["addrs"]
    peer_id = own[0].rsplit("/p2p/", 1)[1]
    argv = [*repo_python(), "ping", f"/ip4/{router_ip}/tcp/4303/p2p/{peer_id}", "-c", "1"]
    out = subprocess.run(
        ["ip", "netns", "exec", gateway["pub"][0], *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0, out.stdout


def _lan_python(g: dict[str, Any], body: str) -> str:
    """Runs ``body`` (inside ``async def main``, our UPnP client at hand) on the LAN host."""
    code = (
        "import asyncio, json\n"
        "from rapidp2p.nat.gateway import discover_upnp\n"
        "async def main():\n"
        "    gw = await discover_upnp(3)\n"
        + "".join(f"    {line}\n" for line in body.splitlines())
        + "asyncio.run(main())\n"
    )
    return str(g["topo"].sh(g["lan"][0], sys.executable, "-c", code))


@pytest.mark.parametrize(("via", "port"), [("upnp", 4305), ("natpmp", 4306)])
def test_a_taken_external_port_gets_another(gateway: dict[str, Any], via: str, port: int) -> None:
    """Another mapping holds external port ``port`` (to another internal port): ours gets
    the port the gateway gives, works, and on close only ours is removed."""
    topo = gateway["topo"]
    lan_ns, lan_ip = gateway["lan"]
    router_ip = gateway["router"][1]
    _lan_python(gateway, f"await gw.add('tcp', {port + 90}, {port}, 3600)")
    try:
        assert ("tcp", port, lan_ip, port + 90) in _forwards(gateway)
        argv = [
            *repo_python(),
            "listen",
            "--listen",
            f"/ip4/0.0.0.0/tcp/{port}",
            "--nat-portmap",
            "--nat-portmap-via",
            via,
            "--json",
        ]
        proc = topo.popen(lan_ns, argv, stderr=subprocess.DEVNULL)
        rec = Lines(proc).wait_for("port_mapping", timeout=60)
        assert rec["port_mapping"] == "mapped" and rec["protocol"] == "tcp", rec
        external = rec["external_port"]
        assert external != port, rec
        assert rec["addrs"][0].startswith(f"/ip4/{router_ip}/tcp/{external}/p2p/"), rec
        assert ("tcp", external, lan_ip, port) in _forwards(gateway)
        _ping(gateway, rec["addrs"][0])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        forwards = _forwards(gateway)
        assert ("tcp", external, lan_ip, port) not in forwards, forwards
        assert ("tcp", port, lan_ip, port + 90) in forwards, forwards  # not ours: kept
    finally:
        _lan_python(gateway, f"await gw.delete('tcp', {port + 90}, {port})")


RENEWING_NODE = """
import asyncio, json, sys
from rapidp2p import Host, HostConfig
from rapidp2p.nat import PortMapConfig, PortMappingChanged

async def main():
    cfg = PortMapConfig(methods=("upnp",), lease=LEASE, renew_fraction=0.25)
    host = await Host.create(listen=["/ip4/0.0.0.0/tcp/PORT"], config=HostConfig(port_mapping=cfg))
    try:
        with host.events.subscribe(PortMappingChanged) as sub:
            async for ev in sub:
                print(json.dumps({"port_mapping": ev.mapped, "port": ev.external_port}), flush=True)
    finally:
        await host.close()

try:
    asyncio.run(main())
except KeyboardInterrupt:
    pass
"""


def test_a_short_lease_is_renewed_before_it_runs_out(gateway: dict[str, Any]) -> None:
    """A 20 s lease renewed every 5 s: after twice the lease the gateway still forwards the
    port, while a control mapping with the same lease that nobody renews is gone (miniupnpd
    drops expired mappings)."""
    lease, port = 20, 4307
    topo = gateway["topo"]
    lan_ns, lan_ip = gateway["lan"]
    code = RENEWING_NODE.replace("LEASE", str(lease)).replace("PORT", str(port))
    proc = topo.popen(lan_ns, [sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    lines = Lines(proc)
    rec = lines.wait_for("port_mapping", timeout=60)
    assert rec == {"port_mapping": True, "port": port}, rec
    _lan_python(gateway, f"await gw.add('tcp', {port + 1}, {port + 1}, {lease})")  # control
    assert ("tcp", port + 1, lan_ip, port + 1) in _forwards(gateway)
    time.sleep(2 * lease)
    forwards = _forwards(gateway)
    assert ("tcp", port + 1, lan_ip, port + 1) not in forwards, forwards  # expired
    assert ("tcp", port, lan_ip, port) in forwards, forwards  # renewed
    entry = _upnp_entry(gateway, "tcp", port)
    assert entry is not None and 0 < int(entry["NewLeaseDuration"]) <= lease, entry
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    assert ("tcp", port, lan_ip, port) not in _forwards(gateway)
