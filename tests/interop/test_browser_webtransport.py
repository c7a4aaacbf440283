"""A real headless Chromium running js-libp2p (``@libp2p/webtransport``) dials rapidp2p over
WebTransport (issue 14).

The page opens a browser ``WebTransport`` session to the rapidp2p listener, trusting its
self-signed certificate through ``serverCertificateHashes`` (the ``/certhash`` values of the
multiaddr); our HTTP/3 layer accepts the extended CONNECT, the page answers our Noise
handshake on the first stream (checking that its certhashes are among the ones our
NoiseExtensions list), then runs libp2p streams as WebTransport streams: ping and a 1 MiB echo.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser import BrowserPeer
from peers import find_result

from rapidp2p.host import Host, PeerConnected
from rapidp2p.peer import PeerId
from rapidp2p.protocols.echo import handle_echo

WT_LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1/webtransport"
ECHO = 1024 * 1024

pytestmark = [pytest.mark.interop, pytest.mark.peers("browser-peer"), pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserPeer]:
    with BrowserPeer() as peer:
        yield peer


def explain(outcome: dict[str, Any]) -> str:
    console = "\n".join(outcome.get("console", []))
    return f"error={outcome['error']!r}\nresults={outcome['results']!r}\nconsole:\n{console}"


async def test_browser_dials_rapidp2p_over_webtransport(browser: BrowserPeer) -> None:
    async with await Host.create(listen=[WT_LISTEN]) as host:
        host.set_stream_handler("/echo/1.0.0", handle_echo)
        connected = host.events.subscribe(PeerConnected)
        target = str(host.full_addrs[0])
        assert target.count("/certhash/u") == 2 and "/p2p/" in target, target
        outcome = await browser.dial(target, ping=True, echo_bytes=ECHO)
        assert outcome["error"] is None, explain(outcome)
        results = outcome["results"]

        conn = find_result(results, "connected")["connected"]
        assert conn["remote_peer"] == str(host.peer_id), conn
        assert "/webtransport" in conn["remote_addr"], conn

        rtt = find_result(results, "ping_rtt_ms")["ping_rtt_ms"]
        assert isinstance(rtt, (int, float)) and rtt >= 0, results
        assert find_result(results, "echo_bytes") == {
            "echo_bytes": ECHO,
            "received": ECHO,
            "ok": True,
        }, results

        # rapidp2p's side: the browser's peer id, proved by Noise on the first stream.
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        assert str(event.peer_id) == conn["local_peer"], (event.peer_id, conn)
        assert event.conn is not None
        assert str(event.conn.remote_addr).startswith("/ip4/127.0.0.1/udp/")
        key = host.peerstore.pubkey(event.peer_id)
        assert key is not None and PeerId.from_public_key(key) == event.peer_id


async def test_browser_webtransport_wrong_certhash_fails(browser: BrowserPeer) -> None:
    """A multiaddr whose hashes are not our certificate's: the browser refuses the TLS
    handshake; the listener serves the next (correct) dial."""
    async with await Host.create(listen=[WT_LISTEN]) as host:
        host.set_stream_handler("/echo/1.0.0", handle_echo)
        target = str(host.full_addrs[0])
        head, rest = target.split("/certhash/", 1)
        peer = rest.rsplit("/p2p/", 1)[1]
        stranger = "uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g"
        outcome = await browser.dial(f"{head}/certhash/{stranger}/p2p/{peer}", ping=True)
        assert outcome["error"] is not None, explain(outcome)
        assert outcome["results"] == [], explain(outcome)
        outcome = await browser.dial(target, echo_bytes=4096)
        assert outcome["error"] is None, explain(outcome)
        assert find_result(outcome["results"], "echo_bytes")["ok"] is True
