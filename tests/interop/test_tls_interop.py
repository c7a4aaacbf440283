"""rapidp2p over TLS 1.3 (``/tls/1.0.0``) + yamux against go-, rust-, js- and py-libp2p, both ways.

Each peer runs with ``--security tls`` (TLS is the only security protocol it offers), so a
connection that works proves the TLS handshake, the libp2p certificate extension both ways, the
ALPN muxer choice and the record layer under yamux: ping, identify and an echo stream carrying
pseudo-random bytes intact (16 MiB; 4 MiB with py-libp2p, whose yamux is slow).
"""

from __future__ import annotations

import pytest
from peers import PeerProcess, dial_from_peer, find_result
from test_rapidp2p_interop import ECHO_BYTES, _echo_through

from rapidp2p.host import Host, HostConfig, PeerConnected
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.echo import handle_echo

TLS = "/tls/1.0.0"
PEERS = ["go-peer", "rust-peer", "js-peer", "py-peer"]
SECURITY_TLS = ["--security", "tls"]

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]


async def check_rapidp2p_dials(
    name: str, config: HostConfig, extra_args: list[str], security: str, size: int
) -> None:
    """rapidp2p dials peer ``name`` (one security protocol each): ping, identify, echo."""
    async with PeerProcess(name, extra_args=extra_args) as peer, Host(config=config) as host:
        maddr = Multiaddr(peer.addr)
        _, peer_id = maddr.split_peer_id()
        assert peer_id is not None
        conn = await host.connect(maddr)
        assert conn.remote_peer == peer_id
        assert conn.security == security
        assert conn.muxer == "/yamux/1.0.0"
        assert len(await host.ping(peer_id, 3)) == 3
        info = await host.identify.identify_peer(conn)
        assert info.peer_id == peer_id
        assert info.public_key is not None and PeerId.from_public_key(info.public_key) == peer_id
        received, same = await _echo_through(host, peer_id, size)
        assert received == size and same


async def check_peer_dials_rapidp2p(
    name: str, config: HostConfig | None, extra_args: list[str], security: str, size: int
) -> None:
    """Peer ``name`` dials a listening rapidp2p host: ping, identify, echo; the host sees
    ``security`` and the dialer's key."""
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=config) as host:
        host.set_stream_handler("/echo/1.0.0", handle_echo)
        connected = host.events.subscribe(PeerConnected)
        results = await dial_from_peer(
            name,
            str(host.full_addrs[0]),
            ping=True,
            identify=True,
            echo_bytes=size,
            extra_args=extra_args,
        )
        assert find_result(results, "ping_rtt_ms")["ping_rtt_ms"] > 0
        ident = find_result(results, "identify")["identify"]
        assert ident["agent_version"].startswith("rapidp2p/")
        assert find_result(results, "echo_bytes") == {"echo_bytes": size, "ok": True}
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        assert event.conn is not None and event.conn.security == security
        key = host.peerstore.pubkey(event.peer_id)
        assert key is not None and PeerId.from_public_key(key) == event.peer_id


@pytest.mark.parametrize("name", PEERS)
async def test_rapidp2p_dials_peer_over_tls(name: str) -> None:
    config = HostConfig(security_protocols=[TLS])
    await check_rapidp2p_dials(name, config, SECURITY_TLS, TLS, ECHO_BYTES[name])


@pytest.mark.parametrize("name", PEERS)
async def test_peer_dials_rapidp2p_over_tls(name: str) -> None:
    # The default listener accepts /tls/1.0.0 beside /noise.
    await check_peer_dials_rapidp2p(name, None, SECURITY_TLS, TLS, ECHO_BYTES[name])
