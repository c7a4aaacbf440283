"""rust-libp2p (``libp2p-webrtc`` 0.10.0-alpha on webrtc-rs, tokio) dials rapidp2p's
WebRTC-direct listener: ICE-lite, DTLS with our certhash, Noise on data channel 0, then ping,
identify and a 1 MiB echo, each a data channel. The browser (js-libp2p in Chromium) is in
test_browser_webrtc_direct.py. The other direction: rapidp2p dials rust-libp2p's listener
(ping and a 1 MiB echo).

libp2p-webrtc 0.10.0-alpha (its framing crate ``libp2p-webrtc-utils`` 0.5) predates the spec's
FIN_ACK flag and fails a stream that receives one ("unknown enumeration value 3"), and reads
each data channel message into an 8 KiB buffer: the listener here answers FIN without FIN_ACK
(``WebRtcSettings(fin_ack=False)``), and rapidp2p always sends messages of at most 8 KiB.
"""

from __future__ import annotations

import pytest
from peers import dial_from_peer, find_result

from rapidp2p._aio.webrtc import WebRtcSettings
from rapidp2p.host import Host, PeerConnected
from rapidp2p.peer import PeerId
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.transport.webrtc_direct import WebRtcDirectTransport

WEBRTC_LISTEN = "/ip4/127.0.0.1/udp/0/webrtc-direct"
ECHO = 1024 * 1024

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]


async def test_rust_libp2p_dials_rapidp2p_over_webrtc_direct() -> None:
    transport = WebRtcDirectTransport(settings=WebRtcSettings(fin_ack=False))
    async with await Host.create(transports=[transport], listen=[WEBRTC_LISTEN]) as host:
        host.set_stream_handler("/echo/1.0.0", handle_echo)
        connected = host.events.subscribe(PeerConnected)
        addr = str(host.full_addrs[0])
        assert "/webrtc-direct/certhash/" in addr, addr
        results = await dial_from_peer("rust-peer", addr, ping=True, identify=True, echo_bytes=ECHO)
        assert find_result(results, "ping_rtt_ms")["ping_rtt_ms"] > 0, results
        ident = find_result(results, "identify")["identify"]
        assert ident["agent_version"].startswith("rapidp2p/"), ident
        assert addr.rsplit("/p2p/", 1)[0] in ident["listen_addrs"], ident
        echo = find_result(results, "echo_bytes")
        assert echo == {"echo_bytes": ECHO, "ok": True}, echo
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        key = host.peerstore.pubkey(event.peer_id)
        assert key is not None and PeerId.from_public_key(key) == event.peer_id
        assert event.conn is not None and "/udp/" in str(event.conn.remote_addr)


async def test_rapidp2p_dials_rust_libp2p_over_webrtc_direct() -> None:
    # rust-libp2p listens (libp2p-webrtc: ICE-lite, its own certificate); we are the ICE
    # controlling agent, the DTLS client checking its certhash and the Noise responder.
    import asyncio
    import os

    from peers import listening_peer

    from rapidp2p.peer import Multiaddr

    transport = WebRtcDirectTransport(settings=WebRtcSettings(fin_ack=False))
    async with (
        listening_peer("rust-peer", WEBRTC_LISTEN) as addr,
        Host(transports=[transport]) as host,
    ):
        assert "/webrtc-direct/certhash/" in addr, addr
        conn = await asyncio.wait_for(host.connect(Multiaddr(addr)), 60)
        assert conn.direction == "outbound"
        assert type(conn).__name__ == "WebRtcConnection", conn
        assert str(conn.remote_peer) == addr.rsplit("/p2p/", 1)[1]
        rtts = await asyncio.wait_for(host.ping(conn.remote_peer, count=2), 60)
        assert len(rtts) == 2 and all(r > 0 for r in rtts)
        blob = os.urandom(ECHO)
        st = await host.new_stream(conn.remote_peer, ["/echo/1.0.0"])

        async def read_all() -> bytes:
            got = bytearray()
            while chunk := await st.read(65536):
                got += chunk
            return bytes(got)

        reader = asyncio.ensure_future(read_all())
        st.write(blob)
        await st.drain()
        await st.close()
        assert await asyncio.wait_for(reader, 120) == blob
