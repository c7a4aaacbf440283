"""``_core.conn.Connection``: what one Python -> Rust crossing costs, and bulk yamux throughput.

- ``crossing``: ``receive_data`` + ``ack`` for one 100-byte DATA frame versus a batch of 64
  such frames in one call (per-frame cost = batch time / 64).
- ``throughput``: 1 MiB through a pair of connections per round (sender ``send`` +
  ``data_to_send``, receiver ``receive_data`` + ``ack``, window update back), plaintext and
  Noise. MiB/s = 1 / median seconds.

Nothing here asserts on time; run with ``python3 -m nox -s bench`` or
``pytest benches/test_bench_conn.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from rapidp2p import _core

MIB = 1 << 20


def _pair(encrypted: bool, **kw: Any) -> tuple[_core.conn.Connection, _core.conn.Connection]:
    kw.setdefault("keepalive_interval", None)
    if not encrypted:
        return (
            _core.conn.Connection(None, initiator=True, **kw),
            _core.conn.Connection(None, initiator=False, **kw),
        )
    i = _core.conn.NoiseHandshake(True)
    r = _core.conn.NoiseHandshake(False)
    r.read_message(i.write_message(b""))
    i.read_message(r.write_message(b""))
    r.read_message(i.write_message(b""))
    return _core.conn.Connection(i, initiator=True, **kw), _core.conn.Connection(
        r, initiator=False, **kw
    )


def _data_frames(sid: int, count: int, size: int) -> bytes:
    header = bytes([0, 0, 0, 0]) + sid.to_bytes(4, "big") + size.to_bytes(4, "big")
    return (header + b"x" * size) * count


@pytest.mark.parametrize("batch", [1, 64])
def test_crossing_receive_data(benchmark: Any, batch: int) -> None:
    benchmark.group = "conn crossing: receive_data + ack (100-byte DATA frames)"
    benchmark.extra_info["frames_per_call"] = batch
    c, s = _pair(False)
    sid = c.open_stream()
    s.receive_data(c.data_to_send(), 0.0)
    s.data_to_send()
    wire = _data_frames(sid, batch, 100)
    n = 100 * batch

    def step() -> None:
        s.receive_data(wire, 0.0)
        s.ack(sid, n)

    benchmark(step)
    s.data_to_send()


@pytest.mark.parametrize("encrypted", [False, True], ids=["plaintext", "noise"])
def test_throughput_1mib_round(benchmark: Any, encrypted: bool) -> None:
    benchmark.group = "conn throughput: 1 MiB per round through a pair"
    c, s = _pair(encrypted, initial_window=4 * MIB, max_window=16 * MIB)
    sid = c.open_stream()
    c.receive_data(s.data_to_send(), 0.0)
    s.receive_data(c.data_to_send(), 0.0)
    c.receive_data(s.data_to_send(), 0.0)
    payload = bytes(range(256)) * (MIB // 256)

    def round_trip() -> None:
        assert c.send(sid, payload) == MIB
        got = 0
        for kind, _, value in s.receive_data(c.data_to_send(), 0.0):
            if kind == _core.conn.EV_DATA:
                got += len(value)
        s.ack(sid, got)
        c.receive_data(s.data_to_send(), 0.0)

    benchmark(round_trip)
