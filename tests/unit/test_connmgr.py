"""The connection manager (issue 10): 300 peers connect to a node with watermarks 20/40; it
trims to the low watermark, keeping protected, high-value and new (grace period) peers."""

from __future__ import annotations

import asyncio

import pytest

from rapidp2p.host import Host, HostConfig
from rapidp2p.host.connmgr import (
    ConnectionManager,
    ConnManagerConfig,
    bump_sum_bounded,
    decay_fixed,
    decay_linear,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _until(cond: object, what: str) -> None:
    for _ in range(4000):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def test_three_hundred_peers_trimmed_to_the_low_watermark() -> None:
    cfg = ConnManagerConfig(low_water=20, high_water=40, grace_period=20.0, silence_period=0.0)
    server = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=HostConfig(connmgr=cfg))
    clock = FakeClock()
    server.connmgr = cm = ConnectionManager(server, cfg, clock=clock)
    addr = server.full_addrs[0]
    old: list[Host] = []
    fresh: list[Host] = []
    try:
        for _ in range(29):  # 290 peers inside their grace period: nothing can be trimmed
            batch = [await Host.create() for _ in range(10)]
            old += batch
            await asyncio.gather(*(c.connect(addr) for c in batch))
        await _until(lambda: len(server.connections()) == 290, "290 connections")
        assert cm.trimmed == 0, "over the high watermark, but every peer is in its grace period"
        protected, valued, meh = old[:5], old[5:10], old[10:20]
        for c in protected:
            cm.protect(c.peer_id, "test")
        for c in valued:
            cm.tag_peer(c.peer_id, "useful", 100)
        for c in meh:
            cm.tag_peer(c.peer_id, "meh", 1)  # a little value: trimmed after the zeros
        clock.now += 15.0
        fresh = [await Host.create() for _ in range(10)]
        await asyncio.gather(*(c.connect(addr) for c in fresh))  # 300 peers
        await _until(lambda: len(server.connections()) == 300, "300 connections")
        assert cm.trimmed == 0
        clock.now += 10.0  # the first 290 are out of their grace period, the fresh 10 are not
        server.maintenance_round()
        await _until(lambda: len(server.connections()) == 20, "trimmed to the low watermark")
        assert cm.trimmed == 280
        for c in protected + valued + fresh:
            assert server.is_connected(c.peer_id), "protected, valuable and new peers survive"
        assert not any(server.is_connected(c.peer_id) for c in old[10:])
        clock.now += 100.0
        server.maintenance_round()  # at the low watermark: nothing more to trim
        await asyncio.sleep(0.05)
        assert len(server.connections()) == 20 and cm.trimmed == 280
    finally:
        await asyncio.gather(*(c.close() for c in old + fresh))
        await server.close()


def test_tags_protection_and_decay() -> None:
    clock = FakeClock()

    class NoHost:
        _conns: dict[object, list[object]] = {}

    cm = ConnectionManager(NoHost(), ConnManagerConfig(), clock=clock)  # type: ignore[arg-type]
    cm.tag_peer("a", "x", 3)
    cm.upsert_tag("a", "y", lambda v: v + 4)
    assert cm.peer_value("a") == 7 and cm.tags("a") == {"x": 3, "y": 4}
    cm.untag_peer("a", "x")
    assert cm.peer_value("a") == 4
    cm.protect("a", "p1")
    cm.protect("a", "p2")
    assert cm.unprotect("a", "p1") is True and cm.is_protected("a")
    assert cm.unprotect("a", "p2") is False and not cm.is_protected("a")
    dt = cm.register_decaying_tag("hits", 1.0, decay_fixed(2), bump_sum_bounded(0, 10))
    dt.bump("b", 7)
    dt.bump("b", 7)
    assert cm.peer_value("b") == 10  # bounded
    clock.now += 3.0
    cm.tick()
    assert cm.peer_value("b") == 4  # three intervals of -2
    clock.now += 2.0
    cm.tick()
    assert cm.peer_value("b") == 0 and cm.tags("b") == {} and not cm.is_tagged("b")
    lin = cm.register_decaying_tag("lin", 1.0, decay_linear(0.5), bump_sum_bounded(0, 100))
    lin.bump("c", 40)
    clock.now += 1.0
    cm.tick()
    assert cm.tags("c") == {"lin": 20}
    with pytest.raises(ValueError):
        cm.register_decaying_tag("lin", 1.0, decay_linear(0.5), bump_sum_bounded(0, 1))
    lin.close()
    assert cm.tags("c") == {}
    with pytest.raises(ValueError):
        ConnectionManager(NoHost(), ConnManagerConfig(low_water=5, high_water=4))  # type: ignore[arg-type]


async def test_kad_and_gossipsub_tag_their_peers() -> None:
    from rapidp2p.kad import KadConfig, KadDHT
    from rapidp2p.kad.dht import KAD_TAG
    from rapidp2p.pubsub import GossipSub, GossipSubParams

    a = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    b = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    dht_a = KadDHT(a, KadConfig(mode="server"))
    dht_b = KadDHT(b, KadConfig(mode="server"))
    params = GossipSubParams(heartbeat_interval=0.05)
    ps_a = await a.add_service(GossipSub(a, params=params))
    ps_b = await b.add_service(GossipSub(b, params=params))
    try:
        await dht_a.start()
        await dht_b.start()
        await dht_b.bootstrap([str(a.full_addrs[0])])
        await _until(lambda: b.connmgr.tags(a.peer_id).get(KAD_TAG) == 5, "kad tag on b")
        assert dht_b.keeps_peer(a.peer_id)
        await ps_a.subscribe("t")
        await ps_b.subscribe("t")
        await _until(lambda: a.connmgr.tags(b.peer_id).get("pubsub:t") == 20, "mesh tag on a")
    finally:
        for svc in (ps_a, ps_b, dht_a, dht_b):
            await svc.close()
        await a.close()
        await b.close()
