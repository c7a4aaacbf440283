"""Hypothesis state machine over two plaintext ``_core.conn.Connection`` objects wired in memory.

Rules open, send, deliver partial bytes, ack, close and reset streams on either side; the
invariants check that every stream's bytes arrive in order and complete before its FIN, that
a sender never has more than the receiver's window unconsumed, and that limits hold.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rapidp2p import _core
from rapidp2p.exceptions import StreamClosedError, StreamLimitError, StreamResetError

MAX_STREAMS = 12
BACKLOG = 6
SIDES = st.sampled_from([0, 1])


def pattern(sid: int, offset: int, n: int) -> bytes:
    """Deterministic bytes per stream and offset, so reordering or loss would show."""
    return bytes((sid * 31 + offset + i) % 251 for i in range(n))


class YamuxPair(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.conns = [
            _core.conn.Connection(
                None,
                initiator=side == 0,
                max_streams=MAX_STREAMS,
                ack_backlog=BACKLOG,
                keepalive_interval=None,
            )
            for side in (0, 1)
        ]
        self.wire = [bytearray(), bytearray()]  # bytes in flight from side i to the other
        self.ids: list[int] = []
        self.sent: dict[tuple[int, int], bytearray] = {}
        self.recv: dict[tuple[int, int], bytearray] = {}
        self.acked: dict[tuple[int, int], int] = {}
        self.write_closed: set[tuple[int, int]] = set()
        self.fin_seen: set[tuple[int, int]] = set()
        self.reset: set[int] = set()
        self.known: set[tuple[int, int]] = set()  # (side, sid): that side has seen the stream

    def flush(self, side: int) -> None:
        self.wire[side] += self.conns[side].data_to_send()

    def pick(self, side: int, idx: int) -> int | None:
        """A stream this side knows of (a side cannot act on a SYN it has not received)."""
        mine = [sid for sid in self.ids if (side, sid) in self.known]
        return mine[idx % len(mine)] if mine else None

    @rule(side=SIDES)
    def open_stream(self, side: int) -> None:
        try:
            sid = self.conns[side].open_stream()
        except StreamLimitError:
            return
        assert sid % 2 == (1 if side == 0 else 0)
        assert sid not in self.ids
        self.ids.append(sid)
        self.known.add((side, sid))
        for s in (0, 1):
            self.sent[(s, sid)] = bytearray()
            self.recv[(s, sid)] = bytearray()
            self.acked[(s, sid)] = 0
        self.flush(side)

    @precondition(lambda self: self.ids)
    @rule(side=SIDES, idx=st.integers(0, 100), size=st.integers(0, 300_000), fin=st.booleans())
    def send(self, side: int, idx: int, size: int, fin: bool) -> None:
        sid = self.pick(side, idx)
        if sid is None:
            return
        conn = self.conns[side]
        key = (side, sid)
        try:
            window = conn.send_window(sid)
            data = pattern(sid, len(self.sent[key]), size)
            n = conn.send(sid, data, fin)
        except StreamResetError:
            assert sid in self.reset
            return
        except StreamClosedError:
            assert key in self.write_closed or sid in self.reset or key in self.fin_seen
            return
        assert n == min(size, window)
        self.sent[key] += data[:n]
        if fin and n == size:
            self.write_closed.add(key)
        self.flush(side)

    @rule(side=SIDES, k=st.integers(1, 400_000))
    def deliver(self, side: int, k: int) -> None:
        chunk = bytes(self.wire[side][:k])
        del self.wire[side][:k]
        other = 1 - side
        events = self.conns[other].receive_data(chunk, 0.0)
        for kind, sid, value in events:
            self.on_event(other, kind, sid, value)
        self.flush(other)

    def on_event(self, side: int, kind: int, sid: int, value: Any) -> None:
        peer = 1 - side
        if kind == _core.conn.EV_STREAM_OPENED:
            assert sid % 2 == (1 if peer == 0 else 0)
            assert sid in self.ids
            self.known.add((side, sid))
        elif kind == _core.conn.EV_DATA:
            got = self.recv[(side, sid)]
            got += value
            sent = self.sent[(peer, sid)]
            assert bytes(got) == bytes(sent[: len(got)]), "bytes arrive in order, intact"
        elif kind == _core.conn.EV_FIN:
            assert bytes(self.recv[(side, sid)]) == bytes(self.sent[(peer, sid)])
            self.fin_seen.add((side, sid))
        elif kind == _core.conn.EV_RESET:
            self.reset.add(sid)
        elif kind == _core.conn.EV_WINDOW:
            assert value == self.conns[side].send_window(sid)

    @precondition(lambda self: self.ids)
    @rule(side=SIDES, idx=st.integers(0, 100), frac=st.floats(0, 1))
    def ack(self, side: int, idx: int, frac: float) -> None:
        sid = self.pick(side, idx)
        if sid is None:
            return
        key = (side, sid)
        pending = len(self.recv[key]) - self.acked[key]
        n = int(pending * frac)
        self.conns[side].ack(sid, n)
        self.acked[key] += n
        self.flush(side)

    @precondition(lambda self: self.ids)
    @rule(side=SIDES, idx=st.integers(0, 100))
    def close(self, side: int, idx: int) -> None:
        sid = self.pick(side, idx)
        if sid is None:
            return
        try:
            self.conns[side].close_stream(sid)
        except StreamResetError:
            assert sid in self.reset
            return
        except StreamClosedError:
            return
        self.write_closed.add((side, sid))
        self.flush(side)

    @precondition(lambda self: self.ids)
    @rule(side=SIDES, idx=st.integers(0, 100))
    def reset_stream(self, side: int, idx: int) -> None:
        sid = self.pick(side, idx)
        if sid is None:
            return
        self.conns[side].reset_stream(sid)
        self.reset.add(sid)
        self.flush(side)

    @invariant()
    def never_more_than_the_window_unconsumed(self) -> None:
        for sid in self.ids:
            if sid in self.reset:
                continue
            for side in (0, 1):
                window = self.conns[1 - side].receive_window(sid)
                if window is None:
                    continue
                unconsumed = len(self.sent[(side, sid)]) - self.acked[(1 - side, sid)]
                assert unconsumed <= window

    @invariant()
    def limits_hold(self) -> None:
        for conn in self.conns:
            assert conn.num_streams <= MAX_STREAMS
            assert not conn.is_closed


YamuxPair.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestYamuxPair = YamuxPair.TestCase
