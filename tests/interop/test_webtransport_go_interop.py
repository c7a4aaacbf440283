"""rapidp2p and go-libp2p over WebTransport, both ways (issue 14): ping and a 1 MiB echo.

The go side is ``go-wt-peer``, a module of its own pinned to go-libp2p v0.48.0
(webtransport-go v0.10.0, quic-go v0.59.0), not the main ``go-peer`` (go-libp2p v0.52.0):

- webtransport-go v0.13.0 (go-libp2p v0.52.0) refuses, as a client, a server whose QUIC
  transport parameters do not offer RESET_STREAM_AT (``reset_stream_at``, the partial-
  delivery reset), and rapidp2p's QUIC (quinn-proto 0.11) has no such extension: that go
  cannot dial us;
- webtransport-go v0.10.0 enables RESET_STREAM_AT on its own side but checks only its own
  configuration, never the peer's, so it dials us and we dial it. The go-libp2p versions the
  Go module proxy serves between the two (v0.49.0 to v0.51.0) were not needed.

rapidp2p's dial checks what a browser checks (the server's certificate must hash to one of
the address's ``/certhash`` values) and what the libp2p spec asks of a client that knows the
certificate it got: go's Noise extensions must list that certificate's hash.
"""

from __future__ import annotations

import os

import pytest
from peers import PeerProcess, dial_from_peer, find_result

from rapidp2p.exceptions import CertificateError, DialError
from rapidp2p.host import Host, PeerConnected
from rapidp2p.peer import Multiaddr
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.transport.webtransport import is_webtransport_addr

PEER = "go-wt-peer"
WT_LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1/webtransport"
ECHO = 1 << 20

pytestmark = [pytest.mark.interop, pytest.mark.peers(PEER), pytest.mark.timeout(180)]


async def test_rapidp2p_dials_go_over_webtransport() -> None:
    async with PeerProcess(PEER, WT_LISTEN) as peer, Host() as host:
        maddr = Multiaddr(peer.addr)
        assert is_webtransport_addr(maddr) and peer.addr.count("/certhash/") == 2, peer.addr
        _, peer_id = maddr.split_peer_id()
        assert peer_id is not None
        conn = await host.connect(maddr)
        assert conn.remote_peer == peer_id
        assert conn.muxer == "webtransport" and conn.security == "/noise"
        assert len(await host.ping(peer_id, 3)) == 3
        data = os.urandom(ECHO)
        st = await host.new_stream(peer_id, ["/echo/1.0.0"])
        st.write(data)
        await st.close()
        assert await st.read() == data


async def test_rapidp2p_refuses_go_with_a_wrong_certhash() -> None:
    async with PeerProcess(PEER, WT_LISTEN) as peer, Host() as host:
        head = peer.addr.split("/certhash/", 1)[0]
        # Both hashes replaced by one of another certificate (a digest of zeros).
        zeros = "uEiAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        wrong = f"{head}/certhash/{zeros}/p2p/{peer.peer_id}"
        with pytest.raises(DialError) as info:
            await host.connect(Multiaddr(wrong))
        assert any(isinstance(e, CertificateError) for e in info.value.errors.values()), info
        assert len(await host.ping(Multiaddr(peer.addr), 1)) == 1  # go still serves


async def test_go_dials_rapidp2p_over_webtransport() -> None:
    async with await Host.create(listen=[WT_LISTEN]) as host:
        host.set_stream_handler("/echo/1.0.0", handle_echo)
        connected = host.events.subscribe(PeerConnected)
        (target,) = host.full_addrs
        results = await dial_from_peer(PEER, str(target), ping=True, echo_bytes=ECHO)
        conn = find_result(results, "connected")["connected"]
        assert conn["remote_peer"] == str(host.peer_id)
        assert "/webtransport" in conn["remote_addr"] and conn["transport"] == "webtransport"
        assert find_result(results, "ping_rtt_ms")["ping_rtt_ms"] >= 0
        assert find_result(results, "echo_bytes") == {"echo_bytes": ECHO, "ok": True}
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        assert str(event.peer_id) == conn["local_peer"]
        assert event.conn is not None and event.conn.muxer == "webtransport"
