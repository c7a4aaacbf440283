"""``_core.conn.Connection``: streams, flow control, errors, timers, in plaintext and over Noise."""

from __future__ import annotations

from typing import Any

import pytest

from rapidp2p import _core
from rapidp2p.exceptions import (
    ConnectionClosedError,
    DecryptionError,
    GoAwayError,
    HandshakeError,
    LocalProtocolError,
    MuxerError,
    NegotiationError,
    StreamClosedError,
    StreamLimitError,
    StreamResetError,
)

Event = tuple[int, int, Any]


def noise_handshakes() -> tuple[_core.conn.NoiseHandshake, _core.conn.NoiseHandshake]:
    """Runs XX to completion in memory (empty payloads) and returns both finished sides."""
    i = _core.conn.NoiseHandshake(True)
    r = _core.conn.NoiseHandshake(False)
    r.read_message(i.write_message(b""))
    i.read_message(r.write_message(b""))
    r.read_message(i.write_message(b""))
    assert i.is_finished and r.is_finished
    return i, r


def make_pair(encrypted: bool, **kw: Any) -> tuple[_core.conn.Connection, _core.conn.Connection]:
    """(client, server); keep-alive off unless asked, so outputs stay deterministic."""
    kw.setdefault("keepalive_interval", None)
    if encrypted:
        hi, hr = noise_handshakes()
        return _core.conn.Connection(hi, initiator=True, **kw), _core.conn.Connection(
            hr, initiator=False, **kw
        )
    return _core.conn.Connection(None, initiator=True, **kw), _core.conn.Connection(
        None, initiator=False, **kw
    )


def transfer(a: _core.conn.Connection, b: _core.conn.Connection, now: float = 0.0) -> list[Event]:
    """Moves everything ``a`` queued into ``b``; returns ``b``'s events."""
    return b.receive_data(a.data_to_send(), now)


def data_of(events: list[Event], sid: int) -> bytes:
    return b"".join(v for k, s, v in events if k == _core.conn.EV_DATA and s == sid)


WINDOW = 256 * 1024
MODES = [pytest.param(False, id="plaintext"), pytest.param(True, id="noise")]


def test_event_kinds_are_distinct_ints() -> None:
    kinds = [
        _core.conn.EV_STREAM_OPENED,
        _core.conn.EV_DATA,
        _core.conn.EV_FIN,
        _core.conn.EV_RESET,
        _core.conn.EV_WINDOW,
        _core.conn.EV_STREAM_ACKED,
        _core.conn.EV_PING_RTT,
        _core.conn.EV_GO_AWAY,
    ]
    assert all(isinstance(k, int) for k in kinds)
    assert len(set(kinds)) == len(kinds)


@pytest.mark.parametrize("encrypted", MODES)
def test_open_send_fin_echo(encrypted: bool) -> None:
    c, s = make_pair(encrypted)
    assert c.is_encrypted is encrypted
    sid = c.open_stream()
    assert sid == 1
    assert c.send(sid, b"hello", fin=True) == 5
    ev = transfer(c, s)
    assert ev == [
        (_core.conn.EV_STREAM_OPENED, sid, None),
        (_core.conn.EV_DATA, sid, b"hello"),
        (_core.conn.EV_FIN, sid, None),
    ]
    s.ack(sid, 5)
    assert s.send(sid, b"HELLO", fin=True) == 5
    assert s.num_streams == 0
    ev = transfer(s, c)
    assert ev == [
        (_core.conn.EV_STREAM_ACKED, sid, None),
        (_core.conn.EV_DATA, sid, b"HELLO"),
        (_core.conn.EV_FIN, sid, None),
    ]
    assert c.num_streams == 0
    assert c.data_to_send() == b""


@pytest.mark.parametrize("encrypted", MODES)
def test_thousand_streams(encrypted: bool) -> None:
    c, s = make_pair(encrypted, max_streams=2000, ack_backlog=2000)
    payloads = {}
    for i in range(1000):
        sid = c.open_stream()
        payloads[sid] = bytes([i % 256]) * (100 + i)
        assert c.send(sid, payloads[sid], fin=True) == len(payloads[sid])
    ev = transfer(c, s)
    for sid, p in payloads.items():
        assert data_of(ev, sid) == p
    assert s.num_streams == 1000
    fins = {sid for kind, sid, _ in ev if kind == _core.conn.EV_FIN}
    assert fins == set(payloads)


@pytest.mark.parametrize("encrypted", MODES)
def test_partial_reads_deliver_same_bytes(encrypted: bool) -> None:
    c, s = make_pair(encrypted)
    sid = c.open_stream()
    payload = bytes(range(256)) * 800
    assert c.send(sid, payload) == len(payload)
    wire = c.data_to_send()
    got = b""
    for i in range(0, len(wire), 777):
        got += data_of(s.receive_data(wire[i : i + 777], 0.0), sid)
    assert got == payload


@pytest.mark.parametrize("encrypted", MODES)
def test_window_exhaustion_then_credit(encrypted: bool) -> None:
    c, s = make_pair(encrypted, min_autotune_rtt=0.0)  # credit accounting only, no tuning
    sid = c.open_stream()
    big = b"x" * (1 << 20)
    assert c.send(sid, big) == WINDOW
    assert c.send_window(sid) == 0
    assert c.send(sid, big) == 0
    ev = transfer(c, s)
    assert len(data_of(ev, sid)) == WINDOW
    s.ack(sid, WINDOW // 2)
    ev = transfer(s, c)
    assert (_core.conn.EV_WINDOW, sid, WINDOW // 2) in ev
    assert c.send_window(sid) == WINDOW // 2
    with pytest.raises(LocalProtocolError):
        s.ack(sid, WINDOW)  # more than was delivered


def test_auto_tuning_grows_window_with_fast_reader() -> None:
    c, s = make_pair(False)
    # Measure the RTT on the receiver: ping at t=0, pong back at t=0.1.
    s.ping(0.0)
    transfer(s, c)
    ev = transfer(c, s, now=0.1)
    assert ev == [(_core.conn.EV_PING_RTT, 0, pytest.approx(0.1))]
    assert s.rtt == pytest.approx(0.1)
    sid = c.open_stream()
    transfer(c, s, now=0.1)
    transfer(s, c, now=0.1)
    now = 0.1
    window = WINDOW
    for _ in range(3):
        sent = c.send(sid, b"z" * (4 << 20))
        assert sent == window
        got = len(data_of(transfer(c, s, now), sid))
        now += 0.05
        s.ack(sid, got, now)
        window *= 2
        assert s.receive_window(sid) == window
        transfer(s, c, now)
        assert c.send_window(sid) == window


def test_auto_tuning_without_ping_uses_min_rtt() -> None:
    # No RTT measured: a reader taking under two ``min_autotune_rtt`` per half window grows
    # the window; a slower one does not.
    c, s = make_pair(False, min_autotune_rtt=0.01)
    assert s.rtt is None
    sid = c.open_stream()
    transfer(c, s)
    transfer(s, c)
    assert c.send(sid, b"z" * WINDOW) == WINDOW
    s.ack(sid, len(data_of(transfer(c, s), sid)), 0.005)
    assert s.receive_window(sid) == 2 * WINDOW
    transfer(s, c)
    assert c.send(sid, b"z" * 2 * WINDOW) == 2 * WINDOW
    s.ack(sid, len(data_of(transfer(c, s), sid)), 1.0)
    assert s.receive_window(sid) == 2 * WINDOW
    with pytest.raises(ValueError):
        make_pair(False, min_autotune_rtt=-1.0)


@pytest.mark.parametrize("encrypted", MODES)
def test_write_after_close_and_reset(encrypted: bool) -> None:
    c, s = make_pair(encrypted)
    a = c.open_stream()
    b = c.open_stream()
    c.close_stream(a)
    with pytest.raises(StreamClosedError):
        c.send(a, b"late")
    transfer(c, s)
    s.reset_stream(b)
    ev = transfer(s, c)
    assert (_core.conn.EV_RESET, b, None) in ev
    with pytest.raises(StreamResetError):
        c.send(b, b"x")
    with pytest.raises(StreamResetError):
        s.send(b, b"x")
    with pytest.raises(LocalProtocolError):
        c.send(999, b"x")


@pytest.mark.parametrize("encrypted", MODES)
def test_go_away(encrypted: bool) -> None:
    c, s = make_pair(encrypted)
    sid = c.open_stream()
    transfer(c, s)
    s.go_away(0)
    ev = transfer(s, c)
    assert (_core.conn.EV_GO_AWAY, 0, 0) in ev
    with pytest.raises(GoAwayError) as info:
        c.open_stream()
    assert info.value.code == 0
    assert c.send(sid, b"still", fin=True) == 5
    assert data_of(transfer(c, s), sid) == b"still"


def test_ack_backlog_then_stream_limit() -> None:
    c, s = make_pair(False, ack_backlog=4, max_streams=6)
    for _ in range(4):
        c.open_stream()
    with pytest.raises(StreamLimitError, match="backlog"):
        c.open_stream()
    transfer(c, s)
    ev = transfer(s, c)
    assert sum(1 for k, _, _ in ev if k == _core.conn.EV_STREAM_ACKED) == 4
    c.open_stream()
    c.open_stream()
    with pytest.raises(StreamLimitError, match="limit"):
        c.open_stream()


def test_inbound_streams_over_limit_are_reset() -> None:
    _, s = make_pair(False, max_streams=3, ack_backlog=10)
    c2 = _core.conn.Connection(None, initiator=True, max_streams=10, keepalive_interval=None)
    ids = [c2.open_stream() for _ in range(5)]
    ev = transfer(c2, s)
    assert [sid for k, sid, _ in ev if k == _core.conn.EV_STREAM_OPENED] == ids[:3]
    back = transfer(s, c2)
    assert [sid for k, sid, _ in back if k == _core.conn.EV_RESET] == ids[3:]
    assert s.num_streams == 3


@pytest.mark.parametrize("encrypted", MODES)
def test_peer_violation_raises_muxer_error_and_queues_goaway(encrypted: bool) -> None:
    bad = bytes([1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])  # version 1
    if encrypted:
        # Seal the bad header with the client's own transport cipher.
        hi, hr = noise_handshakes()
        s = _core.conn.Connection(hr, initiator=False, keepalive_interval=None)
        wire = hi.into_transport().encrypt(bad)
    else:
        _, s = make_pair(encrypted)
        wire = bad
    with pytest.raises(MuxerError):
        s.receive_data(wire, 0.0)
    assert s.is_closed
    assert s.pending_output > 0
    assert len(s.data_to_send()) == (12 + 18 if encrypted else 12)
    with pytest.raises(ConnectionClosedError):
        s.open_stream()


def test_decryption_error_on_bit_flip() -> None:
    c, s = make_pair(True)
    c.open_stream()
    wire = bytearray(c.data_to_send())
    wire[4] ^= 0x80
    with pytest.raises(DecryptionError):
        s.receive_data(bytes(wire), 0.0)
    assert s.is_closed


def test_keepalive_and_timeout() -> None:
    c, s = make_pair(False, keepalive_interval=10.0)
    assert c.next_timer() == 0.0
    c.handle_timer(0.0)
    assert c.next_timer() == 10.0
    transfer(c, s, 0.0)
    ev = transfer(s, c, 0.02)
    assert ev == [(_core.conn.EV_PING_RTT, 0, pytest.approx(0.02))]
    c.handle_timer(10.0)
    assert c.pending_output == 12
    c.data_to_send()  # the ping is lost: no pong comes back
    with pytest.raises(ConnectionClosedError):
        c.handle_timer(20.0)
    assert c.is_closed
    assert c.next_timer() is None


@pytest.mark.parametrize("encrypted", MODES)
def test_muxer_negotiated_inside_the_channel(encrypted: bool) -> None:
    c, s = make_pair(encrypted, muxers=["/yamux/1.0.0"])
    assert c.muxer is None
    with pytest.raises(LocalProtocolError):
        c.open_stream()  # no streams before the muxer is agreed
    assert s.receive_data(c.data_to_send(), 0.0) == [(_core.conn.EV_MUXER, 0, "/yamux/1.0.0")]
    sid = s.open_stream()  # the listener may stream at once, right behind its answer
    s.send(sid, b"payload")
    ev = c.receive_data(s.data_to_send(), 0.0)
    assert ev[0] == (_core.conn.EV_MUXER, 0, "/yamux/1.0.0")
    assert data_of(ev, sid) == b"payload"
    assert c.muxer == s.muxer == "/yamux/1.0.0"


def test_muxer_negotiation_refused_names_the_offer() -> None:
    c, _ = make_pair(False, muxers=["/mplex/6.7.0"])
    _, s = make_pair(False, muxers=["/yamux/1.0.0"])
    s.receive_data(c.data_to_send(), 0.0)
    assert s.muxers_refused == ["/mplex/6.7.0"]
    assert s.muxer is None
    with pytest.raises(NegotiationError):
        c.receive_data(s.data_to_send(), 0.0)


def test_handshake_is_spent_and_must_be_finished() -> None:
    hi, _ = noise_handshakes()
    _core.conn.Connection(hi, initiator=True)
    with pytest.raises(HandshakeError):
        _core.conn.Connection(hi, initiator=True)
    with pytest.raises(HandshakeError):
        _core.conn.Connection(_core.conn.NoiseHandshake(True), initiator=True)


def test_bad_config_is_value_error() -> None:
    with pytest.raises(ValueError):
        _core.conn.Connection(None, initiator=True, initial_window=1000)
    with pytest.raises(ValueError):
        _core.conn.Connection(None, initiator=True, keepalive_interval=-1.0)


@pytest.mark.parametrize("encrypted", MODES)
def test_random_garbage_never_crashes(encrypted: bool) -> None:
    import random

    rng = random.Random(7)
    for _ in range(200):
        _, s = make_pair(encrypted)
        blob = rng.randbytes(rng.randrange(0, 300))
        try:
            s.receive_data(blob, 0.0)
        except (MuxerError, DecryptionError):
            assert s.is_closed
        s.data_to_send()


def feed_into(conn: _core.conn.Connection, wire: bytes, read: int) -> list[Event]:
    """What the buffered protocol does: every read lands in one reused buffer, one call per
    read; a partial frame stays inside the connection."""
    buf = bytearray(max(read, 1))
    events: list[Event] = []
    for i in range(0, len(wire), read):
        chunk = wire[i : i + read]
        buf[: len(chunk)] = chunk
        events += conn.receive_into(buf, len(chunk), 0.0)
    return events


@pytest.mark.parametrize("encrypted", MODES)
@pytest.mark.parametrize("read", [1, 1000, 65_537, 200_000])
def test_receive_into_any_read_size(encrypted: bool, read: int) -> None:
    c, s = make_pair(encrypted)
    sid = c.open_stream()
    payload = bytes(range(256)) * 800  # 204800 bytes, within the initial window
    assert c.send(sid, payload, fin=True) == len(payload)
    wire = c.data_to_send()
    events = feed_into(s, wire, read)
    assert events[0] == (_core.conn.EV_STREAM_OPENED, sid, None)
    assert data_of(events, sid) == payload
    assert events[-1] == (_core.conn.EV_FIN, sid, None)
    # DATA stays coalesced per stream per call.
    datas = [e for e in events if e[0] == _core.conn.EV_DATA]
    assert len(datas) <= -(-len(wire) // read)
    # Scribbling over the buffer after a call cannot change what was delivered.


def test_receive_into_after_receive_data_tail_and_bad_length() -> None:
    c, s = make_pair(True)
    sid = c.open_stream()
    c.send(sid, b"a" * 100_000)
    wire = c.data_to_send()
    # Half a frame through the bytes API, the rest through a small buffer: the partial frame
    # kept inside is completed from it.
    got = data_of(s.receive_data(wire[:30_000], 0.0), sid)
    got += data_of(feed_into(s, wire[30_000:], 5_000), sid)
    assert got == b"a" * 100_000
    with pytest.raises(ValueError):
        s.receive_into(bytearray(10), 11, 0.0)
    with pytest.raises(TypeError):
        s.receive_into(b"immutable", 1, 0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("encrypted", MODES)
def test_send_references_data_and_pending_output_is_exact(encrypted: bool) -> None:
    c, s = make_pair(encrypted)
    sid = c.open_stream()
    big = bytes(range(256)) * 1000
    assert c.send(sid, big) == len(big)
    c.ping(0.0)  # queued after the data: must follow it on the wire
    assert c.send(sid, b"tail") == 4
    expected = c.pending_output
    wire = c.data_to_send()
    assert len(wire) == expected
    assert c.pending_output == 0
    events = s.receive_data(wire, 0.0)
    assert data_of(events, sid) == big + b"tail"
    # The ping was answered: its pong is queued on the server.
    assert s.pending_output > 0
    back = c.receive_data(s.data_to_send(), 0.5)
    assert [v for k, _, v in back if k == _core.conn.EV_PING_RTT] == [0.5]


def test_decryption_failure_through_receive_into() -> None:
    c, s = make_pair(True)
    sid = c.open_stream()
    c.send(sid, b"x" * 5000)
    wire = bytearray(c.data_to_send())
    wire[-1] ^= 1
    with pytest.raises(DecryptionError):
        s.receive_into(wire, len(wire), 0.0)
    assert s.is_closed


def test_tune_allocator_reports_whether_it_applied() -> None:
    import platform

    applied = _core.conn.tune_allocator()
    assert applied is (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
    with pytest.raises(ValueError):
        _core.conn.tune_allocator(trim_threshold=1 << 31)


@pytest.mark.parametrize("encrypted", MODES)
def test_send_by_offsets(encrypted: bool) -> None:
    c, s = make_pair(encrypted)
    sid = c.open_stream()
    data = bytes(range(256)) * 400  # 102400 bytes
    assert c.send(sid, data, False, 1000, 71_000) == 70_000
    assert c.send(sid, data, True, 71_000) == len(data) - 71_000
    events = transfer(c, s)
    assert data_of(events, sid) == data[1000:]
    assert (_core.conn.EV_FIN, sid, None) in events
    sid2 = c.open_stream()
    with pytest.raises(ValueError):
        c.send(sid2, data, False, 10, 5)
    with pytest.raises(ValueError):
        c.send(sid2, data, False, 0, len(data) + 1)
    assert c.send(sid2, data, False, len(data)) == 0
