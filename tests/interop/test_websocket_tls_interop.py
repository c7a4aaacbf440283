"""rapidp2p over ``/wss`` (WebSocket over TLS) against go- and js-libp2p, both ways.

Every side presents or verifies a certificate from the tests' throwaway CA
(``selfsigned.py``), trusted the way a user adds a private CA: Node.js through
``NODE_EXTRA_CA_CERTS``, Go through ``SSL_CERT_FILE``, rapidp2p through ``client_tls``. The
peers listen with that certificate from ``RAPIDP2P_WSS_CERT``/``RAPIDP2P_WSS_KEY``. Ping,
identify and a 4 MiB echo of pseudo-random bytes run over Noise + yamux inside the TLS'd
WebSocket.
"""

from __future__ import annotations

import pytest
from peers import PeerProcess, dial_from_peer, find_result
from selfsigned import wss_certs
from test_rapidp2p_interop import _echo_through

from rapidp2p.host import Host, PeerConnected
from rapidp2p.peer import Multiaddr
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.transport.memory import MemoryTransport
from rapidp2p.transport.tcp import TcpTransport
from rapidp2p.transport.websocket import WebSocketTransport

PEERS = ["go-peer", "js-peer"]
ECHO = 4 * 1024 * 1024

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]


@pytest.fixture(autouse=True)
def _trust_the_test_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    """Peers started by this test trust the test CA and can serve its certificate."""
    certs = wss_certs()
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(certs.ca))
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    monkeypatch.setenv("RAPIDP2P_WSS_CERT", str(certs.cert))
    monkeypatch.setenv("RAPIDP2P_WSS_KEY", str(certs.key))


def _transports() -> list[TcpTransport | WebSocketTransport | MemoryTransport]:
    certs = wss_certs()
    ws = WebSocketTransport(tls=certs.server_context(), client_tls=certs.client_context())
    return [TcpTransport(), ws, MemoryTransport()]


@pytest.mark.parametrize("name", PEERS)
async def test_rapidp2p_dials_peer_over_wss(name: str) -> None:
    async with (
        PeerProcess(name, "/ip4/127.0.0.1/tcp/0/wss") as peer,
        await Host.create(transports=_transports()) as host,
    ):
        maddr = Multiaddr(peer.addr)
        assert "/wss/" in str(maddr) or "/tls/" in str(maddr), maddr
        _, peer_id = maddr.split_peer_id()
        assert peer_id is not None
        conn = await host.connect(maddr)
        assert conn.remote_peer == peer_id
        assert conn.transport is not None
        assert conn.transport.get_extra_info("ssl_object") is not None
        assert len(await host.ping(peer_id, 3)) == 3
        info = await host.identify.identify_peer(conn)
        assert info.peer_id == peer_id
        received, same = await _echo_through(host, peer_id, ECHO)
        assert received == ECHO and same


@pytest.mark.parametrize("name", PEERS)
@pytest.mark.parametrize("form", ["/wss", "/tls/sni/localhost/ws"])
async def test_peer_dials_rapidp2p_over_wss(name: str, form: str) -> None:
    listen = f"/ip4/127.0.0.1/tcp/0{form}"
    async with await Host.create(listen=[listen], transports=_transports()) as host:
        host.set_stream_handler("/echo/1.0.0", handle_echo)
        connected = host.events.subscribe(PeerConnected)
        target = str(host.full_addrs[0])
        assert form + "/p2p/" in target
        results = await dial_from_peer(name, target, ping=True, identify=True, echo_bytes=ECHO)
        assert find_result(results, "ping_rtt_ms")["ping_rtt_ms"] > 0
        ident = find_result(results, "identify")["identify"]
        assert ident["agent_version"].startswith("rapidp2p/")
        assert find_result(results, "echo_bytes") == {"echo_bytes": ECHO, "ok": True}
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        assert event.conn is not None and str(event.conn.remote_addr).endswith(form)
