"""The driver's buffered-protocol read path over the real ``_core.conn.Connection`` (Noise).

A stand-in socket delivers every write through ``get_buffer`` / ``buffer_updated`` in odd read
sizes, like a kernel would: the bytes must arrive whole and in order across partial Noise
frames (carried inside the ``_core.conn.Connection``, never more than one), and the shared read
buffer must grow once reads fill it.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from rapidp2p import _core
from rapidp2p._aio import connection as drv
from rapidp2p._aio.connection import MuxedConnection
from rapidp2p._aio.stream import Stream


class BufferedPipe(asyncio.Transport):
    """One direction of a socket pair: writes land in the peer's buffer in random read sizes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, rng: random.Random, max_read: int) -> None:
        super().__init__()
        self.loop = loop
        self.rng = rng
        self.max_read = max_read
        self.peer: MuxedConnection | None = None
        self.pending = bytearray()
        self.paused = False
        self.closed = False
        self.reads: list[int] = []

    def write(self, data: Any) -> None:
        self.pending += data
        self.loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        peer = self.peer
        while self.pending and peer is not None and not _reading_paused(peer):
            view = peer.get_buffer(-1)
            n = min(len(view), len(self.pending), self.rng.randint(1, self.max_read))
            view[:n] = self.pending[:n]
            del self.pending[:n]
            self.reads.append(n)
            peer.buffer_updated(n)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def _reading_paused(conn: MuxedConnection) -> bool:
    tr = conn.transport
    return isinstance(tr, BufferedPipe) and tr.paused


def _noise_pair() -> tuple[_core.conn.Connection, _core.conn.Connection]:
    i = _core.conn.NoiseHandshake(True)
    r = _core.conn.NoiseHandshake(False)
    r.read_message(i.write_message(b""))
    i.read_message(r.write_message(b""))
    r.read_message(i.write_message(b""))
    return (
        _core.conn.Connection(i, initiator=True, keepalive_interval=None),
        _core.conn.Connection(r, initiator=False, keepalive_interval=None),
    )


def _wire(max_read: int, seed: int) -> tuple[MuxedConnection, MuxedConnection, BufferedPipe]:
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    a, b = MuxedConnection(), MuxedConnection()
    ta, tb = BufferedPipe(loop, rng, max_read), BufferedPipe(loop, rng, max_read)
    ta.peer, tb.peer = b, a
    a.connection_made(ta)
    b.connection_made(tb)
    ca, cb = _noise_pair()
    a.start_muxer(ca)
    b.start_muxer(cb)
    return a, b, ta


async def _transfer(max_read: int, seed: int, size: int) -> tuple[MuxedConnection, BufferedPipe]:
    a, b, ta = _wire(max_read, seed)
    inbound: asyncio.Queue[Stream] = asyncio.Queue()
    b.on_stream = inbound.put_nowait
    s = await a.open_stream()
    payload = random.Random(seed).randbytes(size)
    s.write(payload)
    closing = asyncio.create_task(s.close())  # waits for window credit: read concurrently
    r = await inbound.get()
    got = await r.read()
    await closing
    assert got == payload
    return b, ta


async def test_odd_read_sizes_across_partial_frames() -> None:
    for max_read, seed in [(1, 1), (100, 2), (70_000, 3), (3_000_000, 4)]:
        size = 20_000 if max_read == 1 else 3_000_000
        b, ta = await _transfer(max_read, seed, size)
        assert b._conn.carried == 0, "no partial frame left once everything arrived"
        assert sum(ta.reads) > size


async def test_shared_read_buffer_grows_for_bulk_and_carries_at_most_a_frame() -> None:
    carried: list[int] = []
    orig = MuxedConnection.buffer_updated

    def spy(self: MuxedConnection, nbytes: int) -> None:
        orig(self, nbytes)
        if self._conn is not None:
            carried.append(self._conn.carried)

    MuxedConnection.buffer_updated = spy  # type: ignore[method-assign]
    try:
        b, ta = await _transfer(3_000_000, 5, 4_000_000)
    finally:
        MuxedConnection.buffer_updated = orig  # type: ignore[method-assign]
    assert max(ta.reads) == drv.RBUF_MAX, "reads as large as the shared buffer"
    assert 0 < max(carried) < 65_537 + 2, "partial frames carried, never more than one"
    for _ in range(3):
        await b.ping()
    assert b._conn.carried == 0
