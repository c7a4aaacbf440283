"""``/memory/<n>``: an in-process transport for tests and embedding.

Two :class:`_MemoryTransport` objects form a pipe; each delivers its writes to the peer's
protocol on the next loop iteration (batched), honours ``pause_reading`` on the receiving side
and raises ``pause_writing`` on the sender when the undelivered buffer passes a high-water
mark. Noise and yamux still run over it, so it exercises the whole stack without sockets.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

from rapidp2p._aio.connection import MuxedConnection
from rapidp2p.exceptions import TransportError
from rapidp2p.transport.base import ConnectionFactory, InboundHandler, parse_components

if TYPE_CHECKING:
    from rapidp2p.peer import Multiaddr

__all__ = ["MemoryListener", "MemoryTransport"]

_HIGH_WATER = 1 << 20
_LOW_WATER = 1 << 18
_listeners: dict[int, MemoryListener] = {}
_auto_ports = itertools.count(1 << 40)


class _MemoryTransport(asyncio.Transport):
    """One end of an in-memory byte pipe."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        super().__init__()
        self._loop = loop
        self._name = name
        self._protocol: asyncio.Protocol | None = None
        self.peer: _MemoryTransport | None = None
        self._pending: list[bytes] = []  # written by us, not yet delivered to the peer
        self._pending_size = 0
        self._scheduled = False
        self._reading_paused = False  # our protocol does not want data now
        self._writing_paused = False
        self._closing = False
        self._lost = False

    # -- asyncio.BaseTransport
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return ("memory", self.peer._name if self.peer else None)
        if name == "sockname":
            return ("memory", self._name)
        return default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._schedule()

    def abort(self) -> None:
        self._pending.clear()
        self._pending_size = 0
        self._closing = True
        self._schedule()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        # asyncio types the argument as BaseProtocol; delivery needs a Protocol's data_received.
        self._protocol = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    # -- reading side (our protocol)
    def is_reading(self) -> bool:
        return not self._reading_paused

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            if self.peer is not None:
                self.peer._schedule()

    # -- writing side
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        if not self._writing_paused and self._pending_size > _HIGH_WATER:
            self._writing_paused = True
            if self._protocol is not None:
                self._protocol.pause_writing()
        self._schedule()

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self._pending_size

    def _schedule(self) -> None:
        if not self._scheduled and not self._lost:
            self._scheduled = True
            self._loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        """Moves our pending writes into the peer's protocol, then handles closing."""
        self._scheduled = False
        peer = self.peer
        if self._lost:
            return
        if peer is not None and not peer._lost and self._pending and not peer._reading_paused:
            data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending.clear()
            self._pending_size = 0
            assert peer._protocol is not None
            peer._protocol.data_received(data)
        if self._writing_paused and self._pending_size <= _LOW_WATER:
            self._writing_paused = False
            if self._protocol is not None:
                self._protocol.resume_writing()
        if self._closing and (not self._pending or peer is None or peer._lost):
            self._lose(None)
            if peer is not None:
                peer._lose(None)

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._pending.clear()
        proto = self._protocol
        if proto is not None:
            self._loop.call_soon(proto.connection_lost, exc)


class MemoryListener:
    """A registered ``/memory/<n>`` endpoint."""

    def __init__(
        self, port: int, factory: ConnectionFactory, handler: InboundHandler, addr: Multiaddr
    ) -> None:
        self.port = port
        self._factory = factory
        self._handler = handler
        self._addr = addr

    @property
    def addrs(self) -> list[Multiaddr]:
        return [self._addr]

    async def close(self) -> None:
        if _listeners.get(self.port) is self:
            del _listeners[self.port]


class MemoryTransport:
    """Listens on and dials ``/memory/<n>`` in this process (``/memory/0`` picks a number)."""

    #: A raw byte stream: a private network's protector can run over it (rapidp2p.pnet).
    carries_psk = True

    def can_dial(self, addr: Multiaddr) -> bool:
        comps = parse_components(addr)
        return bool(comps) and comps[0][0] == "memory"

    @staticmethod
    def _port(addr: Multiaddr) -> int:
        """The number of a ``/memory/<n>`` address; TransportError for any other address."""
        comps = parse_components(addr)
        if not comps or comps[0][0] != "memory":
            raise TransportError(f"not a memory multiaddr: {addr}")
        return int(comps[0][1])  # the multiaddr codec only accepts a number here

    can_listen = can_dial

    async def listen(
        self, addr: Multiaddr, factory: ConnectionFactory, handler: InboundHandler
    ) -> MemoryListener:
        from rapidp2p.peer import Multiaddr

        port = self._port(addr)
        if port == 0:
            port = next(_auto_ports)
            while port in _listeners:
                port = next(_auto_ports)
        if port in _listeners:
            raise TransportError(f"/memory/{port} is already in use")
        lst = MemoryListener(port, factory, handler, Multiaddr(f"/memory/{port}"))
        _listeners[port] = lst
        return lst

    async def dial(self, addr: Multiaddr, factory: ConnectionFactory) -> MuxedConnection:
        port = self._port(addr)
        lst = _listeners.get(port)
        if lst is None:
            raise TransportError(f"nothing listens on /memory/{port}")
        loop = asyncio.get_running_loop()
        a = _MemoryTransport(loop, f"dialer-{port}")
        b = _MemoryTransport(loop, str(port))
        a.peer, b.peer = b, a
        client = factory()
        server = lst._factory()
        a.set_protocol(client)
        b.set_protocol(server)
        client.connection_made(a)
        server.connection_made(b)
        lst._handler(server)
        return client
