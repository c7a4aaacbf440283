"""ROBUSTNESS 12-17 through the Python glue: raw yamux frames from a hostile peer.

The Rust crate has its own tests of these rules (rust/yamux/tests/session.rs); these pin what
Python sees: the typed exception, the exact GoAway(protocol error) queued for the peer, the
connection closed and nothing else, and bounded output under floods.
"""

from __future__ import annotations

import struct

import pytest

from rapidp2p import _core
from rapidp2p.exceptions import ConnectionClosedError, MuxerError

HEADER = struct.Struct(">BBHII")
DATA, WINDOW_UPDATE, PING, GO_AWAY = range(4)
SYN, ACK, FIN, RST = 1, 2, 4, 8
PROTOCOL_ERROR = 1
WINDOW = 256 * 1024


def frame(kind: int, flags: int, sid: int, length: int, body: bytes = b"") -> bytes:
    return HEADER.pack(0, kind, flags, sid, length) + body


def syn(sid: int) -> bytes:
    return frame(WINDOW_UPDATE, SYN, sid, 0)


def headers(wire: bytes) -> list[tuple[int, int, int, int, int]]:
    """Parses a byte string of yamux frames into headers (skipping DATA bodies)."""
    out, pos = [], 0
    while pos < len(wire):
        hdr = HEADER.unpack_from(wire, pos)
        out.append(hdr)
        pos += HEADER.size + (hdr[4] if hdr[1] == DATA else 0)
    assert pos == len(wire)
    return out


def server(**kw: int) -> _core.conn.Connection:
    """The listener side of a plaintext connection (the peer opens odd stream IDs)."""
    return _core.conn.Connection(None, initiator=False, keepalive_interval=None, **kw)


def expect_protocol_error(setup: bytes, bad: bytes) -> _core.conn.Connection:
    """Feeds ``setup`` (must be accepted), then ``bad``: a MuxerError, exactly one GoAway
    with the protocol-error code queued, and the connection closed for new work."""
    conn = server()
    conn.receive_data(setup, 0.0)
    conn.data_to_send()
    with pytest.raises(MuxerError):
        conn.receive_data(bad, 0.0)
    assert conn.is_closed
    assert headers(conn.data_to_send()) == [(0, GO_AWAY, 0, 0, PROTOCOL_ERROR)]
    with pytest.raises(ConnectionClosedError):
        conn.open_stream()
    # Later input from the same peer is dropped, not parsed again.
    assert conn.receive_data(syn(3), 0.0) == []
    return conn


@pytest.mark.parametrize(
    "bad",
    [
        HEADER.pack(1, DATA, 0, 1, 0),  # version 1
        HEADER.pack(0xFF, WINDOW_UPDATE, SYN, 1, 0),
        HEADER.pack(0, 4, 0, 1, 0),  # type 4
        HEADER.pack(0, 0xFF, 0, 1, 0),
    ],
    ids=["version-1", "version-255", "type-4", "type-255"],
)
def test_12_bad_version_or_type_is_goaway_protocol_error(bad: bytes) -> None:
    expect_protocol_error(b"", bad)


@pytest.mark.parametrize(
    ("setup", "bad"),
    [(b"", syn(2)), (b"", syn(0)), (syn(1), syn(1))],
    ids=["wrong-parity", "id-0", "already-live"],
)
def test_13_bad_syn_is_goaway_protocol_error(setup: bytes, bad: bytes) -> None:
    expect_protocol_error(setup, bad)


def test_14_data_beyond_the_window() -> None:
    bad = frame(DATA, 0, 1, WINDOW + 1, bytes(WINDOW + 1))
    expect_protocol_error(syn(1), bad)


def test_14_data_at_the_window_is_fine() -> None:
    conn = server()
    events = conn.receive_data(syn(1) + frame(DATA, 0, 1, WINDOW, bytes(WINDOW)), 0.0)
    assert (_core.conn.EV_DATA, 1, bytes(WINDOW)) in events
    assert not conn.is_closed


def test_14_syn_body_over_256_kib() -> None:
    expect_protocol_error(b"", frame(DATA, SYN, 1, WINDOW + 1, bytes(WINDOW + 1)))


def test_14_syn_header_announcing_a_huge_body_fails_before_the_body_arrives() -> None:
    # Only the 12-byte header is sent: the length alone is refused (nothing buffered for it).
    expect_protocol_error(b"", frame(DATA, SYN, 1, 0xFFFFFFFF))


@pytest.mark.parametrize(
    ("setup", "bad"),
    [
        (syn(1), frame(WINDOW_UPDATE, 0, 1, 0xFFFFFFFF - 1000)),
        (b"", frame(WINDOW_UPDATE, SYN, 1, 0xFFFFFFFF)),
    ],
    ids=["update", "syn"],
)
def test_14_window_update_overflowing_u32(setup: bytes, bad: bytes) -> None:
    expect_protocol_error(setup, bad)


def test_a_violation_on_one_connection_leaves_another_alone() -> None:
    bad, good = server(), server()
    with pytest.raises(MuxerError):
        bad.receive_data(syn(2), 0.0)
    events = good.receive_data(syn(1) + frame(DATA, 0, 1, 2, b"ok"), 0.0)
    assert events == [(_core.conn.EV_STREAM_OPENED, 1, None), (_core.conn.EV_DATA, 1, b"ok")]
    assert not good.is_closed


def test_15_frames_for_a_locally_reset_stream_are_ignored() -> None:
    conn = server()
    conn.receive_data(syn(1), 0.0)
    conn.reset_stream(1)
    conn.data_to_send()
    late = frame(DATA, 0, 1, 3, b"abc") + frame(WINDOW_UPDATE, 0, 1, 100) + frame(DATA, FIN, 1, 0)
    assert conn.receive_data(late, 0.0) == []
    assert not conn.is_closed
    assert conn.data_to_send() == b""
    assert conn.num_streams == 0


def test_15_frames_for_a_remotely_reset_or_closed_stream_are_ignored() -> None:
    conn = server()
    events = conn.receive_data(syn(1) + frame(WINDOW_UPDATE, RST, 1, 0), 0.0)
    assert events[-1] == (_core.conn.EV_RESET, 1, None)
    assert conn.receive_data(frame(DATA, 0, 1, 1, b"x") + frame(DATA, RST, 1, 0), 0.0) == []
    # A stream closed in both directions: its stray window update is ignored too.
    conn.receive_data(syn(3) + frame(WINDOW_UPDATE, FIN, 3, 0), 0.0)
    conn.close_stream(3)
    conn.data_to_send()
    assert conn.num_streams == 0
    assert conn.receive_data(frame(WINDOW_UPDATE, 0, 3, 10), 0.0) == []
    assert not conn.is_closed


def test_16_ping_flood_output_stays_bounded() -> None:
    conn = server()
    flood = b"".join(frame(PING, SYN, 0, i) for i in range(10_000))
    assert conn.receive_data(flood, 0.0) == []
    answered = headers(conn.data_to_send())
    assert 0 < len(answered) <= 16
    assert all(h[1] == PING and h[2] == ACK for h in answered)
    assert not conn.is_closed


def test_17_ten_thousand_syns_are_bounded_and_existing_streams_keep_working() -> None:
    conn = server(max_streams=8)
    events = conn.receive_data(b"".join(syn(2 * i + 1) for i in range(10_000)), 0.0)
    opened = [sid for kind, sid, _ in events if kind == _core.conn.EV_STREAM_OPENED]
    assert opened == [1, 3, 5, 7, 9, 11, 13, 15]
    assert conn.num_streams == 8
    out = headers(conn.data_to_send())
    assert sum(1 for h in out if h[2] == ACK) == 8
    resets = [h[3] for h in out if h[2] == RST]
    assert 0 < len(resets) < 10_000 - 8, "refusals are capped, the output stays bounded"
    assert all(sid > 15 for sid in resets)
    assert not conn.is_closed
    assert conn.receive_data(frame(DATA, 0, 1, 3, b"abc"), 0.0) == [(_core.conn.EV_DATA, 1, b"abc")]
