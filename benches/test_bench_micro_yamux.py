"""yamux frames through ``_core.conn.Connection``, plaintext (framing only): encode one 100-byte
DATA frame per ``send`` + ``data_to_send`` and decode it on the peer (``receive_data`` + ``ack``,
window update back), versus 64 sends per flush. test_bench_conn.py's crossing group has
decoding alone. Nothing asserts on time."""

from __future__ import annotations

from typing import Any

import pytest

from rapidp2p import _core


def _open_pair() -> tuple[_core.conn.Connection, _core.conn.Connection, int]:
    c = _core.conn.Connection(None, initiator=True, keepalive_interval=None, initial_window=1 << 24)
    s = _core.conn.Connection(
        None, initiator=False, keepalive_interval=None, initial_window=1 << 24
    )
    sid = c.open_stream()
    s.receive_data(c.data_to_send(), 0.0)
    c.receive_data(s.data_to_send(), 0.0)
    return c, s, sid


@pytest.mark.parametrize("frames", [1, 64])
def test_yamux_encode_data_frames(benchmark: Any, frames: int) -> None:
    benchmark.group = "yamux encode + decode (100-byte DATA frames, per flush)"
    benchmark.extra_info["frames_per_flush"] = frames
    c, s, sid = _open_pair()
    payload = b"y" * 100
    size = 12 + len(payload)

    def step() -> None:
        for _ in range(frames):
            c.send(sid, payload)
        out = c.data_to_send()
        assert len(out) == frames * size
        # hand the window back so the sender never stalls
        s.receive_data(out, 0.0)
        s.ack(sid, frames * len(payload))
        c.receive_data(s.data_to_send(), 0.0)

    benchmark(step)
