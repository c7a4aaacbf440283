"""A libp2p stream as an asyncio transport, so a relayed circuit is just one more raw pipe.

A relayed connection is a stream (``hop`` on the dialer's side, ``stop`` on the listener's)
upgraded with Noise and yamux exactly like a TCP socket. :class:`StreamPipe` gives the
ordinary connection driver (:class:`~rapidp2p._aio.connection.MuxedConnection`) that stream
as an :class:`asyncio.Transport`: a reader task feeds ``data_received`` (paused with
``pause_reading``, which stops reading the stream, hence its yamux window); writes go to the
stream, and ``pause_writing`` holds the driver while the stream's queue is past a high-water
mark.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from rapidp2p._aio.connection import MuxedConnection
from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import Libp2pError, StreamResetError

__all__ = ["StreamPipe"]

#: Bytes written and not yet drained before the driver is told to pause writing.
HIGH_WATER = 256 * 1024
#: Largest read handed to the driver at once.
READ_SIZE = 64 * 1024
#: Seconds a closed pipe keeps reading (and discarding) until the remote closes its side.
CLOSE_GRACE = 5.0


class StreamPipe(asyncio.Transport):
    """An :class:`asyncio.Transport` over one :class:`Stream` (see the module docstring)."""

    def __init__(self, stream: Stream, protocol: MuxedConnection) -> None:
        super().__init__()
        self._stream = stream
        self._protocol = protocol
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._lost = False
        self._read_paused = False
        self._resume: asyncio.Future[None] | None = None
        self._unflushed = 0
        self._write_paused = False
        self._drainer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        #: The lingering close, referenced so it is not collected mid-way.
        self._closer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """``connection_made``, then the reader task."""
        self._protocol.connection_made(self)
        self._reader = self._loop.create_task(self._read_loop())

    @property
    def stream(self) -> Stream:
        return self._stream

    # ---- asyncio.BaseTransport ---------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "stream":
            return self._stream
        return default  # no peername: the host keys no per-IP limit on a circuit

    def is_closing(self) -> bool:
        return self._closing

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def close(self) -> None:
        """Half-closes the stream after what was written; the driver sees the pipe gone."""
        if self._closing:
            return
        self._closing = True
        self._stream.close_write_nowait()
        self._closer = self._loop.create_task(self._linger())
        self._lose(None)

    def abort(self) -> None:
        self._closing = True
        self._stream.reset()
        self._lose(None)

    # ---- reading -----------------------------------------------------------------------

    def is_reading(self) -> bool:
        return not self._read_paused

    def pause_reading(self) -> None:
        self._read_paused = True

    def resume_reading(self) -> None:
        if self._read_paused:
            self._read_paused = False
            w = self._resume
            if w is not None and not w.done():
                w.set_result(None)

    async def _read_loop(self) -> None:
        exc: Exception | None = None
        try:
            while not self._lost:
                while self._read_paused and not self._lost:
                    self._resume = self._loop.create_future()
                    await self._resume
                if self._lost:
                    return
                data = await self._stream.read(READ_SIZE)
                if self._lost:
                    return
                if not data:
                    self._protocol.eof_received()
                    break
                self._protocol.data_received(data)
        except (Libp2pError, OSError) as err:
            exc = err if isinstance(err, Exception) else None
        self._closing = True
        if isinstance(exc, StreamResetError):
            exc = ConnectionResetError(str(exc))
        self._lose(exc)

    async def _linger(self) -> None:
        """After our FIN: drain the remote's tail until it closes, then drop the stream."""
        st = self._stream
        with contextlib.suppress(Libp2pError, asyncio.TimeoutError):
            await asyncio.wait_for(self._discard(), CLOSE_GRACE)
        if not st.remote_closed:
            st.reset()

    async def _discard(self) -> None:
        with contextlib.suppress(Libp2pError):
            await self._stream.drain()
        while await self._stream.read(READ_SIZE):
            pass

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        w = self._resume
        if w is not None and not w.done():
            w.set_result(None)
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        self._loop.call_soon(self._protocol.connection_lost, exc)

    # ---- writing -----------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        try:
            self._stream.write(data)
        except Libp2pError as exc:
            self._closing = True
            self._lose(ConnectionResetError(str(exc)))
            return
        self._unflushed += len(data)
        if not self._write_paused and self._unflushed > HIGH_WATER:
            self._write_paused = True
            self._protocol.pause_writing()
        if self._drainer is None:
            self._drainer = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._unflushed:
                self._unflushed = 0
                await self._stream.drain()
        except Libp2pError as exc:
            self._closing = True
            self._lose(ConnectionResetError(str(exc)))
        finally:
            self._drainer = None
        if self._write_paused and not self._lost:
            self._write_paused = False
            self._protocol.resume_writing()

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self._unflushed
