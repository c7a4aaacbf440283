"""QUIC limits seen from Python, through real UDP sockets on loopback: malformed and truncated
datagrams are dropped in Rust (no event reaches Python, the endpoint goes on), the cap on
concurrent inbound handshakes refuses a newcomer until a stuck handshake times out, and a
listener that demands address validation (Retry) still accepts real clients."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from rapidp2p import _core
from rapidp2p._aio.quic import QuicConnection, QuicSettings
from rapidp2p.crypto import generate_keypair
from rapidp2p.exceptions import TransportError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.security.tls import TlsIdentity
from rapidp2p.transport.quic import QuicListener, QuicTransport

LOOPBACK = Multiaddr("/ip4/127.0.0.1/udp/0/quic-v1")


async def _listen(
    settings: QuicSettings,
) -> tuple[QuicTransport, QuicListener, asyncio.Queue[QuicConnection]]:
    t = QuicTransport(generate_keypair(), settings)
    accepted: asyncio.Queue[QuicConnection] = asyncio.Queue()
    lst = await t.listen_secured(LOOPBACK, None, accepted.put_nowait)
    return t, lst, accepted


def _port(lst: QuicListener) -> int:
    return int(str(lst.addrs[0]).split("/udp/")[1].split("/")[0])


def _garbage() -> list[bytes]:
    """Datagrams that look like QUIC and are not: random bytes, long headers of version 1
    cut short or with lengths past the end, short headers for unknown connections."""
    v1 = b"\x00\x00\x00\x01"
    return [
        os.urandom(1200),
        b"\xc0" + v1,  # a long header that stops after the version
        b"\xc0" + v1 + b"\x08" + os.urandom(8) + b"\x08" + os.urandom(8) + b"\x00\x44\xd0",
        b"\xc0" + v1 + b"\xff" + os.urandom(30),  # connection id length 255 (max is 20)
        b"\x40" + os.urandom(40),  # short header, unknown connection
        b"",
        b"\xff" * 1500,
    ]


async def test_malformed_datagrams_are_dropped_without_events() -> None:
    server, lst, accepted = await _listen(QuicSettings())
    client = QuicTransport(generate_keypair())
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ep = lst.endpoint
        port = _port(lst)
        for _ in range(20):
            for d in _garbage():
                raw.sendto(d, ("127.0.0.1", port))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while ep.stats[0] < 20 * len(_garbage()) - 20 and loop.time() < deadline:  # b"" may vanish
            await asyncio.sleep(0.02)
        assert ep.stats[0] >= 20 * (len(_garbage()) - 1), ep.stats
        assert accepted.empty() and ep.quic_connections == 0
        # The endpoint goes on: a real client connects, and more garbage aimed at the live
        # connection's socket does not disturb it.
        server_id = PeerId.from_public_key(server.identity.key.public_key())
        conn = await client.dial_secured(lst.addrs[0], server_id)
        for d in _garbage():
            raw.sendto(d, ("127.0.0.1", port))
        assert await asyncio.wait_for(conn.ping(), 10) > 0
        assert not conn.is_closed
    finally:
        raw.close()
        await client.close()
        await server.close()


async def test_handshake_cap_refuses_until_a_stuck_handshake_times_out() -> None:
    server, lst, _accepted = await _listen(QuicSettings(max_handshakes=1, handshake_timeout=1.0))
    client = QuicTransport(generate_keypair(), QuicSettings(handshake_timeout=5.0))
    loop = asyncio.get_running_loop()
    # A client that sends its Initial and never answers: it holds the one handshake slot.
    stuck = _core.quic.Endpoint(TlsIdentity(generate_keypair()).identity, False, loop.time())
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        port = _port(lst)
        stuck.connect("127.0.0.1", port, None, loop.time())
        stuck.flush(loop.time())
        for data, _host, _dst_port in stuck.datagrams_to_send(loop.time()):
            raw.sendto(data, ("127.0.0.1", port))
        deadline = loop.time() + 5
        while lst.endpoint.quic_connections == 0 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert lst.endpoint.quic_connections == 1
        with pytest.raises(TransportError):
            await asyncio.wait_for(client.dial_secured(lst.addrs[0], None), 10)
        # The stuck handshake ends at the listener's handshake timeout; the slot is free.
        deadline = loop.time() + 10
        while lst.endpoint.quic_connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
        conn = await asyncio.wait_for(client.dial_secured(lst.addrs[0], None), 10)
        assert await asyncio.wait_for(conn.ping(), 10) > 0
    finally:
        raw.close()
        await client.close()
        await server.close()


async def test_retry_address_validation_still_admits_real_clients() -> None:
    # retry_above=0: every unvalidated Initial gets a Retry first (the flood defence).
    server, lst, accepted = await _listen(QuicSettings(retry_above=0))
    client = QuicTransport(generate_keypair())
    try:
        conns = await asyncio.gather(
            *(asyncio.wait_for(client.dial_secured(lst.addrs[0], None), 10) for _ in range(4))
        )
        for c in conns:
            assert await asyncio.wait_for(c.ping(), 10) > 0
        for _ in conns:
            await asyncio.wait_for(accepted.get(), 10)
    finally:
        await client.close()
        await server.close()
