"""Two headless Chromium tabs connect over ``/webrtc`` through a rapidp2p relay (issue 14).

``/webrtc`` (libp2p/specs ``webrtc/webrtc.md``) is WebRTC between two peers that cannot dial
each other: they first meet on a Circuit Relay v2 connection, exchange the SDP offer, answer
and ICE candidates as protobuf messages on a ``/webrtc-signaling/0.0.1`` stream over it, and
then talk on the direct WebRTC connection. Here the relay is a rapidp2p host (the hop service,
identify and ``/ws`` for the browsers); both peers are js-libp2p 3.3 pages with
``@libp2p/webrtc``'s ``webRTC`` and ``@libp2p/circuit-relay-v2``. Tab A reserves on our relay
and listens on ``/p2p/<relay>/p2p-circuit/webrtc``; tab B dials that address and pings A
over the WebRTC connection, and A pings B back.

Then rapidp2p is a ``/webrtc`` endpoint itself (``WebRtcTransport``, str0m in Rust, full ICE
with one loopback host candidate): a page dials it through our relay and pings and echoes,
and it dials a page listening through the relay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from browser import BrowserPeer
from peers import find_result

from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.relay import RelayService
from rapidp2p.transport import TcpTransport, WebSocketTransport
from rapidp2p.transport.webrtc import WebRtcTransport

WS_LISTEN = "/ip4/127.0.0.1/tcp/0/ws"
ECHO = 256 * 1024

pytestmark = [pytest.mark.interop, pytest.mark.peers("browser-peer"), pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserPeer]:
    with BrowserPeer() as peer:
        yield peer


def explain(outcome: dict[str, Any]) -> str:
    console = "\n".join(outcome.get("console", []))
    return f"error={outcome['error']!r}\nresults={outcome['results']!r}\nconsole:\n{console}"


async def test_two_browsers_connect_over_webrtc_through_our_relay(browser: BrowserPeer) -> None:
    async with await Host.create(listen=[WS_LISTEN]) as relay:
        svc = await relay.add_service(RelayService(relay))
        relay_addr = str(relay.full_addrs[0])
        assert "/ws/p2p/" in relay_addr, relay_addr

        listening = await browser.listen_via_relay(relay_addr)
        assert listening["error"] is None, explain(listening)
        a_peer = listening["listening"]["peer"]
        webrtc_addrs = [a for a in listening["listening"]["addrs"] if "/p2p-circuit/webrtc" in a]
        assert webrtc_addrs, listening["listening"]
        target = webrtc_addrs[0]
        assert target.startswith(f"{relay_addr}/p2p-circuit/webrtc/p2p/{a_peer}"), target
        assert svc.stats.get("reserved") == 1, svc.stats

        try:
            outcome = await browser.dial(target, ping=True)
        finally:
            closed = await browser.close_tab(listening["tab"])
        assert outcome["error"] is None, explain(outcome) + "\nlistener:\n" + explain(closed)
        conn = find_result(outcome["results"], "connected")["connected"]
        assert conn["remote_peer"] == a_peer, conn
        # B's connection to A is the WebRTC one, not the relayed circuit it signalled over.
        assert conn["remote_addr"].endswith(f"/p2p-circuit/webrtc/p2p/{a_peer}"), conn
        rtt = find_result(outcome["results"], "ping_rtt_ms")["ping_rtt_ms"]
        assert isinstance(rtt, (int, float)) and rtt >= 0

        # A's side: the relayed circuit from B (limited) and the /webrtc connection (not
        # limited) over which A pinged B back.
        assert closed["error"] is None, explain(closed)
        b_peer = conn["local_peer"]
        from_b = [c for c in closed["inbound"] if c["remote_peer"] == b_peer]
        webrtc = [c for c in from_b if c["remote_addr"].startswith("/webrtc")]
        assert webrtc, closed["inbound"]
        assert webrtc[0]["direction"] == "inbound" and webrtc[0]["limited"] is False, webrtc
        assert "ping_rtt_ms" in webrtc[0], webrtc
        relayed = [c for c in from_b if "/p2p-circuit" in c["remote_addr"]]
        assert relayed and relayed[0]["limited"] is True, from_b
        # The relay spliced the signalling circuit between B and A.
        assert svc.stats.get("connected", 0) >= 1, svc.stats


async def _relay_and_node() -> tuple[Host, RelayService, Host]:
    """A rapidp2p relay on /ws and a rapidp2p node with the /webrtc transport (opt-in)."""
    relay = await Host.create(listen=[WS_LISTEN])
    svc = await relay.add_service(RelayService(relay))
    node = await Host.create(transports=[TcpTransport(), WebSocketTransport(), WebRtcTransport()])
    return relay, svc, node


async def test_browser_dials_rapidp2p_over_webrtc(browser: BrowserPeer) -> None:
    relay, svc, node = await _relay_and_node()
    async with relay, node:
        node.set_stream_handler("/echo/1.0.0", handle_echo)
        addrs = await node.listen(f"{relay.full_addrs[0]}/p2p-circuit/webrtc")
        target = f"{addrs[0]}/p2p/{node.peer_id}"
        assert "/ws/p2p/" in target and "/p2p-circuit/webrtc/p2p/" in target, target

        # Every connection the node holds while the page dials, recorded as it appears: the
        # page hangs up when its dial is done, and the node notices that close at once.
        opened: dict[int, Any] = {}

        async def record() -> None:
            while True:
                for c in node.connections():
                    opened.setdefault(id(c), c)
                await asyncio.sleep(0.005)

        recorder = asyncio.ensure_future(record())
        try:
            outcome = await browser.dial(target, ping=True, echo_bytes=ECHO)
        finally:
            recorder.cancel()
        assert outcome["error"] is None, explain(outcome)
        conn = find_result(outcome["results"], "connected")["connected"]
        assert conn["remote_peer"] == str(node.peer_id), conn
        assert conn["remote_addr"].endswith(f"/p2p-circuit/webrtc/p2p/{node.peer_id}"), conn
        rtt = find_result(outcome["results"], "ping_rtt_ms")["ping_rtt_ms"]
        assert isinstance(rtt, (int, float)) and rtt >= 0
        assert find_result(outcome["results"], "echo_bytes") == {
            "echo_bytes": ECHO,
            "received": ECHO,
            "ok": True,
        }, explain(outcome)

        # Our side: the page's WebRTC connection (not limited, from its UDP socket) beside
        # the relayed one it signalled over.
        browser_id = PeerId.from_string(conn["local_peer"])
        direct = [
            c
            for c in opened.values()
            if c.remote_peer == browser_id and str(c.remote_addr).endswith("/webrtc")
        ]
        seen = [(str(c.remote_peer), str(c.remote_addr)) for c in opened.values()]
        assert len(direct) == 1, seen
        remote = str(direct[0].remote_addr)
        assert remote.startswith("/ip4/127.0.0.1/udp/"), remote
        assert not direct[0].limited, remote
        transport = next(t for t in node.transports if isinstance(t, WebRtcTransport))
        assert not transport.failures, list(transport.failures)
        assert svc.stats.get("connected", 0) >= 1


async def test_rapidp2p_dials_browser_over_webrtc(browser: BrowserPeer) -> None:
    relay, _svc, node = await _relay_and_node()
    async with relay, node:
        listening = await browser.listen_via_relay(str(relay.full_addrs[0]))
        assert listening["error"] is None, explain(listening)
        page_id = listening["listening"]["peer"]
        target = next(a for a in listening["listening"]["addrs"] if "/p2p-circuit/webrtc" in a)
        try:
            conn = await node.connect(Multiaddr(target))
            assert str(conn.remote_peer) == page_id
            assert not conn.limited and str(conn.remote_addr).endswith("/p2p-circuit/webrtc")
            rtts = await node.ping(PeerId.from_string(page_id), 3)
            assert len(rtts) == 3
            stream = await node.new_stream(PeerId.from_string(page_id), "/echo/1.0.0", lazy=False)
            assert stream.conn is conn
            payload = bytes(range(256)) * 64
            stream.write(payload)
            await stream.close()
            assert await stream.read() == payload
        finally:
            closed = await browser.close_tab(listening["tab"])
        assert closed["error"] is None, explain(closed)
        ours = [c for c in closed["inbound"] if c["remote_peer"] == str(node.peer_id)]
        webrtc = [c for c in ours if c["remote_addr"].startswith("/webrtc")]
        assert webrtc and webrtc[0]["limited"] is False, closed["inbound"]
        # The page pinged us back over the same /webrtc connection.
        assert "ping_rtt_ms" in webrtc[0], webrtc
