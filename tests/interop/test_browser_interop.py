"""A real headless Chromium running js-libp2p dials rapidp2p over WebSocket (issue 14).

The page (``tests/interop/browser-peer``: js-libp2p 3.3 bundled by esbuild, the same pinned
packages as the Node.js ``js-peer``) runs in Debian's Chromium, driven by puppeteer-core. It
dials ``/ip4/127.0.0.1/tcp/N/ws/p2p/<id>`` with the browser's own ``WebSocket``, Noise and yamux
inside, then pings, identifies and echoes 1 MiB of pseudo-random bytes, and holds 100 echo
streams open at once on one connection, and joins a GossipSub topic with the host (one message
each way). Browsers cannot run
libp2p TLS over a WebSocket, so Noise is the only security protocol tested here. Chromium is
launched once for the module (the ``browser`` fixture); each dial runs in a new tab with a fresh
js-libp2p node.
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
from rapidp2p.pubsub import GossipSub

WS_LISTEN = "/ip4/127.0.0.1/tcp/0/ws"
ECHO = 1024 * 1024
STREAMS = 100
STREAM_BYTES = 4096
SERVED = {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", "/echo/1.0.0"}
# A valid Ed25519 peer id that no running peer has.
STRANGER_ID = "12D3KooWFVCKo3kWL4YcA6ACxRXk7VWENXGjrJE3UGeNkbrxsyhy"

pytestmark = [pytest.mark.interop, pytest.mark.peers("browser-peer"), pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserPeer]:
    """One Chromium for the whole module (launching it is the slow part)."""
    with BrowserPeer() as peer:
        yield peer


def explain(outcome: dict[str, Any]) -> str:
    """The page's outcome with what it logged, for assertion messages."""
    console = "\n".join(outcome.get("console", []))
    return f"error={outcome['error']!r}\nresults={outcome['results']!r}\nconsole:\n{console}"


async def serving_host() -> Host:
    host = await Host.create(listen=[WS_LISTEN])
    host.set_stream_handler("/echo/1.0.0", handle_echo)
    return host


async def test_browser_dials_rapidp2p_over_websocket(browser: BrowserPeer) -> None:
    async with await serving_host() as host:
        connected = host.events.subscribe(PeerConnected)
        target = str(host.full_addrs[0])
        assert "/ws/p2p/" in target, target
        outcome = await browser.dial(target, ping=True, identify=True, echo_bytes=ECHO)
        assert outcome["error"] is None, explain(outcome)
        results = outcome["results"]

        conn = find_result(results, "connected")["connected"]
        assert conn["remote_peer"] == str(host.peer_id), conn
        assert conn["remote_addr"] == target, conn
        assert conn["encryption"] == "/noise", conn
        assert conn["multiplexer"] == "/yamux/1.0.0", conn

        # The page throws unless both 32-byte payloads came back unchanged.
        rtt = find_result(results, "ping_rtt_ms")["ping_rtt_ms"]
        assert isinstance(rtt, (int, float)) and rtt >= 0, results

        ident = find_result(results, "identify")["identify"]
        assert ident["agent_version"].startswith("rapidp2p/"), ident
        assert ident["protocol_version"] == "ipfs/0.1.0", ident
        assert set(ident["protocols"]) >= SERVED, ident
        assert target.rsplit("/p2p/", 1)[0] in ident["listen_addrs"], ident
        observed = ident["observed_addr"]
        assert observed.startswith("/ip4/127.0.0.1/tcp/") and observed.endswith("/ws"), ident

        assert find_result(results, "echo_bytes") == {
            "echo_bytes": ECHO,
            "received": ECHO,
            "ok": True,
        }, results

        # rapidp2p's side: the browser's node, authenticated by Noise, over /ws.
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        assert str(event.peer_id) == conn["local_peer"], (event.peer_id, conn)
        assert event.conn is not None and str(event.conn.remote_addr).endswith("/ws")
        assert str(event.conn.remote_addr) == observed
        key = host.peerstore.pubkey(event.peer_id)
        assert key is not None and PeerId.from_public_key(key) == event.peer_id


async def test_browser_dialing_wrong_peer_id_fails_and_host_stays_up(
    browser: BrowserPeer,
) -> None:
    async with await serving_host() as host:
        target = str(host.full_addrs[0])
        wrong = target.rsplit("/p2p/", 1)[0] + f"/p2p/{STRANGER_ID}"
        outcome = await browser.dial(wrong, ping=True)
        # Noise proves rapidp2p's real id in the second handshake message: the page's dial
        # must fail, reported as an error, before any stream opens.
        assert outcome["error"] is not None, explain(outcome)
        assert outcome["results"] == [], explain(outcome)
        # js-libp2p names both ids: "... identity key <real> does not match expected ... <wrong>".
        assert STRANGER_ID in outcome["error"], explain(outcome)
        assert str(host.peer_id) in outcome["error"], explain(outcome)

        # The failed handshake closed only its own connection: nothing is left, and the same
        # listener serves the next browser dial.
        for _ in range(100):
            if not host.connections():
                break
            await asyncio.sleep(0.05)
        assert host.connections() == []
        outcome = await browser.dial(target, ping=True, echo_bytes=4096)
        assert outcome["error"] is None, explain(outcome)
        conn = find_result(outcome["results"], "connected")["connected"]
        assert conn["remote_peer"] == str(host.peer_id)
        assert find_result(outcome["results"], "echo_bytes")["ok"] is True


async def test_browser_holds_100_streams_on_one_connection(browser: BrowserPeer) -> None:
    """100 yamux streams from the page at once, each echoing its own 4 KiB, none mixed up.

    The page writes on every stream before it half-closes any, so rapidp2p's echo handlers
    (which run until EOF) are all alive together: the handler counts the peak.
    """
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

    async with await Host.create(listen=[WS_LISTEN]) as host:
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
        for _ in range(100):  # the last handlers return just after their FIN went out
            if served == STREAMS:
                break
            await asyncio.sleep(0.05)
        assert served == STREAMS
        assert peak == STREAMS, f"at most {peak} echo streams were open at once"
        # One connection carried them all.
        assert len(host.connections()) <= 1


async def test_browser_joins_a_gossipsub_topic_with_rapidp2p(browser: BrowserPeer) -> None:
    """The page's js-libp2p GossipSub (StrictSign) and rapidp2p's, one message each way."""
    topic = "rapidp2p-browser"
    async with await Host.create(listen=[WS_LISTEN]) as host:
        ps = await host.add_service(GossipSub(host))
        sub = await ps.subscribe(topic)
        target = str(host.full_addrs[0])
        page = asyncio.create_task(
            browser.dial(target, topic=topic, publish="from the browser", expect=1)
        )
        # Publish once the page's subscription arrived (and the page is in our topic peers).
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        while not ps.topic_peers(topic):
            assert not page.done(), explain(page.result())
            assert loop.time() < end, "the page never subscribed"
            await asyncio.sleep(0.05)
        (browser_peer,) = ps.topic_peers(topic)
        msg = await sub.get(timeout=60)
        assert msg.data == b"from the browser"
        assert msg.from_peer == browser_peer
        await ps.publish(topic, b"from rapidp2p")
        outcome = await page
        assert outcome["error"] is None, explain(outcome)
        result = find_result(outcome["results"], "pubsub")["pubsub"]
        assert result == {
            "topic": topic,
            "published": True,
            "received": ["from rapidp2p"],
        }, explain(outcome)
