"""``/wss`` (WebSocket over TLS) between rapidp2p hosts, with a certificate from a throwaway CA.

Every spelling (``/wss``, ``/tls/ws``, ``/tls/sni/<name>/ws``) carries Noise + yamux like
``/ws``; and what goes wrong fails typed without hurting the listener: an untrusted
certificate, a server name the certificate does not cover, a plain-text client on the TLS port,
a client that never starts TLS, a secure listen without a certificate.
"""

from __future__ import annotations

import asyncio
import os
import ssl

import pytest
from selfsigned import wss_certs

from rapidp2p._aio.connection import MuxedConnection
from rapidp2p.exceptions import DialError, TransportError
from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr, PeerInfo
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.transport import websocket as ws_mod
from rapidp2p.transport.memory import MemoryTransport
from rapidp2p.transport.tcp import TcpTransport
from rapidp2p.transport.websocket import WebSocketTransport, server_tls_context


def _server() -> list[WebSocketTransport | TcpTransport | MemoryTransport]:
    certs = wss_certs()
    return [
        TcpTransport(),
        WebSocketTransport(tls=certs.server_context(), client_tls=certs.client_context()),
        MemoryTransport(),
    ]


def _client(
    client_tls: ssl.SSLContext | None = None,
) -> list[WebSocketTransport | TcpTransport | MemoryTransport]:
    tls = client_tls if client_tls is not None else wss_certs().client_context()
    return [TcpTransport(), WebSocketTransport(client_tls=tls), MemoryTransport()]


def _port(host: Host) -> int:
    return int(str(host.listen_addrs[0]).split("/tcp/")[1].split("/")[0])


@pytest.mark.parametrize(
    ("listen", "dial_suffix"),
    [
        ("/ip4/127.0.0.1/tcp/0/wss", "/wss"),
        ("/ip4/127.0.0.1/tcp/0/tls/ws", "/tls/ws"),
        ("/ip4/127.0.0.1/tcp/0/tls/sni/localhost/ws", "/tls/sni/localhost/ws"),
    ],
)
async def test_hosts_ping_and_echo_over_wss(listen: str, dial_suffix: str) -> None:
    async with (
        await Host.create(listen=[listen], transports=_server()) as a,
        await Host.create(transports=_client()) as b,
    ):
        a.set_stream_handler("/echo/1.0.0", handle_echo)
        assert str(a.listen_addrs[0]).endswith(dial_suffix)
        conn = await b.connect(PeerInfo(a.peer_id, a.listen_addrs))
        assert str(conn.remote_addr).endswith(dial_suffix)
        assert conn.transport is not None
        assert conn.transport.get_extra_info("ssl_object") is not None  # TLS is really there
        assert len(await b.ping(a.peer_id, 2)) == 2
        payload = os.urandom(2 * 1024 * 1024)
        s = await b.new_stream(a.peer_id, "/echo/1.0.0")
        s.write(payload)
        closing = asyncio.create_task(s.close())
        assert await s.read() == payload
        await closing
        (inbound,) = a.connections(b.peer_id)
        assert str(inbound.remote_addr).endswith(dial_suffix)


async def test_dns_name_is_the_server_name() -> None:
    async with (
        await Host.create(listen=["/ip4/127.0.0.1/tcp/0/wss"], transports=_server()) as a,
        await Host.create(transports=_client()) as b,
    ):
        addr = Multiaddr(f"/dns4/localhost/tcp/{_port(a)}/wss")
        conn = await b.connect(PeerInfo(a.peer_id, [addr]))
        assert conn.remote_peer == a.peer_id


async def test_untrusted_certificate_fails_typed_and_listener_keeps_serving() -> None:
    async with (
        await Host.create(listen=["/ip4/127.0.0.1/tcp/0/wss"], transports=_server()) as a,
        await Host.create(transports=_client(ssl.create_default_context())) as stranger,
        await Host.create(transports=_client()) as friend,
    ):
        with pytest.raises(DialError) as info:
            await stranger.connect(PeerInfo(a.peer_id, a.listen_addrs))
        assert "certificate" in str(info.value).lower()
        await friend.connect(PeerInfo(a.peer_id, a.listen_addrs))
        assert len(await friend.ping(a.peer_id)) == 1


async def test_sni_the_certificate_does_not_cover_fails_typed() -> None:
    async with (
        await Host.create(listen=["/ip4/127.0.0.1/tcp/0/wss"], transports=_server()) as a,
        await Host.create(transports=_client()) as b,
    ):
        addr = Multiaddr(f"/ip4/127.0.0.1/tcp/{_port(a)}/tls/sni/not-localhost.example/ws")
        with pytest.raises(DialError) as info:
            await b.connect(PeerInfo(a.peer_id, [addr]))
        assert "TLS handshake failed" in str(info.value)


async def test_plain_websocket_client_on_the_tls_port_is_dropped() -> None:
    async with (
        await Host.create(listen=["/ip4/127.0.0.1/tcp/0/wss"], transports=_server()) as a,
        await Host.create(transports=_client()) as b,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(a))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        assert b"101" not in answer
        writer.close()
        assert not a.connections()
        await b.connect(PeerInfo(a.peer_id, a.listen_addrs))


async def test_client_that_never_starts_tls_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws_mod, "HANDSHAKE_TIMEOUT", 0.3)
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0/wss"], transports=_server()) as a:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(a))
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()


async def test_secure_listen_without_a_certificate_is_refused() -> None:
    t = WebSocketTransport()
    for addr in ("/ip4/127.0.0.1/tcp/0/wss", "/ip4/127.0.0.1/tcp/0/tls/sni/localhost/ws"):
        assert t.can_dial(Multiaddr(addr))
        with pytest.raises(TransportError, match="certificate"):
            await t.listen(Multiaddr(addr), MuxedConnection, lambda conn: None)
    with pytest.raises(TransportError, match="certificate"):
        async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0/wss"]):
            pass


def test_unreadable_certificate_is_a_typed_error(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(TransportError, match="cannot load"):
        server_tls_context(os.path.join(tmp_path, "missing.pem"))
