"""The asyncio driver and Stream facade, over a pure-Python stand-in for ``_core.conn.Connection``.

The stand-in (:class:`FakeMux`) follows the conn contract (events, send windows, ack credit,
FIN/RST) with a trivial framing, so these tests pin the driver's own behaviour: write
coalescing, flow control through ``ack`` only for consumed bytes, half-close, reset vs EOF,
backpressure pausing the reader, and teardown. The real Rust muxer is covered by the host
and conformance tests.
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from rapidp2p._aio import connection as drv
from rapidp2p._aio.connection import MuxedConnection
from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import StreamClosedError, StreamResetError, StreamTimeout
from rapidp2p.transport.memory import _MemoryTransport

SYN, DATA, FIN, RST, WND, ACK = range(6)
HDR = struct.Struct(">BII")


class FakeMux:
    """Plaintext muxer obeying the ``_core.conn.Connection`` contract (windows, ack, FIN, RST)."""

    def __init__(self, initiator: bool, window: int = 64 * 1024) -> None:
        self.next_id = 1 if initiator else 2
        self.window = window
        self.out = bytearray()
        self.inbuf = bytearray()
        self.send_win: dict[int, int] = {}
        self.credit: dict[int, int] = {}
        self.receive_calls = 0
        self.received: dict[int, int] = {}  # DATA bytes delivered per stream
        self.acked: dict[int, int] = {}  # bytes the driver acknowledged as consumed
        self.max_unacked = 0  # the most ever delivered but not yet acknowledged
        self.is_closed = False
        self.rtt = None
        self.mplex_max_buffered = None  # a yamux-like muxer, with windows
        self.muxer = "/yamux/1.0.0"  # agreed in the handshake (no negotiation inside)

    def _frame(self, kind: int, sid: int, body: bytes = b"") -> None:
        self.out += HDR.pack(kind, sid, len(body)) + body

    def receive_data(self, data: bytes, now: float) -> list[tuple[int, int, object]]:
        self.receive_calls += 1
        self.inbuf += data
        events: list[tuple[int, int, object]] = []
        while len(self.inbuf) >= HDR.size:
            kind, sid, n = HDR.unpack_from(self.inbuf)
            if len(self.inbuf) < HDR.size + n:
                break
            body = bytes(self.inbuf[HDR.size : HDR.size + n])
            del self.inbuf[: HDR.size + n]
            if kind == SYN:
                self.send_win[sid] = self.window
                self.credit[sid] = 0
                self._frame(ACK, sid)
                events.append((drv.EV_STREAM_OPENED, sid, None))
            elif kind == ACK:
                events.append((drv.EV_STREAM_ACKED, sid, None))
            elif kind == DATA:
                self.received[sid] = self.received.get(sid, 0) + len(body)
                unacked = self.received[sid] - self.acked.get(sid, 0)
                self.max_unacked = max(self.max_unacked, unacked)
                if events and events[-1][0] == drv.EV_DATA and events[-1][1] == sid:
                    events[-1] = (drv.EV_DATA, sid, events[-1][2] + body)  # type: ignore[operator]
                else:
                    events.append((drv.EV_DATA, sid, body))
            elif kind == FIN:
                events.append((drv.EV_FIN, sid, None))
            elif kind == RST:
                events.append((drv.EV_RESET, sid, None))
            elif kind == WND:
                self.send_win[sid] = self.send_win.get(sid, 0) + int.from_bytes(body, "big")
                events.append((drv.EV_WINDOW, sid, self.send_win[sid]))
        return events

    @property
    def pending_output(self) -> int:
        return len(self.out)

    def data_to_send(self) -> bytes:
        out = bytes(self.out)
        self.out.clear()
        return out

    def open_stream(self) -> int:
        sid = self.next_id
        self.next_id += 2
        self.send_win[sid] = self.window
        self.credit[sid] = 0
        self._frame(SYN, sid)
        return sid

    def send(
        self, sid: int, data: bytes, fin: bool = False, start: int = 0, end: int | None = None
    ) -> int:
        data = data[start:end]
        n = min(len(data), self.send_win.get(sid, 0))
        if n:
            self.send_win[sid] -= n
            self._frame(DATA, sid, data[:n])
        if fin and n == len(data):
            self._frame(FIN, sid)
        return n

    def send_window(self, sid: int) -> int:
        return self.send_win.get(sid, 0)

    def close_stream(self, sid: int) -> None:
        self._frame(FIN, sid)

    def reset_stream(self, sid: int) -> None:
        self._frame(RST, sid)

    def ack(self, sid: int, n: int) -> None:
        self.acked[sid] = self.acked.get(sid, 0) + n
        self.credit[sid] = self.credit.get(sid, 0) + n
        if self.credit[sid] >= self.window // 2:
            self._frame(WND, sid, self.credit[sid].to_bytes(4, "big"))
            self.credit[sid] = 0

    def next_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass

    def go_away(self, code: int = 0) -> None:
        pass


class Pair:
    def __init__(self, a: MuxedConnection, b: MuxedConnection) -> None:
        self.a, self.b = a, b
        self.inbound: asyncio.Queue[Stream] = asyncio.Queue()


def make_pair(window: int = 64 * 1024, max_unread: int = 1 << 20) -> Pair:
    loop = asyncio.get_running_loop()
    ta, tb = _MemoryTransport(loop, "a"), _MemoryTransport(loop, "b")
    ta.peer, tb.peer = tb, ta
    a = MuxedConnection(max_unread=max_unread)
    b = MuxedConnection(max_unread=max_unread)
    ta.set_protocol(a)
    tb.set_protocol(b)
    a.connection_made(ta)
    b.connection_made(tb)
    pair = Pair(a, b)
    a.start_muxer(FakeMux(True, window))
    b.start_muxer(FakeMux(False, window))
    b.on_stream = pair.inbound.put_nowait
    return pair


async def test_echo_roundtrip_and_eof() -> None:
    p = make_pair()
    s = await p.a.open_stream()
    s.write(b"hello ")
    s.write(b"world")
    await s.close()
    r = await p.inbound.get()
    assert await r.read() == b"hello world"
    assert await r.read() == b""  # EOF stays EOF
    r.write(b"bye")
    await r.close()
    assert await s.read(100) == b"bye"
    assert await s.read(100) == b""


async def test_large_transfer_respects_window_and_acks_consumed_only() -> None:
    p = make_pair(window=16 * 1024)
    s = await p.a.open_stream()
    payload = bytes(range(256)) * 4096  # 1 MiB, 64 windows
    s.write(payload)
    r = await p.inbound.get()
    got = bytearray(await r.read(10000))
    for _ in range(20):  # let more data arrive while the app does not read
        await asyncio.sleep(0)
    mux = p.b._conn
    assert mux.acked[r.stream_id] <= len(got), "only consumed bytes are acknowledged"
    while len(got) < len(payload):
        got += await r.read(10000)
    await s.drain()
    assert bytes(got) == payload
    assert mux.acked[r.stream_id] == len(payload)
    assert mux.max_unacked <= 16 * 1024, "the sender never exceeded the granted window"
    # writes were coalesced: far fewer socket reads than frames
    assert p.b._conn.receive_calls < 200


async def test_readexactly_incomplete_at_eof() -> None:
    p = make_pair()
    s = await p.a.open_stream()
    s.write(b"abc")
    await s.close()
    r = await p.inbound.get()
    assert await r.readexactly(2) == b"ab"
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await r.readexactly(5)
    assert info.value.partial == b"c"


async def test_reset_is_not_eof() -> None:
    p = make_pair()
    s = await p.a.open_stream()
    s.write(b"x")
    r = await p.inbound.get()
    assert await r.read(1) == b"x"
    s.reset()
    with pytest.raises(StreamResetError):
        await r.read(10)
    with pytest.raises(StreamResetError):
        r.write(b"y")
    with pytest.raises(StreamResetError):
        await s.read(1)


async def test_write_after_close_raises() -> None:
    p = make_pair()
    s = await p.a.open_stream()
    await s.close()
    with pytest.raises(StreamClosedError):
        s.write(b"late")


async def test_half_close_keeps_reading_open() -> None:
    p = make_pair()
    s = await p.a.open_stream()
    await s.close()
    r = await p.inbound.get()
    assert await r.read() == b""
    r.write(b"still here")
    await r.close()
    assert await s.read() == b"still here"


async def test_read_timeout() -> None:
    p = make_pair()
    s = await p.a.open_stream()
    s.read_timeout = 0.01
    with pytest.raises(StreamTimeout):
        await s.read(1)


async def test_reader_backpressure_pauses_and_resumes_socket() -> None:
    p = make_pair(window=1 << 20, max_unread=64 * 1024)
    s = await p.a.open_stream()
    s.write(b"z" * (512 * 1024))
    r = await p.inbound.get()
    for _ in range(20):
        await asyncio.sleep(0)
    assert p.b.read_gate.over_cap
    got = 0
    while got < 512 * 1024:
        got += len(await r.read(1 << 20))
    assert not p.b.read_gate.over_cap


async def test_async_iteration_yields_chunks_until_eof() -> None:
    p = make_pair()
    s = await p.a.open_stream()
    for i in range(5):
        s.write(bytes([i]) * 1000)
    await s.close()
    r = await p.inbound.get()
    chunks = [c async for c in r]
    assert b"".join(chunks) == b"".join(bytes([i]) * 1000 for i in range(5))


async def test_connection_loss_fails_streams_and_drain() -> None:
    p = make_pair(window=1024)
    s = await p.a.open_stream()
    s.write(b"q" * 10000)  # more than the window: stays pending
    r = await p.inbound.get()
    assert await r.read(10) == b"q" * 10
    p.b.abort()
    with pytest.raises(StreamResetError):
        await asyncio.wait_for(s.drain(), 5)
    with pytest.raises(StreamResetError):
        await s.read(1)
    assert p.a.num_streams == 0 and p.b.num_streams == 0


async def test_raw_phase_overflow_pauses_reading_instead_of_failing() -> None:
    # A peer done with its side of the upgrade may send muxed data (a window per stream)
    # before ours finished: past the cap we stop reading until the upgrade takes the bytes.
    loop = asyncio.get_running_loop()
    ta, tb = _MemoryTransport(loop, "a"), _MemoryTransport(loop, "b")
    ta.peer, tb.peer = tb, ta
    conn = MuxedConnection()
    ta.set_protocol(conn)
    conn.connection_made(ta)
    conn.data_received(b"h" * 10)
    conn.data_received(b"x" * drv.RAW_BUFFER_CAP)
    assert not conn.is_closed
    assert not ta.is_reading()
    raw = conn.raw_stream()
    assert await raw.readexactly(10) == b"h" * 10
    assert not ta.is_reading(), "still over half the cap"
    rest = await raw.read()
    assert rest == b"x" * drv.RAW_BUFFER_CAP
    assert ta.is_reading()
