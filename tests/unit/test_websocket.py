"""The ``/ws`` transport between rapidp2p hosts, and what it does with bad peers: a text frame,
garbage instead of the HTTP upgrade, a client that never finishes it; malformed addresses are
refused with a typed error (``/wss``: tests/unit/test_websocket_tls.py)."""

from __future__ import annotations

import asyncio
import os

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from rapidp2p.exceptions import DialError, TransportError
from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr, PeerInfo
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.transport import websocket as ws_mod
from rapidp2p.transport.websocket import WebSocketTransport

WS = "/ip4/127.0.0.1/tcp/0/ws"


async def _port_of(host: Host) -> int:
    addr = str(host.listen_addrs[0])
    return int(addr.split("/tcp/")[1].split("/")[0])


async def test_hosts_ping_and_echo_over_ws() -> None:
    async with await Host.create(listen=[WS]) as a, await Host.create() as b:
        a.set_stream_handler("/echo/1.0.0", handle_echo)
        assert str(a.listen_addrs[0]).endswith("/ws")
        conn = await b.connect(PeerInfo(a.peer_id, a.listen_addrs))
        assert str(conn.remote_addr).endswith("/ws")
        assert len(await b.ping(a.peer_id, 2)) == 2
        payload = os.urandom(3 * 1024 * 1024)
        s = await b.new_stream(a.peer_id, "/echo/1.0.0")
        s.write(payload)
        closing = asyncio.create_task(s.close())
        got = await s.read()
        await closing
        assert got == payload
        (inbound,) = a.connections(b.peer_id)
        assert str(inbound.remote_addr).endswith("/ws")


def test_addresses_are_checked() -> None:
    t = WebSocketTransport()
    assert t.can_dial(Multiaddr("/ip4/127.0.0.1/tcp/1/ws"))
    assert t.can_dial(
        Multiaddr(
            "/dns4/localhost/tcp/1/ws/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
        )
    )
    assert not t.can_dial(Multiaddr("/ip4/127.0.0.1/tcp/1"))
    assert not t.can_dial(Multiaddr("/ip4/127.0.0.1/tcp/1/ws/ws"))
    assert not t.can_dial(Multiaddr("/ip4/127.0.0.1/tcp/1/tls/sni/x"))
    with pytest.raises(TransportError, match="not a WebSocket"):
        ws_mod._split(Multiaddr("/ip4/127.0.0.1/tcp/1/tls"))


async def _raw_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _read_all(reader: asyncio.StreamReader, timeout: float = 10) -> bytes:
    out = b""
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), timeout)
        if not chunk:
            return out
        out += chunk


async def test_text_frame_closes_only_that_connection() -> None:
    async with await Host.create(listen=[WS]) as a, await Host.create() as b:
        port = await _port_of(a)
        reader, writer = await _raw_client(port)
        client = WSConnection(ConnectionType.CLIENT)
        writer.write(client.send(Request(host=f"127.0.0.1:{port}", target="/")))
        client.receive_data(await asyncio.wait_for(reader.read(65536), 10))
        assert any(isinstance(e, AcceptConnection) for e in client.events())
        writer.write(client.send(TextMessage(data="hello")))
        client.receive_data(await _read_all(reader))
        closes = [e for e in client.events() if isinstance(e, CloseConnection)]
        assert closes and closes[0].code == ws_mod.CLOSE_UNSUPPORTED
        writer.close()
        # The host still serves honest peers.
        await b.connect(PeerInfo(a.peer_id, a.listen_addrs))
        assert len(await b.ping(a.peer_id)) == 1


async def test_garbage_instead_of_the_upgrade_is_dropped() -> None:
    async with await Host.create(listen=[WS]) as a:
        reader, writer = await _raw_client(await _port_of(a))
        writer.write(b"\x00\x01 not http at all\r\n\r\n")
        answer = await _read_all(reader)
        assert b"101" not in answer  # never switched protocols
        writer.close()
        assert not a.connections()


async def test_silent_client_is_dropped_after_the_handshake_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ws_mod, "HANDSHAKE_TIMEOUT", 0.3)
    async with await Host.create(listen=[WS]) as a:
        reader, writer = await _raw_client(await _port_of(a))
        assert await _read_all(reader) == b""  # closed by the listener, nothing sent
        writer.close()


async def test_dial_to_a_plain_tcp_listener_fails_typed() -> None:
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as a, await Host.create() as b:
        port = await _port_of(a)
        with pytest.raises(DialError) as info:
            await b.connect(PeerInfo(a.peer_id, [Multiaddr(f"/ip4/127.0.0.1/tcp/{port}/ws")]))
        assert "WebSocket" in str(info.value)
