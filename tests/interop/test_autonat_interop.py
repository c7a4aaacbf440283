"""AutoNAT v1 (``/libp2p/autonat/1.0.0``) against go-libp2p and rust-libp2p, and AutoNAT v2
against go-libp2p (its ``autonatv2`` with ``AllowPrivateAddrs``) and rust-libp2p
(``autonat::v2``), both directions, on loopback.

* Their clients ask our server (``AutoNATConfig(serve=True, allow_private=True)``): a peer that
  listens is dialed back (``OK``), one that cannot be dialed gets ``E_DIAL_ERROR``.
* Our client asks their servers. rust-libp2p (``only_global_ips = false``) dials us back, so we
  learn ``public``; it answers ``E_DIAL_ERROR`` for an address nobody listens on, and we learn
  ``private``. go-libp2p's server has no switch for non-global IPs: on loopback it answers
  ``E_DIAL_REFUSED`` ("blocked observed address"), which must leave us ``unknown`` (the
  network-namespace test, tests/nat/, shows go's server dialing a public address back).
"""

from __future__ import annotations

import json

import pytest
from peers import PeerProcess, find_result, run_dial_async

from rapidp2p import Host
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.autonat import (
    AutoNAT,
    AutoNATConfig,
    AutoNATv2,
    AutoNATv2Config,
    Reachability,
    ResponseStatus,
)
from rapidp2p.protocols.autonat._proto_v2 import DialStatus
from rapidp2p.protocols.autonat._proto_v2 import ResponseStatus as V2Status

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


# ---- AutoNAT v2 against go-libp2p's autonatv2 (AllowPrivateAddrs: loopback) ---------------

V2_SERVER = AutoNATv2Config(serve=True, allow_private=True, dial_timeout=10.0)


async def _check_from_go(server: str, *flags: str) -> dict[str, object]:
    results = await run_dial_async("go-peer", server, *flags, command="autonat2-check")
    return find_result(results, "autonat2_reachability")


@pytest.mark.parametrize(
    ("listen", "addr", "expected", "dial_data"),
    [
        ("/ip4/127.0.0.1/tcp/0", None, "Public", False),
        # An address on another IP than the one go dials us from: dial data first (go reuses
        # its listen port for dials, so its own listen address always has the observed IP).
        ("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.2/tcp/1", "Private", True),
        ("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/1", "Private", False),
    ],
)
async def test_go_v2_client_asks_our_server(
    listen: str, addr: str | None, expected: str, dial_data: bool
) -> None:
    async with Host() as host:
        await host.listen(TCP)
        svc = await host.add_service(AutoNATv2(host, V2_SERVER))
        flags = ["--listen", listen] + (["--addr", addr] if addr else [])
        result = await _check_from_go(str(host.full_addrs[0]), *flags)
        assert result["autonat2_reachability"] == expected, result
        if dial_data:
            assert 30_000 <= svc.dial_data_received <= 100_000
        else:
            assert svc.dial_data_received == 0


@pytest.mark.parametrize(
    ("listen", "dead", "dial_status", "dial_data"),
    [
        ("/ip4/127.0.0.1/tcp/0", False, DialStatus.OK, False),
        ("/ip4/127.0.0.2/tcp/0", False, DialStatus.OK, True),
        ("/ip4/127.0.0.1/tcp/0", True, DialStatus.E_DIAL_ERROR, False),
    ],
)
async def test_our_v2_client_asks_go_server(
    listen: str, dead: bool, dial_status: DialStatus, dial_data: bool
) -> None:
    async with PeerProcess("go-peer", command="autonat2-serve") as peer, Host() as host:
        await host.listen(listen)
        v2 = await host.add_service(AutoNATv2(host))
        await host.connect(Multiaddr(peer.addr))
        addrs = [Multiaddr("/ip4/127.0.0.1/tcp/1")] if dead else host.listen_addrs
        result = await v2.check(PeerId.from_string(peer.peer_id), addrs)
        assert result.status == V2Status.OK, result
        assert result.dial_status == dial_status, result
        assert (result.dial_data_sent > 0) is dial_data, result
        if dial_status == DialStatus.OK:
            assert result.verified
            assert host.reachability is Reachability.PUBLIC
        else:
            assert host.reachability is Reachability.PRIVATE


# ---- AutoNAT v2 against rust-libp2p's autonat::v2 ------------------------------------------


async def test_rust_v2_client_asks_our_server() -> None:
    """rust-libp2p sends dial requests on its outbound connections only (inbound ones are for
    dial-backs): it dials us, identify translates what we see (its ephemeral port) into its
    listen port on that IP, and its client asks us to check that candidate."""
    async with Host() as host:
        await host.listen(TCP)
        svc = await host.add_service(AutoNATv2(host, V2_SERVER))
        args = ["--connect", str(host.full_addrs[0])]
        async with PeerProcess("rust-peer", command="autonat2-client", extra_args=args) as peer:
            line = json.loads(await peer.next_line(timeout=60))
            assert line["ok"] is True, line
            assert peer.addr.startswith(line["autonat2_tested"]), line
            # rust-libp2p sends one address; ours is on the IP we see it at: no dial data.
            assert line["bytes_sent"] == 0, line
            assert svc.served.get("OK/OK") == 1


@pytest.mark.parametrize(
    ("listen", "dead", "dial_status"),
    [
        ("/ip4/127.0.0.1/tcp/0", False, DialStatus.OK),
        ("/ip4/127.0.0.2/tcp/0", False, DialStatus.OK),
        ("/ip4/127.0.0.1/tcp/0", True, DialStatus.E_DIAL_ERROR),
    ],
)
async def test_our_v2_client_asks_rust_server(
    listen: str, dead: bool, dial_status: DialStatus
) -> None:
    """rust-libp2p's server (0.16) asks for dial data whenever the address differs from the
    connection's observed multiaddr, port included, so always here; we pay it."""
    async with PeerProcess("rust-peer", command="autonat2-serve") as peer, Host() as host:
        await host.listen(listen)
        v2 = await host.add_service(AutoNATv2(host))
        await host.connect(Multiaddr(peer.addr))
        addrs = [Multiaddr("/ip4/127.0.0.1/tcp/1")] if dead else host.listen_addrs
        result = await v2.check(PeerId.from_string(peer.peer_id), addrs)
        assert result.status == V2Status.OK, result
        assert result.dial_status == dial_status, result
        assert result.verified is (dial_status == DialStatus.OK)
        served = json.loads(await peer.next_line())  # "ok": the request was served
        assert served["served"] == str(addrs[0]), served
        assert 30_000 <= served["data_amount"] <= result.dial_data_sent, (served, result)
        assert host.reachability is (
            Reachability.PUBLIC if dial_status == DialStatus.OK else Reachability.PRIVATE
        )
