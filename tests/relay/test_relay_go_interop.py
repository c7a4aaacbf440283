"""Circuit Relay v2 against go-libp2p, every role: its relay with rapidp2p at both ends; our
relay with go-libp2p as the listener (it reserves, answers STOP) and as the dialer (it sends
CONNECT on hop)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from peers import PeerProcess, run_dial_async

from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.relay import RelayService

TCP = "/ip4/127.0.0.1/tcp/0"
ECHO = "/echo/1.0.0"
GO = "go-peer"

pytestmark = [pytest.mark.interop, pytest.mark.peers(GO), pytest.mark.timeout(180)]


async def _echo_roundtrip(host: Host, peer: PeerId, payload: bytes) -> bytes:
    stream = await host.new_stream(peer, ECHO)
    stream.write(payload)
    await stream.close()
    return await stream.read()


async def test_go_relay_rapidp2p_both_ends() -> None:
    async with (
        PeerProcess(GO, command="relay-serve") as relay,
        await Host.create(listen=[TCP]) as alice,
        await Host.create(listen=[TCP]) as bob,
    ):
        from rapidp2p.protocols.echo import handle_echo

        alice.set_stream_handler(ECHO, handle_echo)
        circuit = await alice.listen(f"{relay.addr}/p2p-circuit")
        assert circuit and all(str(a).endswith("/p2p-circuit") for a in circuit)
        conn = await bob.connect(f"{relay.addr}/p2p-circuit/p2p/{alice.peer_id}")
        assert conn.limited and conn.remote_peer == alice.peer_id
        assert len(await bob.ping(alice.peer_id, 2)) == 2
        payload = bytes(range(256)) * 16
        assert await _echo_roundtrip(bob, alice.peer_id, payload) == payload


async def test_rapidp2p_relay_go_listens() -> None:
    async with await Host.create(listen=[TCP]) as relay, await Host.create() as bob:
        svc = await relay.add_service(RelayService(relay))
        relay_addr = str(relay.full_addrs[0])
        listen_args = ["--relay", relay_addr]
        async with PeerProcess(GO, command="relay-listen", extra_args=listen_args) as go:
            assert go.addr.startswith(f"{relay_addr}/p2p-circuit/p2p/")
            assert svc.stats.get("reserved") == 1
            conn = await bob.connect(Multiaddr(go.addr))
            assert conn.limited
            go_id = PeerId.from_string(go.peer_id)
            assert len(await bob.ping(go_id, 2)) == 2
            payload = b"through our relay to go-libp2p" * 100
            assert await _echo_roundtrip(bob, go_id, payload) == payload
            assert svc.stats.get("connected", 0) >= 1


async def test_rapidp2p_relay_go_dials() -> None:
    async with await Host.create(listen=[TCP]) as relay, await Host.create() as alice:
        from rapidp2p.protocols.echo import handle_echo

        svc = await relay.add_service(RelayService(relay))
        alice.set_stream_handler(ECHO, handle_echo)
        circuit = await alice.listen(f"{relay.full_addrs[0]}/p2p-circuit")
        target = f"{circuit[0]}/p2p/{alice.peer_id}"
        results: list[dict[str, Any]] = await run_dial_async(
            GO, target, "--ping", "--echo-bytes", "4096", command="relay-dial"
        )
        assert results[0] == {"limited": True}, json.dumps(results)
        assert any("ping_rtt_ms" in r for r in results)
        assert {"echo_bytes": 4096, "ok": True} in results
        assert svc.stats.get("connected", 0) >= 1
