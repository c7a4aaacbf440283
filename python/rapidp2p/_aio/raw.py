"""The raw phase of a TCP-like connection: bytes before a ``_core.conn.Connection`` takes them.

Two users only: the upgrader's fallback (plaintext and private networks, whose
multistream-select and handshake are driven from Python over :class:`RawStream`), and the
bytes that arrive between ``connection_made`` and the upgrade task installing its Rust
connection (handed over whole by :meth:`RawStream.take`). Noise and TLS upgrades never read
through it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rapidp2p.exceptions import ConnectionClosedError

if TYPE_CHECKING:
    from rapidp2p._aio.connection import MuxedConnection

__all__ = ["RAW_BUFFER_CAP", "RawStream"]

#: Bytes the raw phase buffers before it stops reading the socket until the upgrade consumed
#: them: handshake messages are at most 65537 bytes, but a peer whose side of the upgrade is
#: done may already send muxed data (up to a window per stream).
RAW_BUFFER_CAP = 256 * 1024


class RawStream:
    """The byte stream of the fallback upgrade (security negotiation and handshake) over one
    connection, with the private-network protector when there is one. The connection feeds
    it (:meth:`feed`, :meth:`feed_eof`) and pauses its socket while :attr:`over_cap`."""

    __slots__ = ("_buf", "_eof", "_mux", "_waiter", "protector")

    def __init__(self, mux: MuxedConnection) -> None:
        self._mux = mux
        self._buf = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        #: Private network: the ``rapidp2p.pnet.RawProtector`` set by :meth:`protect`.
        self.protector: Any = None

    # ---- from the connection -----------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes read from the socket (raises the protector's Libp2pError)."""
        if self.protector is not None:
            data = self.protector.decrypt(data)
        self._buf += data
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    @property
    def buffered(self) -> int:
        """Bytes received and not read yet (the upgrader's write corking)."""
        return len(self._buf)

    @property
    def over_cap(self) -> bool:
        return len(self._buf) > RAW_BUFFER_CAP

    @property
    def below_resume(self) -> bool:
        return len(self._buf) <= RAW_BUFFER_CAP // 2

    def take(self) -> bytes:
        """Everything buffered (already unmasked), for the Rust connection that takes over."""
        out = bytes(self._buf)
        self._buf.clear()
        self._mux.raw_taken()
        return out

    def protect(self, protector: Any) -> None:
        """Private network: from now on every byte passes through ``protector``; sends our
        nonce. Bytes that arrived before the call are decrypted now."""
        tr = self._mux.transport
        if tr is None or tr.is_closing():
            raise ConnectionClosedError("connection closed before the upgrade")
        self.protector = protector
        tr.write(protector.local_nonce)
        if self._buf:
            early = bytes(self._buf)
            self._buf.clear()
            self._buf += protector.decrypt(early)

    # ---- the stream the fallback upgrade reads and writes -------------------------------

    async def read(self, n: int = -1) -> bytes:
        buf = self._buf
        while not buf:
            if self._eof:
                return b""
            await self._wait()
        if n < 0 or n >= len(buf):
            out = bytes(buf)
            buf.clear()
        else:
            out = bytes(buf[:n])
            del buf[:n]
        self._mux.raw_taken()
        return out

    async def readexactly(self, n: int) -> bytes:
        buf = self._buf
        while len(buf) < n:
            if self._eof:
                partial = bytes(buf)
                buf.clear()
                raise asyncio.IncompleteReadError(partial, n)
            await self._wait()
        out = bytes(buf[:n])
        del buf[:n]
        self._mux.raw_taken()
        return out

    def write(self, data: bytes) -> None:
        mux = self._mux
        tr = mux.transport
        if tr is None or tr.is_closing():
            raise ConnectionClosedError("connection closed during the upgrade")
        if self.protector is not None:
            data = self.protector.encrypt(data)
        tr.write(data)
        if mux.byte_counter is not None:
            mux.byte_counter.outbound += len(data)

    async def drain(self) -> None:
        await self._mux.wait_writable()

    async def close(self) -> None:
        self._mux.abort()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def _wait(self) -> None:
        if self._eof:
            return
        w = self._mux.loop.create_future()
        self._waiter = w
        try:
            await w
        finally:
            self._waiter = None
