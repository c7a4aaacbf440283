"""A real headless Chromium running js-libp2p dials rapidp2p over WebRTC-direct (issue 14).

The page (``tests/interop/browser-peer``, js-libp2p 3.3 with ``@libp2p/webrtc``'s
``webRTCDirect``) builds our SDP answer from the ``/webrtc-direct/certhash/...`` multiaddr,
opens an ``RTCPeerConnection`` to the rapidp2p host (an ICE-lite listener on str0m), answers
our Noise handshake on data channel 0 and then runs libp2p streams as data channels: ping, a
1 MiB echo, 100 echo streams held open at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from browser import BrowserPeer
from peers import find_result

from rapidp2p._aio.stream import Stream
from rapidp2p.host import Host, PeerConnected
from rapidp2p.peer import PeerId
from rapidp2p.protocols.echo import handle_echo

WEBRTC_LISTEN = "/ip4/127.0.0.1/udp/0/webrtc-direct"
ECHO = 1024 * 1024
STREAMS = 100
STREAM_BYTES = 4096
STRANGER_ID = "12D3KooWFVCKo3kWL4YcA6ACxRXk7VWENXGjrJE3UGeNkbrxsyhy"

pytestmark = [pytest.mark.interop, pytest.mark.peers("browser-peer"), pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserPeer]:
    with BrowserPeer() as peer:
        yield peer


def explain(outcome: dict[str, Any]) -> str:
    console = "\n".join(outcome.get("console", []))
    return f"error={outcome['error']!r}\nresults={outcome['results']!r}\nconsole:\n{console}"


async def test_browser_dials_rapidp2p_over_webrtc_direct(browser: BrowserPeer) -> None:
    async with await Host.create(listen=[WEBRTC_LISTEN]) as host:
        host.set_stream_handler("/echo/1.0.0", handle_echo)
        connected = host.events.subscribe(PeerConnected)
        target = str(host.full_addrs[0])
        assert "/webrtc-direct/certhash/u" in target and "/p2p/" in target, target
        outcome = await browser.dial(target, ping=True, echo_bytes=ECHO)
        assert outcome["error"] is None, explain(outcome)
        results = outcome["results"]

        conn = find_result(results, "connected")["connected"]
        assert conn["remote_peer"] == str(host.peer_id), conn
        assert "/webrtc-direct" in conn["remote_addr"], conn

        rtt = find_result(results, "ping_rtt_ms")["ping_rtt_ms"]
        assert isinstance(rtt, (int, float)) and rtt >= 0, results
        assert find_result(results, "echo_bytes") == {
            "echo_bytes": ECHO,
            "received": ECHO,
            "ok": True,
        }, results

        # rapidp2p's side: the browser's peer id, proved by Noise on data channel 0.
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        assert str(event.peer_id) == conn["local_peer"], (event.peer_id, conn)
        assert event.conn is not None
        assert str(event.conn.remote_addr).startswith("/ip4/127.0.0.1/udp/")
        key = host.peerstore.pubkey(event.peer_id)
        assert key is not None and PeerId.from_public_key(key) == event.peer_id


async def test_browser_webrtc_direct_wrong_peer_id_fails(browser: BrowserPeer) -> None:
    async with await Host.create(listen=[WEBRTC_LISTEN]) as host:
        host.set_stream_handler("/echo/1.0.0", handle_echo)
        target = str(host.full_addrs[0])
        wrong = target.rsplit("/p2p/", 1)[0] + f"/p2p/{STRANGER_ID}"
        outcome = await browser.dial(wrong, ping=True)
        assert outcome["error"] is not None, explain(outcome)
        assert outcome["results"] == [], explain(outcome)
        # The same listener serves the next dial.
        outcome = await browser.dial(target, echo_bytes=4096)
        assert outcome["error"] is None, explain(outcome)
        assert find_result(outcome["results"], "echo_bytes")["ok"] is True


async def test_browser_holds_100_webrtc_streams(browser: BrowserPeer) -> None:
    active = 0
    peak = 0
    served = 0

    async def counting_echo(stream: Stream) -> None:
        nonlocal active, peak, served
        active += 1
        peak = max(peak, active)
        try:
            await handle_echo(stream)
            served += 1
        finally:
            active -= 1

    async with await Host.create(listen=[WEBRTC_LISTEN]) as host:
        host.set_stream_handler("/echo/1.0.0", counting_echo)
        target = str(host.full_addrs[0])
        outcome = await browser.dial(target, streams=STREAMS, stream_bytes=STREAM_BYTES)
        assert outcome["error"] is None, explain(outcome)
        result = find_result(outcome["results"], "streams")
        assert result == {
            "streams": STREAMS,
            "stream_bytes": STREAM_BYTES,
            "ok": True,
            "failures": [],
        }, explain(outcome)
        for _ in range(100):
            if served == STREAMS:
                break
            await asyncio.sleep(0.05)
        assert served == STREAMS
        assert peak == STREAMS, f"at most {peak} echo streams were open at once"
        assert len(host.connections()) <= 1
