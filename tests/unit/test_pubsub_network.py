"""GossipSub over real hosts (memory transport, Noise, yamux) in one process: delivery,
mesh bounds, churn, and the attacks of gossipsub-v1.1 (invalid publisher, re-GRAFT spam)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import pytest

from rapidp2p.host import Host
from rapidp2p.pubsub import (
    RPC,
    FloodSub,
    GossipSub,
    GossipSubParams,
    Message,
    PeerScoreThresholds,
    ValidationResult,
)

T = "net"
HB = 0.05


def fast_params(**kw: object) -> GossipSubParams:
    return GossipSubParams(heartbeat_interval=HB, **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def network(
    n: int, degree: int, seed: int = 7
) -> AsyncIterator[list[tuple[Host, GossipSub]]]:
    rng = random.Random(seed)
    nodes: list[tuple[Host, GossipSub]] = []
    try:
        for _ in range(n):
            h = await Host.create(listen=["/memory/0"])
            nodes.append((h, await h.add_service(GossipSub(h, params=fast_params()))))
        dials = []
        for i in range(n):
            others = [j for j in range(n) if j != i]
            for j in {(i + 1) % n, *rng.sample(others, degree // 2)}:
                dials.append(nodes[i][0].connect(str(nodes[j][0].full_addrs[0])))
        await asyncio.gather(*dials)
        yield nodes
    finally:
        await asyncio.gather(*(h.close() for h, _ in nodes), return_exceptions=True)


async def eventually(cond: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():  # type: ignore[operator]
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(HB)


async def drain(sub: object, settle: float = 0.3, first: float = 10.0) -> list[Message]:
    """Everything the subscription received until it stays quiet for ``settle`` seconds
    (the first message may take up to ``first`` seconds on a loaded machine)."""
    got: list[Message] = []
    timeout = first
    while True:
        try:
            got.append(await sub.get(timeout=timeout))  # type: ignore[attr-defined]
        except asyncio.TimeoutError:
            return got
        timeout = settle


async def drain_all(subs: list[object], settle: float = 0.3) -> list[list[Message]]:
    return list(await asyncio.gather(*(drain(s, settle) for s in subs)))


async def test_fifty_nodes_exactly_once_and_mesh_bounds() -> None:
    async with network(50, 8) as nodes:
        subs = [await ps.subscribe(T) for _, ps in nodes]
        p = nodes[0][1].params
        await eventually(lambda: all(p.d_lo <= len(ps.mesh_peers(T)) <= p.d_hi for _, ps in nodes))
        for _ in range(5):  # stays within bounds across heartbeats
            await asyncio.sleep(HB)
            assert all(p.d_lo <= len(ps.mesh_peers(T)) <= p.d_hi for _, ps in nodes)
        sent = []
        for i in range(0, 50, 5):
            msg = await nodes[i][1].publish(T, f"m{i}".encode())
            sent.append(msg.data)
        for got in await drain_all(subs):
            assert sorted(m.data for m in got) == sorted(sent)  # every message, exactly once


async def test_churn_nodes_join_and_leave() -> None:
    async with network(20, 6) as nodes:
        subs = {h.peer_id: await ps.subscribe(T) for h, ps in nodes}
        await eventually(lambda: all(len(ps.mesh_peers(T)) >= 2 for _, ps in nodes))
        leaving = nodes[15:]
        await asyncio.gather(*(h.close() for h, _ in leaving))
        stay = nodes[:15]
        newcomers = []
        for i in range(5):
            h = await Host.create(listen=["/memory/0"])
            ps = await h.add_service(GossipSub(h, params=fast_params()))
            newcomers.append((h, ps))
            subs[h.peer_id] = await ps.subscribe(T)
            for j in (i, i + 5, i + 10):
                await h.connect(str(stay[j][0].full_addrs[0]))
        nodes[:] = stay + newcomers
        gone = {h.peer_id for h, _ in leaving}
        await eventually(
            lambda: (
                all(len(ps.mesh_peers(T)) >= 2 for _, ps in nodes)
                and not any(gone & ps.mesh_peers(T) for _, ps in nodes)
            )
        )
        live = [subs[h.peer_id] for h, _ in nodes]
        await drain_all(live, 0.05)
        await newcomers[0][1].publish(T, b"after churn")
        await stay[0][1].publish(T, b"from an old node")
        for got in await drain_all(live):
            assert sorted(m.data for m in got) == [b"after churn", b"from an old node"]


async def test_invalid_publisher_graylisted_and_silenced() -> None:
    async with network(8, 4) as nodes:
        for _, ps in nodes:
            ps.set_validator(T, lambda peer, msg: not (msg.data or b"").startswith(b"bad"))
        subs = [await ps.subscribe(T) for _, ps in nodes]
        evil_host = await Host.create(listen=["/memory/0"])
        evil = await evil_host.add_service(GossipSub(evil_host, params=fast_params()))
        try:
            await evil.subscribe(T)
            victim_host, victim = nodes[0]
            await evil_host.connect(str(victim_host.full_addrs[0]))
            await eventually(lambda: evil_host.peer_id in victim.topic_peers(T))
            for i in range(10):
                await evil.publish(T, f"bad {i}".encode())
            thr = PeerScoreThresholds().graylist_threshold
            await eventually(lambda: victim.peer_score(evil_host.peer_id) < thr)
            await evil.publish(T, b"valid but too late")
            for got in await drain_all(subs):
                assert got == []  # neither the bad ones nor anything after the graylisting
            snap = victim.score_snapshot(evil_host.peer_id)
            assert snap["topics"][T]["invalid_message_deliveries"] >= 2
        finally:
            await evil_host.close()


async def test_regraft_during_backoff_penalised() -> None:
    async with network(2, 2) as nodes:
        (ha, a), (hb, b) = nodes
        await a.subscribe(T)
        await b.subscribe(T)
        await eventually(lambda: hb.peer_id in a.mesh_peers(T))
        now = a.loop.time()
        # b PRUNEs itself out of a's mesh, then GRAFTs straight back, repeatedly.
        a.router.handle_rpc(hb.peer_id, RPC(prune=[(T, [], 60)]), now)
        for _ in range(3):
            a.router.handle_rpc(hb.peer_id, RPC(graft=[T]), now)
        a._flush()
        assert hb.peer_id not in a.mesh_peers(T)
        # two penalties per early re-GRAFT; after the second, b is graylisted and ignored
        assert a.score_snapshot(hb.peer_id)["behaviour_penalty"] == 4
        assert a.peer_score(hb.peer_id) < PeerScoreThresholds().graylist_threshold
        # b heard a PRUNE for each GRAFT: it is out of b's mesh too, with a backoff
        await eventually(lambda: ha.peer_id not in b.mesh_peers(T))
        assert b.router.backoff[T][ha.peer_id] > b.loop.time()


async def test_async_validator_ignore_and_accept() -> None:
    async with network(3, 2) as nodes:

        async def validator(peer: object, msg: Message) -> ValidationResult:
            await asyncio.sleep(0.01)
            return ValidationResult.IGNORE if msg.data == b"skip" else ValidationResult.ACCEPT

        for _, ps in nodes:
            ps.set_validator(T, validator)
        subs = [await ps.subscribe(T) for _, ps in nodes]
        await eventually(lambda: all(ps.mesh_peers(T) for _, ps in nodes))
        await nodes[0][1].publish(T, b"keep")
        with pytest.raises(ValueError):
            await nodes[0][1].publish(T, b"skip")  # the local validator applies too
        for sub in subs:
            assert [m.data for m in await drain(sub)] == [b"keep"]


async def test_floodsub_and_gossipsub_interwork() -> None:
    hosts = [await Host.create(listen=["/memory/0"]) for _ in range(3)]
    try:
        flood = await hosts[0].add_service(FloodSub(hosts[0]))
        g1 = await hosts[1].add_service(GossipSub(hosts[1], params=fast_params()))
        g2 = await hosts[2].add_service(GossipSub(hosts[2], params=fast_params()))
        subs = [await x.subscribe(T) for x in (flood, g1, g2)]
        await hosts[0].connect(str(hosts[1].full_addrs[0]))
        await hosts[1].connect(str(hosts[2].full_addrs[0]))
        await eventually(lambda: hosts[0].peer_id in g1.topic_peers(T) and g1.mesh_peers(T))
        await flood.publish(T, b"from flood")
        await g2.publish(T, b"from gossip")
        for sub in subs:
            assert sorted(m.data for m in await drain(sub)) == [b"from flood", b"from gossip"]
    finally:
        for h in hosts:
            await h.close()


async def test_unsubscribe_leaves_mesh() -> None:
    async with network(3, 2) as nodes:
        subs = [await ps.subscribe(T) for _, ps in nodes]
        await eventually(lambda: all(ps.mesh_peers(T) for _, ps in nodes))
        subs[0].cancel()
        me = nodes[0][0].peer_id
        await eventually(lambda: all(me not in ps.topic_peers(T) for _, ps in nodes[1:]))
        await nodes[1][1].publish(T, b"x")
        assert [m.data for m in await drain(subs[2])] == [b"x"]
        assert nodes[0][1].topics == []
