"""Transport conformance (after go-libp2p's ``p2p/transport/testsuite``): every transport the
host can use passes the same cases, through the ``Transport`` interface only.

A new transport is one entry in :data:`TRANSPORTS`: how to make it, where to listen, an
address nobody listens on, and addresses it must refuse. The cases run in the raw phase (before
any upgrade): bytes in, bytes out, EOF and errors, which is all a transport promises.

A transport whose connections come secured and multiplexed (QUIC, WebTransport) is seen through
:class:`SecuredAsRaw`: each connection's first stream plays the raw byte stream (the dialer
opens it, the listener takes the first inbound one), so the same cases hold it to the same
promises.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from selfsigned import wss_certs

from rapidp2p._aio.connection import MuxedConnection
from rapidp2p._aio.quic import QuicConnection, QuicSettings
from rapidp2p._aio.stream import Stream
from rapidp2p.crypto import generate_keypair
from rapidp2p.exceptions import Libp2pError, TransportError
from rapidp2p.peer import Multiaddr
from rapidp2p.protocols.framing import read_exactly
from rapidp2p.transport.base import Listener, Transport
from rapidp2p.transport.memory import MemoryTransport
from rapidp2p.transport.quic import QuicTransport
from rapidp2p.transport.tcp import TcpTransport
from rapidp2p.transport.websocket import WebSocketTransport
from rapidp2p.transport.webtransport import WebTransportTransport

# ---- the connection driver, in one place ----------------------------------------------------
# The suite sees a raw connection only through these three helpers.


def new_conn() -> MuxedConnection:
    """The host's connection factory: a fresh driver for each socket."""
    return MuxedConnection()


async def send(conn: MuxedConnection, data: bytes) -> None:
    raw = conn.raw_stream()
    raw.write(data)
    await raw.drain()


async def recv(conn: MuxedConnection, n: int) -> bytes:
    """Exactly ``n`` bytes (UnexpectedEOF when the other side closed first)."""
    return await read_exactly(conn.raw_stream(), n)


async def recv_eof(conn: MuxedConnection) -> bytes:
    """Whatever arrives until EOF."""
    raw = conn.raw_stream()
    out = b""
    while chunk := await raw.read(65536):
        out += chunk
    return out


# ---- secured transports seen raw ---------------------------------------------------------------


class _FirstStream:
    """The raw stream of a secured connection: its first stream (opened by the dialer on
    first use, taken from the first inbound one by the listener)."""

    def __init__(self, pipe: _SecuredPipe) -> None:
        self._pipe = pipe
        self._pending: list[bytes] = []

    async def read(self, n: int = -1) -> bytes:
        return await (await self._pipe.stream()).read(n)

    def write(self, data: bytes) -> None:
        self._pending.append(bytes(data))

    async def drain(self) -> None:
        st = await self._pipe.stream()
        data, self._pending = b"".join(self._pending), []
        st.write(data)
        await st.drain()


class _SecuredPipe:
    """A secured connection with the raw-phase surface the cases use."""

    def __init__(self, conn: QuicConnection) -> None:
        self.conn = conn
        self._inbound: asyncio.Future[Stream] = conn.loop.create_future()
        self._stream: Stream | None = None
        self._raw = _FirstStream(self)
        conn.on_stream = self._on_stream

    def _on_stream(self, st: Stream) -> None:
        if not self._inbound.done():
            self._inbound.set_result(st)

    async def stream(self) -> Stream:
        if self._stream is None:
            if self.conn.direction == "outbound":
                self._stream = await self.conn.open_stream()
            else:
                closed = asyncio.ensure_future(self.conn.wait_closed())
                waiters: list[asyncio.Future[Any]] = [self._inbound, closed]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                closed.cancel()
                if not self._inbound.done():
                    raise TransportError("connection closed before its first stream")
                self._stream = self._inbound.result()
        return self._stream

    def raw_stream(self) -> _FirstStream:
        return self._raw

    async def wait_connected(self) -> None:
        return None

    @property
    def is_closed(self) -> bool:
        return self.conn.is_closed

    async def close(self) -> None:
        await self.conn.close()

    def abort(self) -> None:
        self.conn.abort()

    async def wait_closed(self) -> None:
        await self.conn.wait_closed()


class SecuredAsRaw:
    """A QUIC (or WebTransport) transport behind the raw ``Transport`` interface of these
    cases."""

    def __init__(self, inner: QuicTransport | WebTransportTransport) -> None:
        self.inner = inner

    def can_dial(self, addr: Multiaddr) -> bool:
        return self.inner.can_dial(addr)

    def can_listen(self, addr: Multiaddr) -> bool:
        return self.inner.can_listen(addr)

    async def listen(
        self, addr: Multiaddr, factory: object, handler: Callable[..., None]
    ) -> Listener:
        return await self.inner.listen_secured(addr, None, lambda conn: handler(_SecuredPipe(conn)))

    async def dial(self, addr: Multiaddr, factory: object) -> _SecuredPipe:
        return _SecuredPipe(await self.inner.dial_secured(addr, None))


def _quic() -> Transport:
    # Nothing answers a dial to a closed UDP port: the handshake timeout ends it, so it is
    # kept below the cases' 10 s bound.
    quic = QuicTransport(generate_keypair(), QuicSettings(handshake_timeout=3.0))
    return SecuredAsRaw(quic)  # type: ignore[return-value]


def _closed_udp_port() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"/ip4/127.0.0.1/udp/{port}/quic-v1"


def _webtransport() -> Transport:
    # As QUIC's: the handshake timeout bounds a dial nobody answers.
    wt = WebTransportTransport(generate_keypair(), QuicSettings(handshake_timeout=3.0))
    return SecuredAsRaw(wt)  # type: ignore[return-value]


#: Any sha2-256 /certhash: a dial needs one (nothing listens there anyway).
_SOME_CERTHASH = "uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g"


# ---- the transports under test ----------------------------------------------------------------


def _closed_tcp_port() -> str:
    """A loopback port that was just free (bound, then released): nothing listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"/ip4/127.0.0.1/tcp/{port}"


@dataclass
class TransportCase:
    name: str
    make: Callable[[], Transport]
    listen_addr: str
    #: An address of this transport's kind where nothing listens.
    closed_addr: Callable[[], str]
    #: Valid multiaddrs of another kind: can_dial/can_listen say no, dial/listen raise typed.
    foreign_addrs: list[str] = field(default_factory=list)


TRANSPORTS = [
    TransportCase(
        "memory",
        MemoryTransport,
        "/memory/0",
        lambda: "/memory/987654321",
        ["/ip4/127.0.0.1/tcp/4001", "/ip6/::1/udp/4001/quic-v1"],
    ),
    TransportCase(
        "tcp",
        TcpTransport,
        "/ip4/127.0.0.1/tcp/0",
        _closed_tcp_port,
        ["/memory/7", "/ip4/127.0.0.1/udp/4001/quic-v1", "/ip4/127.0.0.1/tcp/4001/ws"],
    ),
    TransportCase(
        "websocket",
        WebSocketTransport,
        "/ip4/127.0.0.1/tcp/0/ws",
        lambda: _closed_tcp_port() + "/ws",
        ["/memory/7", "/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/tcp/4001/tls"],
    ),
    TransportCase(
        "websocket-tls",
        lambda: WebSocketTransport(
            tls=wss_certs().server_context(), client_tls=wss_certs().client_context()
        ),
        "/ip4/127.0.0.1/tcp/0/wss",
        lambda: _closed_tcp_port() + "/wss",
        ["/memory/7", "/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/tcp/4001/tls/sni/x"],
    ),
    TransportCase(
        "quic",
        _quic,
        "/ip4/127.0.0.1/udp/0/quic-v1",
        _closed_udp_port,
        ["/memory/7", "/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic"],
    ),
    TransportCase(
        "webtransport",
        _webtransport,
        "/ip4/127.0.0.1/udp/0/quic-v1/webtransport",
        lambda: f"{_closed_udp_port()}/webtransport/certhash/{_SOME_CERTHASH}",
        ["/memory/7", "/ip4/127.0.0.1/tcp/4001/ws", "/ip4/127.0.0.1/udp/4001/quic-v1"],
    ),
]


@pytest.fixture(params=TRANSPORTS, ids=[t.name for t in TRANSPORTS])
def case(request: pytest.FixtureRequest) -> TransportCase:
    c: TransportCase = request.param
    return c


@contextlib.asynccontextmanager
async def listening(
    case: TransportCase,
) -> AsyncIterator[tuple[Transport, Listener, asyncio.Queue[MuxedConnection]]]:
    transport = case.make()
    accepted: asyncio.Queue[MuxedConnection] = asyncio.Queue()
    listener = await transport.listen(Multiaddr(case.listen_addr), new_conn, accepted.put_nowait)
    try:
        yield transport, listener, accepted
    finally:
        await listener.close()
        while not accepted.empty():
            accepted.get_nowait().abort()


async def _accept(accepted: asyncio.Queue[MuxedConnection]) -> MuxedConnection:
    conn = await asyncio.wait_for(accepted.get(), 10)
    await asyncio.wait_for(conn.wait_connected(), 10)
    return conn


# ---- the cases ---------------------------------------------------------------------------------


async def test_listen_reports_a_dialable_address(case: TransportCase) -> None:
    async with listening(case) as (transport, listener, _accepted):
        assert listener.addrs, "a listener has at least one address"
        for addr in listener.addrs:
            assert transport.can_dial(addr) and transport.can_listen(addr)
            assert all(v != "0" for _, v in addr.items()), f"{addr}: the real port, not 0"


async def test_dial_and_exchange_bytes_both_ways(case: TransportCase) -> None:
    async with listening(case) as (transport, listener, accepted):
        client = await transport.dial(listener.addrs[0], new_conn)
        server = await _accept(accepted)
        try:
            await send(client, b"ping from the dialer")
            assert await recv(server, 20) == b"ping from the dialer"
            await send(server, b"pong from the listener")
            assert await recv(client, 22) == b"pong from the listener"
        finally:
            client.abort()
            server.abort()


async def test_close_reaches_the_other_side(case: TransportCase) -> None:
    async with listening(case) as (transport, listener, accepted):
        client = await transport.dial(listener.addrs[0], new_conn)
        server = await _accept(accepted)
        await send(client, b"last words")
        await client.close()
        assert await asyncio.wait_for(recv_eof(server), 10) == b"last words"
        await asyncio.wait_for(server.wait_closed(), 10)
        assert client.is_closed and server.is_closed


async def test_listener_close_refuses_new_dials(case: TransportCase) -> None:
    transport = case.make()
    accepted: asyncio.Queue[MuxedConnection] = asyncio.Queue()
    listener = await transport.listen(Multiaddr(case.listen_addr), new_conn, accepted.put_nowait)
    addr = listener.addrs[0]
    client = await transport.dial(addr, new_conn)
    server = await _accept(accepted)
    await listener.close()
    with pytest.raises(TransportError):
        await asyncio.wait_for(transport.dial(addr, new_conn), 10)
    # Closing the listener leaves the connections it accepted alone.
    await send(client, b"still here")
    assert await recv(server, 10) == b"still here"
    client.abort()
    server.abort()


async def test_dial_where_nothing_listens_is_a_typed_error(case: TransportCase) -> None:
    transport = case.make()
    addr = Multiaddr(case.closed_addr())
    assert transport.can_dial(addr)
    with pytest.raises(TransportError):
        await asyncio.wait_for(transport.dial(addr, new_conn), 10)


async def test_foreign_addresses_are_refused(case: TransportCase) -> None:
    transport = case.make()
    for text in case.foreign_addrs:
        addr = Multiaddr(text)
        assert not transport.can_dial(addr), text
        assert not transport.can_listen(addr), text
        with pytest.raises(TransportError):
            await asyncio.wait_for(transport.dial(addr, new_conn), 10)
        with pytest.raises(TransportError):
            await transport.listen(addr, new_conn, lambda conn: None)


async def test_listen_twice_on_one_address_is_a_typed_error(case: TransportCase) -> None:
    async with listening(case) as (transport, listener, _accepted):
        with pytest.raises(TransportError):
            await transport.listen(listener.addrs[0], new_conn, lambda conn: None)


async def test_many_connections_at_once(case: TransportCase) -> None:
    n = 64
    async with listening(case) as (transport, listener, accepted):
        clients = await asyncio.gather(
            *(transport.dial(listener.addrs[0], new_conn) for _ in range(n))
        )
        servers = [await _accept(accepted) for _ in range(n)]
        try:
            # Each dialer says who it is; each accepted connection echoes what it got.
            for i, c in enumerate(clients):
                await send(c, i.to_bytes(4, "big"))

            async def echo(conn: MuxedConnection) -> None:
                await send(conn, await recv(conn, 4))

            await asyncio.gather(*(echo(s) for s in servers))
            got = await asyncio.gather(*(recv(c, 4) for c in clients))
            assert [int.from_bytes(g, "big") for g in got] == list(range(n))
        finally:
            for conn in (*clients, *servers):
                conn.abort()


async def test_abort_on_one_side_ends_the_other(case: TransportCase) -> None:
    async with listening(case) as (transport, listener, accepted):
        client = await transport.dial(listener.addrs[0], new_conn)
        server = await _accept(accepted)
        server.abort()
        with pytest.raises(Libp2pError):
            # EOF (UnexpectedEOF) or a reset: either way a typed error, never a hang.
            await asyncio.wait_for(recv(client, 1), 10)
        await asyncio.wait_for(client.wait_closed(), 10)
