"""The discovery CLI: ``rapidp2p rendezvous serve|register|discover`` end to end, and
``rapidp2p peers --bootstrap /dnsaddr/...`` resolving through a stub DNS server on loopback
and connecting."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from dnsstub import DnsStub

from rapidp2p.host import Host

CLI = [sys.executable, "-m", "rapidp2p.cli"]
LOOP = "/ip4/127.0.0.1/tcp/0"


async def _run(*args: str, timeout: float = 60) -> list[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


async def test_rendezvous_cli_round_trip() -> None:
    server = await asyncio.create_subprocess_exec(
        *CLI,
        "rendezvous",
        "serve",
        "--listen",
        LOOP,
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        first = json.loads(await asyncio.wait_for(server.stdout.readline(), 60))
        addr = first["addrs"][0]
        reg = await _run(
            "rendezvous",
            "register",
            addr,
            "chat",
            "--ttl",
            "600",
            "--once",
            "--listen",
            LOOP,
            "--json",
        )
        assert reg[0]["registered"] == "chat" and reg[0]["ttl"] == 600
        found = await _run("rendezvous", "discover", addr, "chat", "--json")
        assert [r["peer_id"] for r in found[:-1]] == [reg[0]["peer_id"]]
        assert found[-1]["count"] == 1
        again = await _run(
            "rendezvous", "discover", addr, "chat", "--cookie", found[-1]["cookie"], "--json"
        )
        assert again == [{"cookie": again[0]["cookie"], "count": 0}]
    finally:
        server.kill()
        await server.wait()


async def test_peers_bootstrap_dnsaddr_connects() -> None:
    async with await Host.create(listen=[LOOP]) as target:
        target_addr = str(target.addrs[0])
        table = {"_dnsaddr.boot.test": [f"dnsaddr={target.full_addrs[0]}"]}
        async with DnsStub(table) as dns:
            host, port = dns.address
            lines = await _run(
                "peers",
                "--listen",
                LOOP,
                "--bootstrap",
                "/dnsaddr/boot.test",
                "--dns-server",
                f"{host}:{port}",
                "--duration",
                "3",
                "--json",
            )
    events = {(o.get("event"), o.get("peer_id")) for o in lines}
    pid = str(target.peer_id)
    assert ("discovered", pid) in events and ("connected", pid) in events
    final = [o for o in lines if o.get("event") == "peer"]
    assert final == [
        {
            "event": "peer",
            "peer_id": pid,
            "source": "bootstrap",
            "connected": True,
            "addrs": [target_addr],
        }
    ]
