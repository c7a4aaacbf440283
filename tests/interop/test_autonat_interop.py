"""AutoNAT v1 (``/libp2p/autonat/1.0.0``) against go-libp2p and rust-libp2p, both directions,
on loopback.

* Their clients ask our server (``AutoNATConfig(serve=True, allow_private=True)``): a peer that
  listens is dialed back (``OK``), one that cannot be dialed gets ``E_DIAL_ERROR``.
* Our client asks their servers. rust-libp2p (``only_global_ips = false``) dials us back, so we
  learn ``public``; it answers ``E_DIAL_ERROR`` for an address nobody listens on, and we learn
  ``private``. go-libp2p's server has no switch for non-global IPs: on loopback it answers
  ``E_DIAL_REFUSED`` ("blocked observed address"), which must leave us ``unknown`` (the
  network-namespace test, tests/nat/, shows go's server dialing a public address back).
"""

from __future__ import annotations

import pytest
from peers import PeerProcess, find_result, run_dial_async

from rapidp2p import Host
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.autonat import (
    AutoNAT,
    AutoNATConfig,
    Reachability,
    ResponseStatus,
)

PEERS = ["go-peer", "rust-peer"]
TCP = "/ip4/127.0.0.1/tcp/0"

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

SERVER = AutoNATConfig(serve=True, probe=False, allow_private=True, dial_timeout=10.0)
CLIENT = AutoNATConfig(probe=False, request_timeout=60.0)


async def _probe_from(name: str, server: str, *flags: str) -> dict[str, object]:
    results = await run_dial_async(name, server, *flags, command="autonat-probe", timeout=120)
    return find_result(results, "autonat_status")


@pytest.mark.parametrize("name", PEERS)
async def test_their_client_is_dialed_back_by_our_server(name: str) -> None:
    async with Host() as host:
        await host.listen(TCP)
        svc = await host.add_service(AutoNAT(host, SERVER))
        result = await _probe_from(name, str(host.full_addrs[0]))
        assert result["autonat_status"] == "OK", result
        assert svc.served.get("OK") == 1


@pytest.mark.parametrize("name", PEERS)
async def test_their_unreachable_client_gets_dial_error(name: str) -> None:
    async with Host() as host:
        await host.listen(TCP)
        svc = await host.add_service(AutoNAT(host, SERVER))
        # No listener; rust-libp2p needs an address to send: one where nobody listens.
        flags = ["--no-listen"] + (
            ["--candidate", "/ip4/127.0.0.1/tcp/1"] if name == "rust-peer" else []
        )
        result = await _probe_from(name, str(host.full_addrs[0]), *flags)
        assert result["autonat_status"] == "E_DIAL_ERROR", result
        assert svc.served.get("E_DIAL_ERROR") == 1


@pytest.mark.parametrize("name", PEERS)
async def test_our_client_asks_their_server(name: str) -> None:
    async with PeerProcess(name, command="autonat-serve") as peer, Host() as host:
        await host.listen(TCP)
        autonat = await host.add_service(AutoNAT(host, CLIENT))
        server = Multiaddr(peer.addr)
        await host.connect(server)
        server_id = PeerId.from_string(peer.peer_id)
        result = await autonat.probe(server_id)
        if name == "go-peer":
            assert result.status == ResponseStatus.E_DIAL_REFUSED, result
            assert host.reachability is Reachability.UNKNOWN
        else:
            assert result.status == ResponseStatus.OK, result
            assert result.addr is not None
            assert str(result.addr).startswith(str(host.listen_addrs[0]))
            assert host.reachability is Reachability.PUBLIC
            line = await peer.next_line()
            assert '"inbound":"ok"' in line.replace(" ", ""), line


async def test_our_client_learns_private_from_rust_server() -> None:
    async with PeerProcess("rust-peer", command="autonat-serve") as peer, Host() as host:
        await host.listen(TCP)
        autonat = await host.add_service(AutoNAT(host, CLIENT))
        await host.connect(Multiaddr(peer.addr))
        dead = [Multiaddr("/ip4/127.0.0.1/tcp/1")]
        autonat._request_addrs = lambda _addr: dead  # type: ignore[method-assign,assignment]
        result = await autonat.probe(PeerId.from_string(peer.peer_id))
        assert result.status == ResponseStatus.E_DIAL_ERROR, result
        assert host.reachability is Reachability.PRIVATE
