"""An in-memory duplex :class:`~rapidp2p.protocols.multistream.ByteStream` pair.

Lets protocol code (negotiation, ping, identify) run without sockets: in tests, and in
examples that wire two handlers together in one process.
"""

from __future__ import annotations

import asyncio


class _Pipe:
    """One direction: bytes written by one end, read by the other; bounded by ``limit``."""

    def __init__(self, limit: int) -> None:
        self.buf = bytearray()
        self.eof = False
        self.limit = limit
        self.readable = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()

    def _update(self) -> None:
        if self.buf or self.eof:
            self.readable.set()
        else:
            self.readable.clear()
        if len(self.buf) < self.limit:
            self.writable.set()
        else:
            self.writable.clear()


class MemoryStream:
    """One end of an in-memory stream: ``read``/``write``/``drain``/``close`` like a libp2p
    stream, where ``close`` half-closes (the peer reads EOF) and ``drain`` waits while the
    peer has more than ``limit`` unread bytes."""

    def __init__(self, inbound: _Pipe, outbound: _Pipe) -> None:
        self._in = inbound
        self._out = outbound
        self.bytes_written = 0
        self.write_calls = 0

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all buffered if ``n < 0``); b"" once the peer closed."""
        while not self._in.buf and not self._in.eof:
            await self._in.readable.wait()
        if n < 0 or n >= len(self._in.buf):
            data = bytes(self._in.buf)
            self._in.buf.clear()
        else:
            data = bytes(self._in.buf[:n])
            del self._in.buf[:n]
        self._in._update()
        return data

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; ``asyncio.IncompleteReadError`` if the peer closes first."""
        out = b""
        while len(out) < n:
            chunk = await self.read(n - len(out))
            if not chunk:
                raise asyncio.IncompleteReadError(out, n)
            out += chunk
        return out

    def write(self, data: bytes) -> None:
        if self._out.eof:
            raise BrokenPipeError("write after close")
        self.write_calls += 1
        self.bytes_written += len(data)
        self._out.buf += data
        self._out._update()

    async def drain(self) -> None:
        await self._out.writable.wait()

    def close(self) -> None:
        """Half-close: the peer reads EOF after the bytes already written."""
        self._out.eof = True
        self._out._update()

    async def aclose(self) -> None:
        self.close()

    @property
    def at_eof(self) -> bool:
        return self._in.eof and not self._in.buf


def memory_stream_pair(limit: int = 1 << 20) -> tuple[MemoryStream, MemoryStream]:
    """Two connected ends: what one writes, the other reads."""
    a_to_b = _Pipe(limit)
    b_to_a = _Pipe(limit)
    return MemoryStream(b_to_a, a_to_b), MemoryStream(a_to_b, b_to_a)
