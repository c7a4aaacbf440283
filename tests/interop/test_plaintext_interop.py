"""rapidp2p over ``/plaintext/2.0.0`` + yamux against go-libp2p (its ``insecure`` transport),
both ways.

go-peer runs with ``--security plaintext`` (the only security protocol it offers), so a
connection that works proves the Exchange message (encoded and decoded by the Rust ``proto``
crate, framed by ``rapidp2p.protocols.framing``), the peer-ID check on each side, the muxer
negotiated in the clear, then ping, identify and an echo stream carrying pseudo-random bytes
intact. rust-, js- and py-libp2p's interop peers offer no plaintext option.
"""

from __future__ import annotations

import pytest
from peers import PeerProcess, dial_from_peer, find_result
from test_rapidp2p_interop import _echo_through

from rapidp2p.host import Host, HostConfig, PeerConnected
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.echo import handle_echo

PLAINTEXT = "/plaintext/2.0.0"
PEERS = ["go-peer"]
SECURITY_PLAINTEXT = ["--security", "plaintext"]
ECHO_SIZE = 4 << 20

pytestmark = [pytest.mark.interop, pytest.mark.peers(*PEERS), pytest.mark.timeout(240)]


def _config() -> HostConfig:
    return HostConfig(enable_plaintext=True, security_protocols=[PLAINTEXT])


@pytest.mark.parametrize("name", PEERS)
async def test_rapidp2p_dials_peer_over_plaintext(name: str) -> None:
    async with (
        PeerProcess(name, extra_args=SECURITY_PLAINTEXT) as peer,
        Host(config=_config()) as host,
    ):
        maddr = Multiaddr(peer.addr)
        _, peer_id = maddr.split_peer_id()
        assert peer_id is not None
        conn = await host.connect(maddr)
        assert conn.remote_peer == peer_id
        assert conn.security == PLAINTEXT
        assert conn.muxer == "/yamux/1.0.0"
        assert len(await host.ping(peer_id, 3)) == 3
        info = await host.identify.identify_peer(conn)
        assert info.public_key is not None and PeerId.from_public_key(info.public_key) == peer_id
        received, same = await _echo_through(host, peer_id, ECHO_SIZE)
        assert received == ECHO_SIZE and same


@pytest.mark.parametrize("name", PEERS)
async def test_peer_dials_rapidp2p_over_plaintext(name: str) -> None:
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=_config()) as host:
        host.set_stream_handler("/echo/1.0.0", handle_echo)
        connected = host.events.subscribe(PeerConnected)
        results = await dial_from_peer(
            name,
            str(host.full_addrs[0]),
            ping=True,
            identify=True,
            echo_bytes=ECHO_SIZE,
            extra_args=SECURITY_PLAINTEXT,
        )
        assert find_result(results, "ping_rtt_ms")["ping_rtt_ms"] > 0
        assert find_result(results, "identify")["identify"]["agent_version"].startswith("rapidp2p/")
        assert find_result(results, "echo_bytes") == {"echo_bytes": ECHO_SIZE, "ok": True}
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        assert event.conn is not None and event.conn.security == PLAINTEXT
        key = host.peerstore.pubkey(event.peer_id)
        assert key is not None and PeerId.from_public_key(key) == event.peer_id
