"""Security-channel conformance (after go-libp2p's ``p2p/security/.../testsuite``): every
channel the upgrader offers passes the same cases, through the public ``Upgrader`` API on
connections from the real transports.

A new channel is one entry in :data:`CHANNELS` (its protocol id and the ``Upgrader`` arguments
that select it alone). The cases: the handshake in both roles, the remote's identity, a dialer
expecting another peer (``PeerIdMismatch``), and a hostile or broken remote (truncated,
malformed, silent) in either role, which must end in a typed ``HandshakeError`` /
``UpgradeError`` that closes that connection and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rapidp2p._aio.connection import MuxedConnection
from rapidp2p._aio.stream import Stream
from rapidp2p.crypto import PrivateKey, generate_keypair
from rapidp2p.exceptions import HandshakeError, NegotiationError, PeerIdMismatch, UpgradeError
from rapidp2p.host.upgrader import StageTimeouts, Upgrader
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.multistream import select_inbound, select_outbound
from rapidp2p.security.noise import NOISE_PROTOCOL_ID
from rapidp2p.security.plaintext import PLAINTEXT_PROTOCOL_ID
from rapidp2p.security.tls import TLS_PROTOCOL_ID
from rapidp2p.transport.base import Transport
from rapidp2p.transport.memory import MemoryTransport
from rapidp2p.transport.tcp import TcpTransport
from rapidp2p.transport.websocket import WebSocketTransport

TIMEOUT = 10.0
#: ``connect()``: a new (dialer side, listener side) raw connection pair.
Connect = Callable[[], Awaitable[tuple[MuxedConnection, MuxedConnection]]]
FAILURES = (HandshakeError, UpgradeError)


@dataclass
class ChannelCase:
    name: str
    protocol: str
    upgrader_args: dict[str, Any]


CHANNELS = [
    ChannelCase("noise", NOISE_PROTOCOL_ID, {"security_protocols": [NOISE_PROTOCOL_ID]}),
    ChannelCase("tls", TLS_PROTOCOL_ID, {"security_protocols": [TLS_PROTOCOL_ID]}),
    ChannelCase(
        "plaintext",
        PLAINTEXT_PROTOCOL_ID,
        {"enable_plaintext": True, "security_protocols": [PLAINTEXT_PROTOCOL_ID]},
    ),
]

TRANSPORTS: dict[str, tuple[Callable[[], Transport], str]] = {
    "memory": (MemoryTransport, "/memory/0"),
    "tcp": (TcpTransport, "/ip4/127.0.0.1/tcp/0"),
    "websocket": (WebSocketTransport, "/ip4/127.0.0.1/tcp/0/ws"),
}


@pytest.fixture(params=CHANNELS, ids=[c.name for c in CHANNELS])
def channel(request: pytest.FixtureRequest) -> ChannelCase:
    c: ChannelCase = request.param
    return c


def make_upgrader(channel: ChannelCase, key: PrivateKey, **extra: Any) -> Upgrader:
    return Upgrader(key, **channel.upgrader_args, **extra)


class Peer:
    """A key, its peer ID and an upgrader for one channel."""

    def __init__(self, channel: ChannelCase, **extra: Any) -> None:
        self.key = generate_keypair()
        self.peer_id = PeerId.from_public_key(self.key.public_key())
        self.upgrader = make_upgrader(channel, self.key, **extra)


# ---- raw connections from a transport (the driver is touched only here) ----------------------


@contextlib.asynccontextmanager
async def connections(transport: str = "memory") -> AsyncIterator[Connect]:
    """Yields ``connect()``: a new (dialer side, listener side) raw connection pair."""
    make, listen = TRANSPORTS[transport]
    tr = make()
    accepted: asyncio.Queue[MuxedConnection] = asyncio.Queue()
    listener = await tr.listen(Multiaddr(listen), MuxedConnection, accepted.put_nowait)
    opened: list[MuxedConnection] = []

    async def connect() -> tuple[MuxedConnection, MuxedConnection]:
        client = await tr.dial(listener.addrs[0], MuxedConnection)
        server = await asyncio.wait_for(accepted.get(), TIMEOUT)
        await asyncio.wait_for(server.wait_connected(), TIMEOUT)
        opened.extend((client, server))
        return client, server

    try:
        yield connect
    finally:
        await listener.close()
        for conn in opened:
            conn.abort()


def serve_echo(conn: MuxedConnection) -> None:
    """Inbound streams on ``conn`` echo what they read until EOF."""
    tasks: set[asyncio.Task[None]] = set()

    async def echo(stream: Stream) -> None:
        async for chunk in stream:
            stream.write(chunk)
            await stream.drain()
        await stream.close()

    def on_stream(stream: Stream) -> None:
        task = asyncio.get_running_loop().create_task(echo(stream))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    conn.on_stream = on_stream


async def assert_carries_data(client: MuxedConnection) -> None:
    """A stream round trip through the muxer and the secure channel, both directions."""
    stream = await asyncio.wait_for(client.open_stream(), TIMEOUT)
    msg = random.Random(7).randbytes(100_000)
    stream.write(msg)
    await stream.drain()
    await stream.close()
    got = await asyncio.wait_for(stream.read(), TIMEOUT)
    assert got == msg


async def handshake(
    dialer: Peer, listener: Peer, client: MuxedConnection, server: MuxedConnection
) -> None:
    serve_echo(server)
    await asyncio.wait_for(
        asyncio.gather(
            dialer.upgrader.upgrade_outbound(client, listener.peer_id),
            listener.upgrader.upgrade_inbound(server),
        ),
        TIMEOUT,
    )


async def first_flight(channel: ChannelCase) -> bytes:
    """The bytes a genuine dialer sends right after agreeing on ``channel`` (its first
    handshake message), caught by a raw listener."""
    dialer = Peer(channel)
    async with connections() as connect:
        client, server = await connect()
        task = asyncio.create_task(dialer.upgrader.upgrade_outbound(client))
        raw = server.raw_stream()
        await select_inbound(raw, [channel.protocol], timeout=TIMEOUT)
        data = await asyncio.wait_for(raw.read(65536), TIMEOUT)
        server.abort()
        with contextlib.suppress(Exception):
            await task
    assert data
    return data


async def still_works(listener: Peer, connect: Connect, channel: ChannelCase) -> None:
    """The listener's upgrader and transport accept the next handshake as if nothing happened."""
    dialer = Peer(channel)
    client, server = await connect()
    await handshake(dialer, listener, client, server)
    await assert_carries_data(client)


async def expect_typed_failure(upgrade: Any, conn: MuxedConnection, what: str) -> BaseException:
    with pytest.raises(FAILURES) as info:
        await asyncio.wait_for(upgrade, TIMEOUT)
    await asyncio.wait_for(conn.wait_closed(), TIMEOUT)
    assert conn.is_closed, what
    # The security handshake failed, not the multistream-select before it.
    assert not isinstance(info.value.__cause__, NegotiationError), info.value
    return info.value


# ---- the cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_handshake_both_ways(channel: ChannelCase, transport: str) -> None:
    a, b = Peer(channel), Peer(channel)
    async with connections(transport) as connect:
        for dialer, listener in ((a, b), (b, a)):
            client, server = await connect()
            await handshake(dialer, listener, client, server)
            assert client.remote_peer == listener.peer_id
            assert server.remote_peer == dialer.peer_id
            assert client.security == server.security == channel.protocol
            await assert_carries_data(client)


async def test_dialer_without_expectation_learns_the_peer(channel: ChannelCase) -> None:
    dialer, listener = Peer(channel), Peer(channel)
    async with connections() as connect:
        client, server = await connect()
        await asyncio.wait_for(
            asyncio.gather(
                dialer.upgrader.upgrade_outbound(client, None),
                listener.upgrader.upgrade_inbound(server),
            ),
            TIMEOUT,
        )
        assert client.remote_peer == listener.peer_id


async def test_wrong_expected_peer_is_peer_id_mismatch(channel: ChannelCase) -> None:
    dialer, listener, someone_else = Peer(channel), Peer(channel), Peer(channel)
    async with connections() as connect:
        client, server = await connect()
        inbound = asyncio.create_task(listener.upgrader.upgrade_inbound(server))
        with pytest.raises(PeerIdMismatch):
            await asyncio.wait_for(
                dialer.upgrader.upgrade_outbound(client, someone_else.peer_id), TIMEOUT
            )
        await asyncio.wait_for(client.wait_closed(), TIMEOUT)
        # The listener either failed typed or finished before the dialer hung up; it closes.
        with contextlib.suppress(*FAILURES):
            await asyncio.wait_for(inbound, TIMEOUT)
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)
        await still_works(listener, connect, channel)


async def test_truncated_first_message_fails_only_that_connection(channel: ChannelCase) -> None:
    flight = await first_flight(channel)
    listener = Peer(channel)
    async with connections() as connect:
        # An established connection that must survive the bad one.
        good_client, good_server = await connect()
        await handshake(Peer(channel), listener, good_client, good_server)
        for cut in (len(flight) // 2, 1):
            client, server = await connect()
            inbound = asyncio.create_task(listener.upgrader.upgrade_inbound(server))
            raw = client.raw_stream()
            await select_outbound(raw, [channel.protocol], timeout=TIMEOUT)
            raw.write(flight[:cut])
            await raw.drain()
            await client.close()  # EOF in the middle of the message
            await expect_typed_failure(inbound, server, f"cut at {cut}")
        assert not good_server.is_closed
        await assert_carries_data(good_client)
        await still_works(listener, connect, channel)


async def test_malformed_first_message_is_refused(channel: ChannelCase) -> None:
    listener = Peer(channel)
    junk = bytes([0, 5]) + b"hello" + random.Random(1).randbytes(64)
    async with connections() as connect:
        client, server = await connect()
        inbound = asyncio.create_task(listener.upgrader.upgrade_inbound(server))
        raw = client.raw_stream()
        await select_outbound(raw, [channel.protocol], timeout=TIMEOUT)
        raw.write(junk)  # and stay connected: the content alone must be refused
        await raw.drain()
        await expect_typed_failure(inbound, server, "malformed first message")
        await asyncio.wait_for(client.wait_closed(), TIMEOUT)  # the listener hung up on us
        await still_works(listener, connect, channel)


async def test_malformed_answer_fails_the_dialer(channel: ChannelCase) -> None:
    dialer, listener = Peer(channel), Peer(channel)
    junk = bytes([0, 5]) + b"hello" + random.Random(2).randbytes(64)
    async with connections() as connect:
        client, server = await connect()
        outbound = dialer.upgrader.upgrade_outbound(client, listener.peer_id)

        async def hostile_listener() -> None:
            raw = server.raw_stream()
            await select_inbound(raw, [channel.protocol], timeout=TIMEOUT)
            await raw.read(65536)  # the dialer's first message
            raw.write(junk)
            await raw.drain()

        hostile = asyncio.create_task(hostile_listener())
        await expect_typed_failure(outbound, client, "malformed answer")
        with contextlib.suppress(Exception):
            await hostile


async def test_silent_remote_times_out_typed(channel: ChannelCase) -> None:
    listener = Peer(channel, stage_timeouts=StageTimeouts(security=0.3))
    async with connections() as connect:
        client, server = await connect()
        inbound = asyncio.create_task(listener.upgrader.upgrade_inbound(server))
        raw = client.raw_stream()
        await select_outbound(raw, [channel.protocol], timeout=TIMEOUT)  # then nothing
        err = await expect_typed_failure(inbound, server, "silent dialer")
        assert isinstance(err, UpgradeError)
