"""Peerstore conformance: one suite run against every implementation, plus SQLite's
persistence and corrupt-file behaviour."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from rapidp2p.crypto import PrivateKey, generate_keypair
from rapidp2p.exceptions import PeerIdError, PeerStoreCorrupt, PeerStoreError, RecordError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.peerstore import (
    MAX_ADDRS_PER_PEER,
    MAX_METADATA_PER_PEER,
    MAX_PROTOCOLS_PER_PEER,
    PERMANENT_ADDR_TTL,
    MemoryPeerStore,
    PeerStore,
    SqlitePeerStore,
)
from rapidp2p.records import Envelope, PeerRecord


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[PeerStore]:
    ps: PeerStore
    if request.param == "memory":
        ps = MemoryPeerStore(clock=clock)
    else:
        ps = SqlitePeerStore(tmp_path / "peers.db", clock=clock)
    yield ps
    ps.close()


def _peer() -> tuple[PeerId, PrivateKey]:
    key = generate_keypair()
    return PeerId.from_public_key(key.public_key()), key


def _ma(port: int) -> Multiaddr:
    return Multiaddr(f"/ip4/127.0.0.1/tcp/{port}")


# ---- addresses -------------------------------------------------------------------------------


def test_addrs_expire_with_ttl(store: PeerStore, clock: FakeClock) -> None:
    pid, _ = _peer()
    store.add_addrs(pid, [_ma(1)], ttl=10)
    store.add_addrs(pid, [_ma(2)], ttl=100)
    assert store.addrs(pid) == [_ma(2), _ma(1)]
    clock.now += 50
    assert store.addrs(pid) == [_ma(2)]
    clock.now += 1000
    assert store.addrs(pid) == []
    assert store.peers_with_addrs() == []


def test_add_addrs_keeps_the_later_expiry_and_set_addrs_overrides(
    store: PeerStore, clock: FakeClock
) -> None:
    pid, _ = _peer()
    store.add_addrs(pid, [_ma(1)], ttl=100)
    store.add_addrs(pid, [_ma(1)], ttl=10)  # shorter: ignored
    clock.now += 50
    assert store.addrs(pid) == [_ma(1)]
    store.set_addrs(pid, [_ma(1)], ttl=5)
    clock.now += 6
    assert store.addrs(pid) == []
    store.add_addrs(pid, [_ma(3)], ttl=PERMANENT_ADDR_TTL)
    clock.now += 1e9
    assert store.addrs(pid) == [_ma(3)]
    store.set_addrs(pid, [_ma(3)], ttl=0)
    assert store.addrs(pid) == []


def test_addrs_capped_per_peer_keeping_longest_lived(store: PeerStore) -> None:
    pid, _ = _peer()
    store.add_addrs(pid, [_ma(p) for p in range(1, MAX_ADDRS_PER_PEER + 1)], ttl=10)
    store.add_addrs(pid, [_ma(9000), _ma(9001)], ttl=1000)
    got = store.addrs(pid)
    assert len(got) == MAX_ADDRS_PER_PEER
    # The two long-lived addresses come first (in either order); two short-lived ones went.
    assert set(got[:2]) == {_ma(9000), _ma(9001)}
    assert len(set(got) & {_ma(p) for p in range(1, MAX_ADDRS_PER_PEER + 1)}) == (
        MAX_ADDRS_PER_PEER - 2
    )


def test_clear_addrs_and_remove_peer(store: PeerStore) -> None:
    pid, _ = _peer()
    store.add_addrs(pid, [_ma(1)])
    store.add_protocols(pid, ["/a"])
    assert pid in store.peers()
    store.clear_addrs(pid)
    assert store.addrs(pid) == []
    assert store.get_protocols(pid) == ["/a"]
    store.remove_peer(pid)
    assert store.peers() == []
    assert store.get_protocols(pid) == []


# ---- keys --------------------------------------------------------------------------------------


def test_pubkey_checked_against_peer_id(store: PeerStore) -> None:
    pid, key = _peer()
    other = generate_keypair()
    with pytest.raises(PeerIdError):
        store.add_pubkey(pid, other.public_key())
    store.add_pubkey(pid, key.public_key())
    assert store.pubkey(pid) == key.public_key()


def test_pubkey_falls_back_to_identity_peer_id(store: PeerStore) -> None:
    pid, key = _peer()  # Ed25519 peer ids inline the key
    assert store.pubkey(pid) == key.public_key()


# ---- protocols ---------------------------------------------------------------------------------


def test_protocols_set_add_remove_supports(store: PeerStore) -> None:
    pid, _ = _peer()
    store.set_protocols(pid, ["/a", "/b"])
    store.add_protocols(pid, ["/b", "/c"])
    assert store.get_protocols(pid) == ["/a", "/b", "/c"]
    store.remove_protocols(pid, ["/a"])
    assert store.supports_protocols(pid, ["/x", "/c", "/b"]) == ["/c", "/b"]
    assert store.first_supported_protocol(pid, ["/x", "/b"]) == "/b"
    assert store.first_supported_protocol(pid, ["/x"]) is None
    store.set_protocols(pid, ["/z"])
    assert store.get_protocols(pid) == ["/z"]


def test_protocols_capped(store: PeerStore) -> None:
    pid, _ = _peer()
    store.set_protocols(pid, [f"/p/{i}" for i in range(MAX_PROTOCOLS_PER_PEER + 50)])
    got = store.get_protocols(pid)
    assert len(got) == MAX_PROTOCOLS_PER_PEER
    assert got[0] == "/p/0"
    store.add_protocols(pid, ["/late"])
    assert "/late" not in store.get_protocols(pid)


# ---- metadata ----------------------------------------------------------------------------------


def test_metadata_roundtrip_and_bounds(store: PeerStore) -> None:
    pid, _ = _peer()
    value = {"agent": "go-libp2p", "n": 3, "raw": b"\x00\x01", "l": [1.5, None, True]}
    store.put(pid, "info", value)
    assert store.get(pid, "info") == value
    assert store.get(pid, "missing", 7) == 7
    with pytest.raises(PeerStoreError):
        store.put(pid, "bad", object())
    for i in range(MAX_METADATA_PER_PEER - 1):
        store.put(pid, f"k{i}", i)
    with pytest.raises(PeerStoreError):
        store.put(pid, "one-too-many", 1)
    store.put(pid, "info", "replaced")  # existing key: fine
    assert store.get(pid, "info") == "replaced"


# ---- certified records -----------------------------------------------------------------------


def test_peer_record_only_replaced_by_higher_seq(store: PeerStore, clock: FakeClock) -> None:
    key = generate_keypair()
    pid = PeerId.from_public_key(key.public_key())
    env5, rec5 = PeerRecord.open_envelope(Envelope.seal(key, PeerRecord(pid, 5, (_ma(5),))).raw)
    env3, rec3 = PeerRecord.open_envelope(Envelope.seal(key, PeerRecord(pid, 3, (_ma(3),))).raw)
    assert store.consume_peer_record(env5, rec5)
    assert not store.consume_peer_record(env3, rec3)
    assert not store.consume_peer_record(env5, rec5)  # equal seq
    got = store.get_peer_record(pid)
    assert got is not None
    assert got[1].seq == 5
    assert got[0].raw == env5.raw
    assert store.addrs(pid) == [_ma(5)]


def test_peer_record_signed_by_other_peer_refused(store: PeerStore) -> None:
    key, other = generate_keypair(), generate_keypair()
    victim = PeerId.from_public_key(other.public_key())
    env = Envelope.seal(key, PeerRecord(victim, 1, (_ma(1),)))
    rec = PeerRecord(victim, 1, (_ma(1),))
    with pytest.raises(RecordError):
        store.consume_peer_record(env, rec)
    assert store.get_peer_record(victim) is None


# ---- SQLite specifics ------------------------------------------------------------------------


def test_sqlite_persists_across_reopen(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "p.db"
    key = generate_keypair()
    pid = PeerId.from_public_key(key.public_key())
    with SqlitePeerStore(path, clock=clock) as ps:
        ps.add_addrs(pid, [_ma(1)], ttl=60)
        ps.add_addrs(pid, [_ma(2)], ttl=math.inf)
        ps.add_pubkey(pid, key.public_key())
        ps.set_protocols(pid, ["/ipfs/id/1.0.0"])
        ps.put(pid, "agent", "x/1")
        env = Envelope.seal(key, PeerRecord(pid, 9, (_ma(9),)))
        envelope, record = PeerRecord.open_envelope(env.raw)
        assert ps.consume_peer_record(envelope, record)
    clock.now += 120
    with SqlitePeerStore(path, clock=clock) as ps:
        assert ps.peers() == [pid]
        assert set(ps.addrs(pid)) == {_ma(2), _ma(9)}
        assert ps.pubkey(pid) == key.public_key()
        assert ps.get_protocols(pid) == ["/ipfs/id/1.0.0"]
        assert ps.get(pid, "agent") == "x/1"
        got = ps.get_peer_record(pid)
        assert got is not None and got[1].seq == 9


def test_sqlite_not_a_database_raises_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PeerStoreCorrupt):
        SqlitePeerStore(path)
    assert path.read_bytes() == b"this is not sqlite" * 100  # untouched


def test_sqlite_corrupt_row_raises_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    pid, _ = _peer()
    with SqlitePeerStore(path) as ps:
        ps.add_protocols(pid, ["/a"])
    db = sqlite3.connect(path)
    db.execute("UPDATE peers SET data = ?", (b"\xc1garbage",))
    db.commit()
    db.close()
    with SqlitePeerStore(path) as ps, pytest.raises(PeerStoreCorrupt):
        ps.get_protocols(pid)
    db = sqlite3.connect(path)
    db.execute("UPDATE peers SET data = ?", (msgpack.packb({"addrs": []}),))
    db.commit()
    db.close()
    with SqlitePeerStore(path) as ps, pytest.raises(PeerStoreCorrupt, match="shape"):
        ps.addrs(pid)


def test_sqlite_failed_write_is_rolled_back(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    pid, _ = _peer()
    with SqlitePeerStore(path) as ps:
        ps.put(pid, "k", 1)
        with pytest.raises(PeerStoreError):
            ps.put(pid, "k", {1.5: "float keys are refused"})
        assert ps.get(pid, "k") == 1


def test_sqlite_wrong_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    SqlitePeerStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = 99 WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(PeerStoreCorrupt, match="schema"):
        SqlitePeerStore(path)
