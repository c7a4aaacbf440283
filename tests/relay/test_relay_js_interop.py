"""Circuit Relay v2 with js-libp2p as a relay client over TCP (``@libp2p/circuit-relay-v2``):
it reserves on our relay and is reached through it, and it dials a rapidp2p node through our
relay."""

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
JS = "js-peer"

pytestmark = [pytest.mark.interop, pytest.mark.peers(JS), pytest.mark.timeout(180)]


async def test_rapidp2p_relay_js_listens() -> None:
    async with await Host.create(listen=[TCP]) as relay, await Host.create() as bob:
        svc = await relay.add_service(RelayService(relay))
        relay_addr = str(relay.full_addrs[0])
        listen_args = ["--relay", relay_addr]
        async with PeerProcess(JS, command="relay-listen", extra_args=listen_args) as js:
            assert "/p2p-circuit/p2p/" in js.addr
            assert svc.stats.get("reserved") == 1
            conn = await bob.connect(Multiaddr(js.addr))
            assert conn.limited
            js_id = PeerId.from_string(js.peer_id)
            assert len(await bob.ping(js_id, 2)) == 2
            # Eager negotiation: js-libp2p 3.x drops a stream whose header, data and FIN
            # arrive together (lazy negotiation, then close before its answer), direct too.
            stream = await bob.new_stream(js_id, ECHO, lazy=False)
            payload = b"through our relay to js-libp2p" * 100
            stream.write(payload)
            await stream.close()
            assert await stream.read() == payload


async def test_rapidp2p_relay_js_dials() -> None:
    async with await Host.create(listen=[TCP]) as relay, await Host.create() as alice:
        from rapidp2p.protocols.echo import handle_echo

        svc = await relay.add_service(RelayService(relay))
        alice.set_stream_handler(ECHO, handle_echo)
        circuit = await alice.listen(f"{relay.full_addrs[0]}/p2p-circuit")
        target = f"{circuit[0]}/p2p/{alice.peer_id}"
        results: list[dict[str, Any]] = await run_dial_async(
            JS, target, "--ping", "--echo-bytes", "4096", command="relay-dial"
        )
        assert results[0] == {"limited": True}, json.dumps(results)
        assert any("ping_rtt_ms" in r for r in results)
        assert {"echo_bytes": 4096, "ok": True} in results
        assert svc.stats.get("connected", 0) >= 1
