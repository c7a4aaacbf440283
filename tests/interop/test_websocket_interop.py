"""rapidp2p over WebSocket (``/ip4/127.0.0.1/tcp/N/ws``) against go-, js- and rust-libp2p, both
ways.

The peers run their stock WebSocket transports (go-libp2p's ``p2p/transport/websocket`` on
gorilla/websocket, js-libp2p's ``@libp2p/websockets`` on ``ws``, rust-libp2p's
``libp2p-websocket`` on soketto), with Noise and yamux inside the WebSocket stream: ping,
identify and a 16 MiB echo of pseudo-random bytes prove the opening handshake, binary framing
(masked from dialers), and that every upper layer is unchanged. ``/wss``:
test_websocket_tls_interop.py.
"""

from __future__ import annotations

import pytest
from peers import PeerProcess, dial_from_peer, find_result
from test_rapidp2p_interop import _echo_through

from rapidp2p.host import Host, PeerConnected
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.echo import handle_echo

PEERS = ["go-peer", "js-peer", "rust-peer"]
WS_LISTEN = "/ip4/127.0.0.1/tcp/0/ws"
ECHO = 16 * 1024 * 1024

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]


@pytest.mark.parametrize("name", PEERS)
async def test_rapidp2p_dials_peer_over_websocket(name: str) -> None:
    async with PeerProcess(name, WS_LISTEN) as peer, Host() as host:
        maddr = Multiaddr(peer.addr)
        assert "/ws/" in str(maddr), maddr
        _, peer_id = maddr.split_peer_id()
        assert peer_id is not None
        conn = await host.connect(maddr)
        assert conn.remote_peer == peer_id
        assert str(conn.remote_addr).endswith("/ws") or "/ws/" in str(conn.remote_addr)
        assert len(await host.ping(peer_id, 3)) == 3
        info = await host.identify.identify_peer(conn)
        assert info.peer_id == peer_id
        assert any("/ws" in str(a) for a in info.listen_addrs)
        received, same = await _echo_through(host, peer_id, ECHO)
        assert received == ECHO and same


@pytest.mark.parametrize("name", PEERS)
async def test_peer_dials_rapidp2p_over_websocket(name: str) -> None:
    async with await Host.create(listen=[WS_LISTEN]) as host:
        host.set_stream_handler("/echo/1.0.0", handle_echo)
        connected = host.events.subscribe(PeerConnected)
        target = str(host.full_addrs[0])
        assert "/ws/" in target
        results = await dial_from_peer(name, target, ping=True, identify=True, echo_bytes=ECHO)
        assert find_result(results, "ping_rtt_ms")["ping_rtt_ms"] > 0
        ident = find_result(results, "identify")["identify"]
        assert ident["agent_version"].startswith("rapidp2p/")
        assert find_result(results, "echo_bytes") == {"echo_bytes": ECHO, "ok": True}
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        assert event.conn is not None and str(event.conn.remote_addr).endswith("/ws")
        key = host.peerstore.pubkey(event.peer_id)
        assert key is not None and PeerId.from_public_key(key) == event.peer_id
