"""The application's view of one muxed stream: read, write, drain, close, reset.

A :class:`Stream` holds no socket: the connection protocol pushes events into it
(``_feed``, ``_feed_eof``, ``_set_reset``, ``_on_window``) and it pulls the connection to send
(``send``) and to grant window credit (``ack``) only for bytes the application consumed.
Writes go straight into the muxer while its send window is open; the rest waits here, in
bounded slices, until an ``EV_WINDOW`` event, so a huge ``write`` never copies its tail twice.

Delivery: bytes handed to the socket are not bytes the remote application read. A peer that
tears its session down drops what it buffered (go-yamux does), and yamux window updates are
batched (sent after half a window is consumed), so they cannot confirm a small message. What
can be observed is the remote's FIN after ours: libp2p peers close their side once they read
our EOF (or after answering). :meth:`Stream.close` with ``wait=True`` waits for exactly that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, cast

from rapidp2p.exceptions import (
    ConnectionClosedError,
    Libp2pError,
    ReadLimitError,
    StreamClosedError,
    StreamResetError,
    StreamTimeout,
)

if TYPE_CHECKING:
    from rapidp2p.metrics._counters import ByteCounter
    from rapidp2p.peer import PeerId
    from rapidp2p.transport.contracts import Connection, StreamCarrier

__all__ = ["Stream"]

#: How the reset reason of a stream whose connection ended starts (see ``_set_reset``).
CONNECTION_LOST = "connection closed"
#: Largest slice of a pending write offered to the muxer in one ``send`` call.
_SEND_SLICE = 1 << 20

#: Default ``limit`` of :meth:`Stream.readline` / :meth:`Stream.readuntil` (asyncio's 64 KiB).
DEFAULT_LINE_LIMIT = 1 << 16


class Stream:
    """One bidirectional libp2p stream (a yamux stream inside a secured connection).

    Reading: ``read(n)`` returns up to ``n`` bytes (``-1``: everything until EOF) and ``b""``
    at EOF; ``readexactly`` raises :class:`asyncio.IncompleteReadError` at EOF; ``readline``
    and ``readuntil`` work as :class:`asyncio.StreamReader`'s (with
    :class:`~rapidp2p.exceptions.ReadLimitError` past ``limit``); a reset raises
    :class:`StreamResetError`; ``read_timeout`` (seconds) turns a stall into
    :class:`StreamTimeout`. Writing: ``write`` never blocks, ``await drain()`` waits until the
    muxer took the data and the socket is writable; ``await close()`` half-closes (FIN).
    """

    __slots__ = (
        "_bytes",
        "_chunks",
        "_close_waiters",
        "_closed_write",
        "_eof",
        "_fin_pending",
        "_lazy",
        "_mux",
        "_pending",
        "_pending_size",
        "_read_waiter",
        "_reset",
        "_reset_reason",
        "_unread",
        "_write_waiters",
        "_wrote",
        "initiator",
        "protocol",
        "read_timeout",
        "stream_id",
        "write_timeout",
    )

    def __init__(self, mux: StreamCarrier, stream_id: int, *, initiator: bool) -> None:
        self._mux = mux
        self.stream_id = stream_id
        self.initiator = initiator
        #: The protocol negotiated on this stream (set by multistream-select).
        self.protocol: str | None = None
        self.read_timeout: float | None = None
        self.write_timeout: float | None = mux.default_write_timeout
        self._chunks: deque[bytes] = deque()
        self._unread = 0
        self._eof = False
        self._reset = False
        self._reset_reason = "stream reset"
        self._closed_write = False
        self._fin_pending = False
        self._pending: deque[tuple[bytes, int]] = deque()
        self._pending_size = 0
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_waiters: list[asyncio.Future[None]] = []
        self._close_waiters: list[asyncio.Future[None]] = []
        #: True once the application wrote a byte: only such streams have something the
        #: remote may not have consumed yet (graceful shutdown waits for them).
        self._wrote = False
        self._lazy: Any = None
        #: Per-protocol byte totals, set once the protocol is known when metrics are on.
        self._bytes: ByteCounter | None = None

    # ---- public properties -------------------------------------------------------------

    @property
    def conn(self) -> Connection:
        """The connection this stream lives in (its carrier is the connection itself)."""
        return cast("Connection", self._mux)

    @property
    def remote_peer(self) -> PeerId:
        """The remote peer's :class:`~rapidp2p.peer.PeerId`."""
        peer: PeerId = self._mux.remote_peer  # set by the upgrade, before any stream exists
        return peer

    @property
    def is_reset(self) -> bool:
        return self._reset

    @property
    def at_eof(self) -> bool:
        """True once the remote half-closed and every buffered byte was read."""
        return self._eof and not self._chunks

    @property
    def remote_closed(self) -> bool:
        """True once the remote half-closed its side (its FIN arrived), read or not."""
        return self._eof

    @property
    def has_unread(self) -> bool:
        """True while received bytes wait to be read by the application."""
        return bool(self._chunks)

    @property
    def unread_bytes(self) -> int:
        """Bytes received and not yet read by the application."""
        return self._unread

    @property
    def write_done(self) -> bool:
        """True once our FIN went to the carrier (nothing of ours is still queued here)."""
        return self._closed_write and not self._pending

    @property
    def settled(self) -> bool:
        """Nothing of ours can still be lost: we wrote nothing, or the remote closed or reset
        its side. Graceful shutdown lingers on streams that are not settled."""
        return not self._wrote or self._eof or self._reset

    def __repr__(self) -> str:
        return f"<Stream id={self.stream_id} protocol={self.protocol!r}>"

    # ---- reading -----------------------------------------------------------------------

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (at least one unless at EOF); ``n=-1`` reads until EOF."""
        if n < 0:
            parts: list[bytes] = []
            while True:
                chunk = await self.read(1 << 30)
                if not chunk:
                    return b"".join(parts)
                parts.append(chunk)
        if n == 0:
            return b""
        if self._lazy is not None:
            await self._confirm_lazy()
        while not self._chunks:
            if self._reset:
                raise StreamResetError(self._reset_reason)
            if self._eof:
                return b""
            await self._wait_readable()
        if self._reset:
            raise StreamResetError(self._reset_reason)
        chunks = self._chunks
        first = chunks[0]
        if len(first) > n:
            chunks[0] = first[n:]
            out = first[:n]
        else:
            # One whole chunk, never a join: chunks are already large (one per socket read),
            # and copying them again would cost more than the extra call.
            out = chunks.popleft()
        self._consumed(len(out))
        return out

    def _set_lazy(self, lazy: Any) -> None:
        """Negotiation answers still to check (lazy multistream) before the first read."""
        self._lazy = lazy

    async def _confirm_lazy(self) -> None:
        lazy, self._lazy = self._lazy, None
        try:
            await lazy.confirm()
        except BaseException:
            self.reset()
            raise

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or :class:`asyncio.IncompleteReadError` at EOF."""
        if n <= 0:
            return b""
        parts: list[bytes] = []
        got = 0
        while got < n:
            chunk = await self.read(n - got)
            if not chunk:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(chunk)
            got += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def readuntil(
        self, separator: bytes = b"\n", *, limit: int = DEFAULT_LINE_LIMIT
    ) -> bytes:
        """Data up to and including ``separator`` (asyncio ``StreamReader.readuntil``).

        At EOF before the separator: :class:`asyncio.IncompleteReadError` carrying what was
        read (consumed). No separator within ``limit`` bytes: :class:`ReadLimitError`, and the
        data stays buffered (read it with :meth:`read`, as with asyncio).
        """
        if not separator:
            raise ValueError("separator must not be empty")
        if self._lazy is not None:
            await self._confirm_lazy()
        seplen = len(separator)
        searched = 0
        while True:
            buf = self._buffered()
            idx = buf.find(separator, max(0, searched - seplen + 1))
            if idx >= 0:
                end = idx + seplen
                if end > limit:
                    raise ReadLimitError(
                        f"separator found after {idx} bytes, over the {limit}-byte limit", idx
                    )
                return self._take(end)
            searched = len(buf)
            if searched > limit:
                raise ReadLimitError(f"no separator within the {limit}-byte limit", searched)
            if self._reset:
                raise StreamResetError(self._reset_reason)
            if self._eof:
                raise asyncio.IncompleteReadError(self._take(searched), None)
            await self._wait_readable()

    async def readline(self, *, limit: int = DEFAULT_LINE_LIMIT) -> bytes:
        """One line including its ``\n``; the remaining data (maybe ``b""``) at EOF.

        Like asyncio's ``readline``: a line over ``limit`` bytes raises
        :class:`ReadLimitError` (a ValueError) and is discarded up to and including its
        ``\n`` when that is already buffered, else the whole buffer.
        """
        try:
            return await self.readuntil(b"\n", limit=limit)
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except ReadLimitError as exc:
            buf = self._buffered()
            idx = buf.find(b"\n", exc.consumed)
            self._take(idx + 1 if idx >= 0 else len(buf))
            raise

    def _buffered(self) -> bytes:
        """Every buffered byte as one chunk (joined in place: the next search is free)."""
        chunks = self._chunks
        if not chunks:
            return b""
        if len(chunks) > 1:
            joined = b"".join(chunks)
            chunks.clear()
            chunks.append(joined)
        return chunks[0]

    def _take(self, n: int) -> bytes:
        """Removes the first ``n`` buffered bytes (which are in one chunk) and credits them."""
        chunks = self._chunks
        if n <= 0:
            return b""
        first = chunks[0]
        if n == len(first):
            chunks.popleft()
            out = first
        else:
            out = first[:n]
            chunks[0] = first[n:]
        self._consumed(n)
        return out

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter_chunks()

    async def _iter_chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.read(1 << 30)
            if not chunk:
                return
            yield chunk

    async def _wait_readable(self) -> None:
        waiter = self._mux.loop.create_future()
        self._read_waiter = waiter
        try:
            if self.read_timeout is None:
                await waiter
            else:
                try:
                    await asyncio.wait_for(waiter, self.read_timeout)
                except asyncio.TimeoutError:
                    raise StreamTimeout(
                        f"no data on stream {self.stream_id} for {self.read_timeout} s"
                    ) from None
        finally:
            self._read_waiter = None

    def _consumed(self, n: int) -> None:
        self._unread -= n
        bc = self._bytes  # counted as read by the application: after the negotiation
        if bc is not None:
            bc.inbound += n
        self._mux.stream_consumed(self, n)

    # ---- writing -----------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queues ``data``; never blocks. Await :meth:`drain` to respect backpressure."""
        if self._reset:
            raise StreamResetError(self._reset_reason)
        if self._closed_write:
            raise StreamClosedError(f"write after close on stream {self.stream_id}")
        if not data:
            return
        self._wrote = True
        bc = self._bytes
        if bc is not None:
            bc.outbound += len(data)
        if not isinstance(data, bytes):
            data = bytes(data)
        if self._pending:
            self._pending.append((data, 0))
            self._pending_size += len(data)
            return
        accepted = self._mux.stream_send(self, data, False) if len(data) <= _SEND_SLICE else 0
        if accepted < len(data):
            self._pending.append((data, accepted))
            self._pending_size += len(data) - accepted
            self._push_pending()

    def writelines(self, chunks: list[bytes]) -> None:
        self.write(b"".join(chunks))

    def _push_pending(self) -> None:
        """Offers queued data to the muxer (called on window growth)."""
        pending = self._pending
        while pending:
            data, offset = pending[0]
            room = min(_SEND_SLICE, self._mux.stream_send_window(self), len(data) - offset)
            if room <= 0:
                break
            # By offsets, not a slice: the muxer references the bytes (no copy).
            accepted = self._mux.stream_send(self, data, False, offset, offset + room)
            if accepted:
                self._pending_size -= accepted
                offset += accepted
                if offset >= len(data):
                    pending.popleft()
                else:
                    pending[0] = (data, offset)
            if accepted < room:
                break
        if not pending:
            if self._fin_pending:
                self._fin_pending = False
                self._mux.stream_close(self)
            self._wake_writers()

    def on_window(self) -> None:
        if self._pending:
            self._push_pending()

    async def drain(self) -> None:
        """Waits until the muxer accepted every queued byte and the socket is writable."""
        if self._reset:
            raise StreamResetError(self._reset_reason)
        while self._pending or self._mux.write_paused:
            if self._reset:
                raise StreamResetError(self._reset_reason)
            if self._mux.is_closed:
                raise ConnectionClosedError("connection closed while writing")
            if self._pending:
                waiter: asyncio.Future[None] = self._mux.loop.create_future()
                self._write_waiters.append(waiter)
                wait: Awaitable[None] = waiter
            else:
                wait = self._mux.wait_writable()
            if self.write_timeout is None:
                await wait
            else:
                try:
                    await asyncio.wait_for(wait, self.write_timeout)
                except asyncio.TimeoutError:
                    raise StreamTimeout(
                        f"stream {self.stream_id}: peer did not take data for "
                        f"{self.write_timeout} s"
                    ) from None
        if self._reset:
            raise StreamResetError(self._reset_reason)

    def _wake_writers(self, exc: BaseException | None = None) -> None:
        waiters, self._write_waiters = self._write_waiters, []
        for w in waiters:
            if not w.done():
                if exc is None:
                    w.set_result(None)
                else:
                    w.set_exception(exc)

    async def close(self, *, wait: bool = False, timeout: float | None = 10.0) -> None:
        """Half-closes: sends FIN after every queued byte; reading stays possible.

        With ``wait=False`` (the default) errors while flushing are swallowed, as a close
        should. With ``wait=True`` it returns only once the remote closed its side too (its
        FIN arrived: libp2p peers close after reading our EOF, or after answering), which is
        the only sign that the remote application consumed a one-way message; it raises
        :class:`StreamResetError` if the remote reset the stream instead,
        :class:`ConnectionClosedError` if the connection ended first and
        :class:`StreamTimeout` after ``timeout`` seconds. A remote that must first send a
        large answer needs it read (flow control), so read answers before waiting.
        """
        if not wait:
            if self._reset or self._closed_write:
                return
            self.close_write_nowait()
            with contextlib.suppress(Libp2pError, StreamTimeout):
                await self.drain()
            return
        loop = self._mux.loop
        deadline = None if timeout is None else loop.time() + timeout
        self.close_write_nowait()
        await self._flush_for_close(deadline)
        await self.wait_remote_closed(None if deadline is None else deadline - loop.time())

    async def _flush_for_close(self, deadline: float | None) -> None:
        if deadline is None:
            await self.drain()
            return
        try:
            await asyncio.wait_for(self.drain(), max(0.0, deadline - self._mux.loop.time()))
        except asyncio.TimeoutError:
            raise StreamTimeout(
                f"stream {self.stream_id}: queued data not taken before the close timeout"
            ) from None

    async def wait_remote_closed(self, timeout: float | None = 10.0) -> None:
        """Waits until the remote half-closed its side (see :meth:`close` with ``wait``).

        Raises :class:`StreamResetError` on a reset, :class:`ConnectionClosedError` when the
        connection ends first, :class:`StreamTimeout` after ``timeout`` seconds.
        """
        while not self._eof:
            if self._reset:
                if self._reset_reason.startswith(CONNECTION_LOST):
                    raise ConnectionClosedError(
                        f"stream {self.stream_id}: {self._reset_reason} before the remote "
                        "closed its side"
                    )
                raise StreamResetError(self._reset_reason)
            waiter = self._mux.loop.create_future()
            self._close_waiters.append(waiter)
            try:
                if timeout is None:
                    await waiter
                else:
                    await asyncio.wait_for(waiter, max(0.0, timeout))
            except asyncio.TimeoutError:
                raise StreamTimeout(
                    f"stream {self.stream_id}: the remote did not close its side within "
                    f"{timeout:.3g} s"
                ) from None
            finally:
                with contextlib.suppress(ValueError):
                    self._close_waiters.remove(waiter)

    def _wake_close_waiters(self) -> None:
        waiters, self._close_waiters = self._close_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def close_write_nowait(self) -> None:
        """Half-closes without waiting (FIN goes out after queued data)."""
        if self._reset or self._closed_write:
            return
        self._closed_write = True
        if self._pending:
            self._fin_pending = True
        else:
            self._mux.stream_close(self)

    def reset(self) -> None:
        """Aborts both directions (RST); the remote sees :class:`StreamResetError`."""
        if self._reset:
            return
        self._mux.stream_reset(self)
        self.on_reset("stream reset locally")

    # ---- events from the connection ----------------------------------------------------

    def on_data(self, data: bytes) -> None:
        if self._reset:
            self._mux.stream_consumed(self, len(data))
            return
        self._chunks.append(data)
        self._unread += len(data)
        w = self._read_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def on_eof(self) -> None:
        self._eof = True
        w = self._read_waiter
        if w is not None and not w.done():
            w.set_result(None)
        if self._close_waiters:
            self._wake_close_waiters()

    def on_reset(self, reason: str = "stream reset by the remote") -> None:
        if self._reset:
            return
        self._reset = True
        self._reset_reason = reason
        if self._unread:
            self._mux.stream_discarded(self._unread)
        self._chunks.clear()
        self._unread = 0
        self._pending.clear()
        self._pending_size = 0
        w = self._read_waiter
        if w is not None and not w.done():
            w.set_result(None)
        self._wake_writers()
        if self._close_waiters:
            self._wake_close_waiters()
