"""Peer store lifecycle (issue 10): data of peers that left is forgotten after a grace period
(kept for protected/tagged peers and the DHT routing table); the memory store is capped; the
SQLite store expires entries. Counts entries, not RSS."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rapidp2p.crypto import generate_keypair
from rapidp2p.host import Host, HostConfig
from rapidp2p.host.peer_gc import PeerGCConfig
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.peerstore import MemoryPeerStore, SqlitePeerStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_peer() -> PeerId:
    return PeerId.from_public_key(generate_keypair().public_key())


async def _until(cond: object, what: str) -> None:
    for _ in range(4000):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def test_many_short_lived_peers_are_forgotten_after_the_grace_period() -> None:
    cfg = HostConfig(peer_gc=PeerGCConfig(grace=3600.0), maintenance_interval=0.05)
    server = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=cfg)
    kept_tagged: Host | None = None
    try:
        peers: list[PeerId] = []
        for _ in range(10):
            batch = [await Host.create() for _ in range(20)]
            await asyncio.gather(*(c.ping(server.full_addrs[0]) for c in batch))
            peers += [c.peer_id for c in batch]
            if kept_tagged is None:
                kept_tagged = batch[0]
                server.connmgr.protect(kept_tagged.peer_id, "test")
            await asyncio.gather(*(c.close() for c in batch))
        await _until(lambda: not server.connections(), "every peer disconnected")
        known = set(server.peerstore.peers())
        assert known >= set(peers), "the handshake and identify stored every one of them"
        server.peer_gc.config.grace = 0.3  # the test's grace period: short
        await _until(
            lambda: set(server.peerstore.peers()) & set(peers) == {kept_tagged.peer_id},
            "everyone but the protected peer forgotten",
        )
        assert server.peer_gc.forgotten == 199
    finally:
        await server.close()


def test_keepers_and_reconnects() -> None:
    clock = FakeClock()
    store = MemoryPeerStore()
    from rapidp2p.host.peer_gc import PeerGC

    gc = PeerGC(store, PeerGCConfig(grace=10.0, max_age=None), clock=clock)
    a, b, c = new_peer(), new_peer(), new_peer()
    for p in (a, b, c):
        store.add_addrs(p, [Multiaddr("/ip4/127.0.0.1/tcp/1")])
        gc.disconnected(p)
    gc.keepers.append(lambda p: p == b)  # in the routing table, say
    clock.now += 5.0
    gc.connected(c)  # came back
    assert gc.run() == 0
    clock.now += 6.0
    assert gc.run() == 1
    assert set(store.peers()) == {b, c}


def test_memory_store_is_capped_least_recently_written_first() -> None:
    store = MemoryPeerStore(max_peers=100)
    peers = [new_peer() for _ in range(150)]
    for p in peers:
        store.add_protocols(p, ["/x"])
    store.add_protocols(peers[0], ["/y"])  # peers[0] rewritten: it is fresh again
    assert len(store) == 100 and store.evicted == 51
    kept = set(store.peers())
    assert peers[0] in kept and peers[-1] in kept and peers[1] not in kept


def test_expire_in_memory_and_sqlite(tmp_path: Path) -> None:
    for make in (
        lambda clock: MemoryPeerStore(clock),
        lambda clock: SqlitePeerStore(tmp_path / "ps.db", clock),
    ):
        clock = FakeClock()
        store = make(clock)
        old, kept, fresh = new_peer(), new_peer(), new_peer()
        store.add_protocols(old, ["/a"])
        store.add_protocols(kept, ["/a"])
        clock.now += 100.0
        store.add_protocols(fresh, ["/a"])
        assert store.expire(50.0, keep=lambda p, k=kept: p == k) == 1
        assert set(store.peers()) == {kept, fresh}
        assert len(store) == 2
        store.close()
        (tmp_path / "ps.db").unlink(missing_ok=True)


def test_sqlite_file_without_the_column_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER)")
    db.execute("CREATE TABLE peers (id BLOB PRIMARY KEY, data BLOB NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('schema', 1)")
    db.commit()
    db.close()
    clock = FakeClock()
    with SqlitePeerStore(path, clock) as store:
        p = new_peer()
        store.add_protocols(p, ["/a"])
        assert store.expire(10.0) == 0
        clock.now += 20.0
        assert store.expire(10.0) == 1 and len(store) == 0
