"""The Rust routing table and lookup through the glue, against brute-force references."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapidp2p import _core
from rapidp2p.exceptions import FrameTooLarge, ProtobufError
from rapidp2p.kad import KadMessage, KadPeer, KadRecord, MessageType


def key(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def dist(a: bytes, b: bytes) -> int:
    return int.from_bytes(key(a), "big") ^ int.from_bytes(b, "big")


def test_key_and_distance() -> None:
    assert _core.kad.key(b"abc") == key(b"abc")
    a, b = key(b"a"), key(b"b")
    d = _core.kad.distance(a, b)
    assert int.from_bytes(d, "big") == int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    with pytest.raises(ValueError):
        _core.kad.distance(b"short", a)


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.binary(min_size=1, max_size=8), max_size=300, unique=True),
    target=st.binary(min_size=32, max_size=32),
    n=st.integers(0, 40),
    k=st.integers(1, 20),
)
def test_closest_matches_sort(ids: list[bytes], target: bytes, n: int, k: int) -> None:
    rt = _core.kad.RoutingTable(b"local", k)
    for i in ids:
        rt.update(i, 1.0)
    held = rt.peers()
    assert len(held) == len(rt) <= len(ids)
    want = sorted(held, key=lambda p: dist(p, target))[:n]
    assert rt.closest(target, n) == want
    for b in rt.populated_buckets():
        assert len(rt.bucket(b)) <= k


def test_update_codes_and_replacement() -> None:
    rt = _core.kad.RoutingTable(b"local", 1)
    far = [p for p in (bytes([i]) for i in range(255)) if rt.bucket_index(key(p)) == 255][:2]
    assert rt.update(far[0], 1.0)[0] == _core.kad.UPDATE_INSERTED
    assert rt.update(far[0], 2.0)[0] == _core.kad.UPDATE_REFRESHED
    code, lrs = rt.update(far[1], 3.0)
    assert code == _core.kad.UPDATE_PENDING and lrs == far[0]
    assert rt.resolve_pending(far[0], False, 4.0) == far[1]
    assert far[1] in rt and far[0] not in rt
    assert rt.update(b"local", 1.0)[0] == _core.kad.UPDATE_REJECTED


def _sim_lookup(
    nodes: list[bytes], knows: dict[bytes, list[bytes]], target: bytes, k: int
) -> list[bytes]:
    q = _core.kad.Query(target, [nodes[0]], 3, k, 10.0)
    now = 0.0
    while True:
        reqs, finished = q.poll(now)
        if finished:
            return q.result()
        for p in reqs:
            closer = sorted(knows[p], key=lambda x: dist(x, target))[:k]
            q.on_success(p, closer)
        now += 0.01


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(5, 120),
    seed=st.binary(min_size=4, max_size=4),
    tgt=st.binary(min_size=32, max_size=32),
)
def test_lookup_finds_true_closest(n: int, seed: bytes, tgt: bytes) -> None:
    k = 8
    nodes = [seed + i.to_bytes(2, "big") for i in range(n)]
    # Well-formed tables: every node's table built from all others by the Rust table itself.
    knows: dict[bytes, list[bytes]] = {}
    for a in nodes:
        rt = _core.kad.RoutingTable(a, k)
        for b in nodes:
            rt.update(b, 1.0)
        knows[a] = rt.peers()
    got = _sim_lookup(nodes, knows, tgt, k)
    assert got == sorted(nodes, key=lambda p: dist(p, tgt))[:k]


def test_random_peer_id_in_bucket_is_a_peer_id() -> None:
    from rapidp2p.peer import PeerId

    rt = _core.kad.RoutingTable(b"me")
    pid = rt.random_peer_id_in_bucket(250, 7)
    assert pid is not None and rt.bucket_index(key(pid)) == 250
    PeerId.from_bytes(pid)  # valid identity multihash


def test_message_roundtrip_and_bounds() -> None:
    peers = tuple(KadPeer(bytes([i]) * 34, (b"\x04\x7f\x00\x00\x01",), 1) for i in range(50))
    msg = KadMessage(
        MessageType.GET_VALUE, b"/test/k", KadRecord(b"/test/k", b"v", "t"), closer_peers=peers
    )
    data = msg.encode()
    assert KadMessage.decode(data, max_peers=100) == msg
    capped = KadMessage.decode(data)  # default cap k = 20
    assert capped.closer_peers == peers[:20]
    with pytest.raises(FrameTooLarge):
        KadMessage.decode(data, max_size=100)
    with pytest.raises(ProtobufError):
        KadMessage.decode(b"\x08\x09")  # unknown message type 9
    with pytest.raises(ProtobufError):
        KadMessage.decode(b"\x12\x05ab")  # truncated key


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_decode_never_crashes(data: bytes) -> None:
    with contextlib.suppress(ProtobufError, FrameTooLarge):
        KadMessage.decode(data)
