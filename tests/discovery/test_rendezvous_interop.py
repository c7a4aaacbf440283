"""Rendezvous against rust-libp2p's ``libp2p-rendezvous``, both roles: its server with our
clients (register, discover with a cookie, unregister), and our server with its client (it
registers and discovers ours; we discover it, verify its signed record and connect)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from peers import PeerProcess

from rapidp2p.discovery.rendezvous import RendezvousClient, RendezvousServer
from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr, PeerId

TCP = "/ip4/127.0.0.1/tcp/0"
NS = "rapidp2p-interop"

pytestmark = [pytest.mark.interop, pytest.mark.peers("rust-peer"), pytest.mark.timeout(180)]


async def _until(peer: PeerProcess, key: str, timeout: float = 30.0) -> dict[str, Any]:
    """The next JSON line of ``peer`` that has ``key`` (other lines are skipped)."""
    while True:
        line = await peer.next_line(timeout)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and key in obj:
            return obj


async def test_rust_server_rapidp2p_clients() -> None:
    async with (
        PeerProcess("rust-peer", command="rendezvous", extra_args=["serve"]) as server,
        await Host.create(listen=[TCP]) as alice,
        await Host.create(listen=[TCP]) as bob,
    ):
        a, b = RendezvousClient(), RendezvousClient()
        await a.start(alice)
        await b.start(bob)
        ttl = await a.register(Multiaddr(server.addr), NS, 600)
        assert ttl == 600
        seen = await _until(server, "registered")
        assert seen == {"registered": NS, "peer": str(alice.peer_id), "ttl": 600}

        found, cookie = await b.discover(Multiaddr(server.addr), NS)
        assert [d.peer.peer_id for d in found] == [alice.peer_id]
        assert found[0].peer.addrs == alice.addrs  # alice's signed record, verified by us
        assert found[0].ns == NS and 0 < found[0].ttl <= 600
        assert cookie
        served = await _until(server, "discover_served")
        assert served["discover_served"] == 1
        # with the cookie: nothing new
        again, _ = await b.discover(PeerId.from_string(server.peer_id), NS, cookie=cookie)
        assert again == []
        await a.unregister(PeerId.from_string(server.peer_id), NS)
        gone = await _until(server, "unregistered")
        assert gone == {"unregistered": NS, "peer": str(alice.peer_id)}
        after, _ = await b.discover(PeerId.from_string(server.peer_id), NS)
        assert after == []
        await a.close()
        await b.close()


async def test_rapidp2p_server_rust_client() -> None:
    async with (
        await Host.create(listen=[TCP]) as server_host,
        await Host.create(listen=[TCP]) as alice,
    ):
        server = RendezvousServer()
        await server.start(server_host)
        server_ma = str(server_host.full_addrs[0])
        a = RendezvousClient()
        await a.start(alice)
        # rust-libp2p clients read only rust-libp2p's record kind
        await a.register(Multiaddr(server_ma), NS, 600, legacy=True)
        args = ["client", "--server", server_ma, "--register", NS, "--ttl", "600"]
        args += ["--discover", NS, "--min-results", "1", "--unregister", "other-ns"]
        async with PeerProcess("rust-peer", command="rendezvous", extra_args=args) as rust:
            registered = await _until(rust, "registered")
            assert registered == {"registered": NS, "ttl": 600}
            discovered = await _until(rust, "discovered")
            peers = {r["peer"]: r for r in discovered["discovered"]}
            assert str(alice.peer_id) in peers
            assert peers[str(alice.peer_id)]["addrs"] == [str(x) for x in alice.addrs]
            assert await _until(rust, "done") == {"done": True}

            found, _ = await a.discover(server_host.peer_id, NS)
            by_id = {d.peer.peer_id: d for d in found}
            rust_id = PeerId.from_string(rust.peer_id)
            assert rust_id in by_id, found
            rust_addr = Multiaddr(rust.addr).split_peer_id()[0]
            assert by_id[rust_id].peer.addrs == [rust_addr]
            await alice.connect(by_id[rust_id].peer, timeout=20)
            assert alice.is_connected(rust_id)
        assert server.stats["registered"] >= 2
        assert server.stats["discover_served"] >= 2
        await a.close()
        await server.close()
