"""rapidp2p over QUIC v1 (``/udp/N/quic-v1``) against go-libp2p (quic-go), rust-libp2p
(quinn) and js-libp2p on Node.js (``@chainsafe/libp2p-quic``, a native module), both ways:
ping, identify (the peer's QUIC address among its listen addresses, the identity key proved by
the TLS certificate) and a 16 MiB echo stream, on loopback.

QUIC streams are the libp2p streams here (no yamux) and the connection reports
``/tls/1.0.0`` as its security; multistream-select runs on every stream as over TCP.

py-libp2p 0.8.1 (``new_host(enable_quic=True)``, aioquic underneath) connects both ways over
QUIC with ping and identify (below); what it lacks: its identify over QUIC reports our
observed address as ``/tcp`` (not asserted), and an echo stream of 64 KiB or more ends in a
``StreamReset`` on its side (seen on main too, so no echo here; see the report of issue 11).
"""

from __future__ import annotations

import pytest
from peers import PeerProcess, dial_from_peer, find_result
from test_rapidp2p_interop import ECHO_BYTES, _echo_through

from rapidp2p.host import Host, PeerConnected
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.transport.quic import is_quic_addr

PEERS = ["go-peer", "rust-peer", "js-peer"]
QUIC_LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1"

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]


@pytest.mark.parametrize("name", PEERS)
async def test_rapidp2p_dials_peer_over_quic(name: str) -> None:
    async with PeerProcess(name, QUIC_LISTEN) as peer, Host() as host:
        maddr = Multiaddr(peer.addr)
        assert is_quic_addr(maddr), peer.addr
        _, peer_id = maddr.split_peer_id()
        assert peer_id is not None
        conn = await host.connect(maddr)
        assert conn.remote_peer == peer_id
        assert conn.security == "/tls/1.0.0" and conn.muxer == "quic"
        assert len(await host.ping(peer_id, 3)) == 3
        ident = host.identify
        assert ident is not None
        info = await ident.identify_peer(conn)
        assert info.peer_id == peer_id
        assert info.public_key is not None and PeerId.from_public_key(info.public_key) == peer_id
        assert any(is_quic_addr(a) for a in info.listen_addrs), info.listen_addrs
        assert info.observed_addr is not None and is_quic_addr(info.observed_addr)
        size = ECHO_BYTES[name]
        received, same = await _echo_through(host, peer_id, size)
        assert received == size and same


@pytest.mark.parametrize("name", PEERS)
async def test_peer_dials_rapidp2p_over_quic(name: str) -> None:
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0", QUIC_LISTEN]) as host:
        host.set_stream_handler("/echo/1.0.0", handle_echo)
        connected = host.events.subscribe(PeerConnected)
        addr = next(a for a in host.full_addrs if is_quic_addr(a))
        size = ECHO_BYTES[name]
        results = await dial_from_peer(name, str(addr), ping=True, identify=True, echo_bytes=size)
        assert find_result(results, "ping_rtt_ms")["ping_rtt_ms"] > 0
        ident = find_result(results, "identify")["identify"]
        assert ident["agent_version"].startswith("rapidp2p/")
        # Identify over QUIC tells both of our addresses.
        listed = ident.get("listen_addrs", [])
        assert any("/quic-v1" in a for a in listed) and any("/tcp/" in a for a in listed), ident
        assert find_result(results, "echo_bytes") == {"echo_bytes": size, "ok": True}
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        assert event.conn is not None and event.conn.muxer == "quic"
        key = host.peerstore.pubkey(event.peer_id)
        assert key is not None and PeerId.from_public_key(key) == event.peer_id


async def test_py_libp2p_over_quic_ping_and_identify_both_ways() -> None:
    async with PeerProcess("py-peer", QUIC_LISTEN) as peer, Host() as host:
        maddr = Multiaddr(peer.addr)
        assert is_quic_addr(maddr), peer.addr
        _, peer_id = maddr.split_peer_id()
        assert peer_id is not None
        conn = await host.connect(maddr)
        assert conn.muxer == "quic" and conn.security == "/tls/1.0.0"
        assert len(await host.ping(peer_id, 2)) == 2
        ident = host.identify
        assert ident is not None
        info = await ident.identify_peer(conn)
        assert info.public_key is not None and PeerId.from_public_key(info.public_key) == peer_id
        assert any(is_quic_addr(a) for a in info.listen_addrs), info.listen_addrs
    async with await Host.create(listen=[QUIC_LISTEN]) as host:
        connected = host.events.subscribe(PeerConnected)
        addr = next(a for a in host.full_addrs if is_quic_addr(a))
        results = await dial_from_peer("py-peer", str(addr), ping=True, identify=True)
        assert find_result(results, "ping_rtt_ms")["ping_rtt_ms"] > 0
        ident = find_result(results, "identify")["identify"]
        assert ident["agent_version"].startswith("rapidp2p/")
        assert any("/quic-v1" in a for a in ident.get("listen_addrs", [])), ident
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        assert event.conn is not None and event.conn.muxer == "quic"
