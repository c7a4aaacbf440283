"""WebRTC-direct dialled from Python: both sides ours (the listener is the same endpoint the
browser tests use), through ``host.connect`` and the transport directly, and the typed
failures: another certificate than the certhash's, another peer ID, a silent port."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from rapidp2p import _core
from rapidp2p._aio.stream import Stream
from rapidp2p._aio.webrtc import WebRtcSettings
from rapidp2p.crypto import generate_keypair
from rapidp2p.exceptions import HandshakeError, HandshakeTimeout, PeerIdMismatch, TransportError
from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.transport.webrtc_direct import WebRtcDirectTransport

LISTEN = "/ip4/127.0.0.1/udp/0/webrtc-direct"


async def echo(stream: Stream) -> None:
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        stream.write(chunk)
        await stream.drain()
    await stream.close()


def _hosts() -> tuple[Host, Host]:
    return (
        Host(transports=[WebRtcDirectTransport()]),
        Host(transports=[WebRtcDirectTransport()]),
    )


async def test_host_connect_ping_echo_and_streams() -> None:
    server, client = _hosts()
    async with server, client:
        await server.listen(LISTEN)
        server.set_stream_handler("/echo/1.0.0", echo)
        full = server.full_addrs[0]
        assert "/certhash/" in str(full)
        conn = await asyncio.wait_for(client.connect(full), 60)
        assert conn.remote_peer == server.peer_id
        assert conn.direction == "outbound"
        rtts = await asyncio.wait_for(client.ping(server.peer_id, count=2), 60)
        assert len(rtts) == 2 and all(r > 0 for r in rtts)

        # 1 MiB echoed on one stream.
        blob = os.urandom(1 << 20)
        st = await client.new_stream(server.peer_id, ["/echo/1.0.0"])

        async def reader() -> bytes:
            got = bytearray()
            while True:
                chunk = await st.read(65536)
                if not chunk:
                    return bytes(got)
                got += chunk

        rd = asyncio.ensure_future(reader())
        st.write(blob)
        await st.close()
        assert await asyncio.wait_for(rd, 120) == blob

        # 20 streams at once, each with its own payload.
        async def one(i: int) -> bytes:
            s = await client.new_stream(server.peer_id, ["/echo/1.0.0"])
            s.write(b"stream %d " % i * 100)
            await s.close()
            out = bytearray()
            while chunk := await s.read(65536):
                out += chunk
            return bytes(out)

        outs = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(20))), 120)
        assert outs == [b"stream %d " % i * 100 for i in range(20)]


async def test_wrong_certhash_is_refused_typed() -> None:
    async with Host(transports=[WebRtcDirectTransport()]) as server:
        await server.listen(LISTEN)
        full = str(server.full_addrs[0])
        other = _core.webrtc.certificate_certhash(_core.webrtc.new_certificate()[0])
        bad = Multiaddr(full.replace(full.split("/certhash/")[1].split("/")[0], other))
        t = WebRtcDirectTransport(generate_keypair())
        try:
            with pytest.raises(HandshakeError, match="fingerprint") as info:
                await asyncio.wait_for(t.dial_secured(bad, None), 60)
            assert not isinstance(info.value, HandshakeTimeout)
            assert not t._endpoints  # the dial's socket is closed
        finally:
            await t.close()


async def test_wrong_peer_id_is_refused_typed() -> None:
    async with Host(transports=[WebRtcDirectTransport()]) as server:
        await server.listen(LISTEN)
        full = str(server.full_addrs[0])
        someone = PeerId.from_public_key(generate_keypair().public_key())
        bad = Multiaddr(full.replace(str(server.peer_id), str(someone)))
        t = WebRtcDirectTransport(generate_keypair())
        try:
            with pytest.raises(PeerIdMismatch):
                await asyncio.wait_for(t.dial_secured(bad, None), 60)
            assert not t._endpoints
        finally:
            await t.close()


async def test_silent_port_times_out_typed() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        certhash = _core.webrtc.certificate_certhash(_core.webrtc.new_certificate()[0])
        addr = Multiaddr(f"/ip4/127.0.0.1/udp/{port}/webrtc-direct/certhash/{certhash}")
        t = WebRtcDirectTransport(generate_keypair(), WebRtcSettings(handshake_timeout=1.0))
        try:
            with pytest.raises(HandshakeTimeout):
                await asyncio.wait_for(t.dial_secured(addr, None), 60)
            assert silent.recv(2048)  # it did send (a STUN check) to the port
            assert not t._endpoints
        finally:
            await t.close()


async def test_dial_needs_a_certhash() -> None:
    t = WebRtcDirectTransport(generate_keypair())
    a = Multiaddr("/ip4/127.0.0.1/udp/9/webrtc-direct")
    assert not t.can_dial(a)
    with pytest.raises(TransportError):
        await t.dial_secured(a, None)


async def test_dial_over_ipv6_loopback_and_cancel_closes_the_socket() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    server, client = _hosts()
    async with server, client:
        try:
            await server.listen("/ip6/::1/udp/0/webrtc-direct")
        except TransportError:
            pytest.skip("no IPv6 loopback")
        conn = await asyncio.wait_for(client.connect(server.full_addrs[0]), 60)
        assert conn.remote_peer == server.peer_id
        assert len(await asyncio.wait_for(client.ping(server.peer_id), 60)) == 1

    # A dial cancelled mid-handshake (towards a silent port) closes its socket.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        certhash = _core.webrtc.certificate_certhash(_core.webrtc.new_certificate()[0])
        addr = Multiaddr(f"/ip4/127.0.0.1/udp/{port}/webrtc-direct/certhash/{certhash}")
        t = WebRtcDirectTransport(generate_keypair())
        try:
            task = asyncio.ensure_future(t.dial_secured(addr, None))
            silent.setblocking(False)
            loop = asyncio.get_running_loop()
            assert await asyncio.wait_for(loop.sock_recv(silent, 2048), 30)  # it is dialling
            assert t._endpoints
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not t._endpoints
        finally:
            await t.close()


async def test_listener_notices_each_dialler_close() -> None:
    """A dialler's close reaches the listener (DTLS close_notify / SCTP shutdown): its
    connection ends at once, so ten fresh connections in a row from one peer stay under the
    per-peer inbound limit (8) instead of piling up until a liveness timeout."""
    from rapidp2p.host.events import PeerConnected, PeerDisconnected

    server, client = _hosts()
    async with server, client:
        await server.listen(LISTEN)
        full = server.full_addrs[0]
        with server.events.subscribe(PeerConnected, PeerDisconnected) as sub:
            for i in range(10):
                conn = await asyncio.wait_for(client.connect(full), 60)
                ev = await sub.get(timeout=60)
                assert isinstance(ev, PeerConnected), (i, ev)
                assert len(server.connections(client.peer_id)) == 1
                await asyncio.wait_for(conn.close(), 30)
                try:
                    ev = await sub.get(timeout=30)
                except TimeoutError:
                    pytest.fail(f"connection {i}: the listener never noticed the dialler's close")
                assert isinstance(ev, PeerDisconnected), (i, ev)
                assert server.connections(client.peer_id) == []
