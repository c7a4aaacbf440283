"""Circuit Relay v2 against rust-libp2p (``libp2p-relay``), every role: its relay with rapidp2p
at both ends; our relay with rust-libp2p as the listener (it reserves, answers STOP) and as
the dialer (it sends CONNECT on hop)."""

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
RUST = "rust-peer"

pytestmark = [pytest.mark.interop, pytest.mark.peers(RUST), pytest.mark.timeout(180)]


async def _echo_roundtrip(host: Host, peer: PeerId, payload: bytes) -> bytes:
    stream = await host.new_stream(peer, ECHO)
    stream.write(payload)
    await stream.close()
    return await stream.read()


async def test_rust_relay_rapidp2p_both_ends() -> None:
    async with (
        PeerProcess(RUST, command="relay", extra_args=["serve"]) as relay,
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


async def test_rapidp2p_relay_rust_listens() -> None:
    async with await Host.create(listen=[TCP]) as relay, await Host.create() as bob:
        svc = await relay.add_service(RelayService(relay))
        relay_addr = str(relay.full_addrs[0])
        listen_args = ["listen", "--relay", relay_addr]
        async with PeerProcess(RUST, command="relay", extra_args=listen_args) as rust:
            assert rust.addr.startswith(f"{relay_addr}/p2p-circuit/p2p/")
            assert svc.stats.get("reserved") == 1
            conn = await bob.connect(Multiaddr(rust.addr))
            assert conn.limited
            rust_id = PeerId.from_string(rust.peer_id)
            assert len(await bob.ping(rust_id, 2)) == 2
            payload = b"through our relay to rust-libp2p" * 100
            assert await _echo_roundtrip(bob, rust_id, payload) == payload
            assert svc.stats.get("connected", 0) >= 1


async def test_rapidp2p_relay_rust_dials() -> None:
    async with await Host.create(listen=[TCP]) as relay, await Host.create() as alice:
        from rapidp2p.protocols.echo import handle_echo

        svc = await relay.add_service(RelayService(relay))
        alice.set_stream_handler(ECHO, handle_echo)
        circuit = await alice.listen(f"{relay.full_addrs[0]}/p2p-circuit")
        target = f"{circuit[0]}/p2p/{alice.peer_id}"
        results: list[dict[str, Any]] = await run_dial_async(
            RUST, "dial", target, "--ping", "--echo-bytes", "4096", command="relay"
        )
        assert results[0] == {"limited": True}, json.dumps(results)
        assert any("ping_rtt_ms" in r for r in results)
        assert {"echo_bytes": 4096, "ok": True} in results
        assert svc.stats.get("connected", 0) >= 1
