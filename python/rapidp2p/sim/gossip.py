"""The GossipSub scenario: N production hosts running :class:`~rapidp2p.pubsub.GossipSub` on
the simulated network, one topic, messages published at a fixed rate, measured in virtual time.

Phases: every node starts, subscribes and dials ``connect`` random reachable nodes
(``join_interval`` apart); ``warmup`` seconds of heartbeats form the meshes; then messages are
published ``1 / rate`` seconds apart, each by a random online node, for ``duration`` seconds;
``drain`` seconds later the figures are taken. Churn (crash departures, each replaced by a
fresh node that dials in and subscribes) runs from the end of the warmup to the end.

A message counts for a receiver when that node was online ``settle`` seconds before the
publish and stayed online until ``drain`` seconds after it: a node that crashed, or had
just joined and had no mesh yet, is not expected to get it.

Reproducible: node keys, placements, the routers' random choices (``Router.rng``) and the
message sequence numbers all come from the seed; the rest of the run is the virtual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from rapidp2p.crypto.ed25519 import Ed25519PrivateKey
from rapidp2p.exceptions import Libp2pError
from rapidp2p.host import Host
from rapidp2p.peerstore import MemoryPeerStore
from rapidp2p.pubsub import GossipSub, GossipSubParams, Subscription
from rapidp2p.sim.kad import EPOCH, PRODUCTION_KEEPALIVE, RunResult, host_config
from rapidp2p.sim.network import NetConfig, SimNetwork, SimNode

__all__ = ["GossipScenarioConfig", "GossipSim", "run_gossip_scenario", "summarize_gossip"]

#: Size of the message-index prefix of every published payload.
_IDX = 8
#: An IDONTWANT threshold no message reaches: the "without IDONTWANT" runs.
_NEVER = 1 << 62


@dataclass
class GossipScenarioConfig:
    """What one GossipSub run does (times in virtual seconds)."""

    nodes: int = 100
    seed: int = 1
    #: "noise" (faithful) or "plaintext" (identity-only, see :func:`rapidp2p.sim.kad.host_config`).
    security: str = "noise"
    #: Connections each node dials to random reachable nodes when it joins.
    connect: int = 8
    #: Messages per second, network-wide.
    rate: float = 1.0
    #: Seconds of publishing.
    duration: float = 30.0
    #: Payload bytes per message (the default crosses the 1 KiB IDONTWANT threshold).
    msg_size: int = 2048
    #: v1.2 IDONTWANT on (the production threshold) or off.
    idontwant: bool = True
    #: Seconds of heartbeats between the last join and the first publish.
    warmup: float = 10.0
    #: Seconds after the last publish before the figures are taken.
    drain: float = 10.0
    #: A receiver must have been online this long before a publish to count for it.
    settle: float = 5.0
    #: Departures per node per hour from the end of the warmup (each replaced by a join).
    churn_per_hour: float = 0.0
    nat_share: float = 0.0
    loss: float = 0.0
    #: Seconds between two nodes starting.
    join_interval: float = 0.02
    #: Seconds between yamux keep-alive pings; None: none (see ``host_config``).
    keepalive: float | None = PRODUCTION_KEEPALIVE
    #: Seconds between two samples of the mesh degrees.
    sample_interval: float = 5.0
    d: int = 6
    d_lo: int = 4
    d_hi: int = 12
    heartbeat_interval: float = 1.0
    topic: str = "sim"


@dataclass(eq=False)
class GossipPeer:
    """One simulated node: its machine, host, router service and subscription."""

    node: SimNode
    host: Host
    ps: GossipSub
    sub: Subscription
    joined_at: float
    left_at: float | None = None


@dataclass
class Published:
    """One published message: when, by whom, and when each node first delivered it."""

    at: float
    publisher: int
    received: dict[int, float] = field(default_factory=dict)


class GossipSim:
    """A simulated pubsub network; build with :meth:`start`, then :meth:`publish_all`."""

    def __init__(self, cfg: GossipScenarioConfig) -> None:
        if cfg.msg_size < _IDX:
            raise ValueError(f"msg_size must be at least {_IDX} bytes")
        self.cfg = cfg
        self.net = SimNetwork(cfg.seed, NetConfig(nat_share=cfg.nat_share, loss=cfg.loss))
        self.rng = random.Random(f"gossip-scenario-{cfg.seed}")
        self.peers: list[GossipPeer] = []
        self.messages: list[Published] = []
        #: (virtual time, mesh degree of every online node) samples.
        self.mesh_samples: list[tuple[float, list[int]]] = []
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[Any]] = set()

    def now(self) -> float:
        return self._loop.time()

    def wall(self) -> float:
        """Virtual wall clock for the peer store's timestamps."""
        return EPOCH + self._loop.time()

    @property
    def online(self) -> list[GossipPeer]:
        return [p for p in self.peers if p.left_at is None]

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def params(self) -> GossipSubParams:
        cfg = self.cfg
        p = GossipSubParams(
            d=cfg.d, d_lo=cfg.d_lo, d_hi=cfg.d_hi, heartbeat_interval=cfg.heartbeat_interval
        )
        if not cfg.idontwant:
            p.idontwant_threshold = _NEVER
        return p

    async def add_peer(self) -> GossipPeer:
        """A node that listens, runs GossipSub and subscribes (it dials nobody yet)."""
        node = self.net.add_node()
        key = Ed25519PrivateKey.from_seed(self.rng.randbytes(32))
        host = Host(
            key,
            host_config(self.cfg.security, self.cfg.keepalive),
            peerstore=MemoryPeerStore(clock=self.wall),
            transports=[self.net.transport(node)],
        )
        await host.start()
        await host.listen("/memory/0")
        ps = self.make_pubsub(host, node)
        # The router's choices (mesh candidates, gossip targets) and the sequence numbers
        # (message IDs) from the seed instead of an unseeded generator and the wall clock.
        ps.router.rng = random.Random(f"gossip-router-{self.cfg.seed}-{node.index}")
        ps._seqno = itertools.count(node.index << 32)
        await host.add_service(ps)
        sub = await ps.subscribe(self.cfg.topic)
        peer = GossipPeer(node, host, ps, sub, self.now())
        self.peers.append(peer)
        self._spawn(self._consume(peer))
        return peer

    def make_pubsub(self, host: Host, node: SimNode) -> GossipSub:
        """The pubsub service of a new node (a hook: the attack scenarios add scoring and
        swap in Sybil routers)."""
        return GossipSub(host, params=self.params())

    def publishers(self) -> list[GossipPeer]:
        """Nodes that may publish (every online node here; honest ones under attack)."""
        return self.online

    async def _consume(self, peer: GossipPeer) -> None:
        """Notes the first delivery of each message at this node (its own excluded)."""
        me = peer.node.index
        async for msg in peer.sub:
            idx = int.from_bytes((msg.data or b"")[:_IDX], "big")
            if 0 <= idx < len(self.messages):
                m = self.messages[idx]
                if m.publisher != me and me not in m.received:
                    m.received[me] = self.now()

    async def dial_some(self, peer: GossipPeer, pool: list[GossipPeer]) -> int:
        """Dials up to ``connect`` random reachable nodes of ``pool``; returns how many held."""
        cands = [q for q in pool if q is not peer and not q.node.nat and q.left_at is None]
        targets = self.rng.sample(cands, min(self.cfg.connect, len(cands)))
        ok = 0
        for q in targets:
            try:
                await peer.host.connect(q.host.full_addrs[0])
                ok += 1
            except (Libp2pError, OSError, asyncio.TimeoutError):
                continue
        return ok

    async def start(self, progress: Callable[[str], None] | None = None) -> None:
        """Starts every node, then lets each dial in (``join_interval`` apart), then waits
        ``warmup`` seconds for the meshes."""
        cfg = self.cfg
        for i in range(cfg.nodes):
            await self.add_peer()
            if progress is not None and (i + 1) % 100 == 0:
                progress(f"started {i + 1}/{cfg.nodes}")
        dials: list[asyncio.Future[int]] = []
        for p in list(self.peers):
            dials.append(asyncio.ensure_future(self.dial_some(p, self.peers)))
            await asyncio.sleep(cfg.join_interval)
        await asyncio.gather(*dials)
        if progress is not None:
            progress(f"connected; warming up {cfg.warmup:g} s")
        await asyncio.sleep(cfg.warmup)
        self.sample_mesh()

    # ---- churn -------------------------------------------------------------------------

    async def depart(self, peer: GossipPeer) -> None:
        """A crash: the node's links go silent, then its host stops (no goodbyes arrive)."""
        peer.left_at = self.now()
        self.net.set_online(peer.node, False)
        await peer.host.close(linger=0)

    def schedule_churn(self, duration: float) -> int:
        """Poisson departures at ``churn_per_hour`` per node over ``duration`` seconds, each
        replaced by a new node; returns how many were scheduled."""
        rate = self.cfg.churn_per_hour * self.cfg.nodes / 3600.0
        if rate <= 0:
            return 0
        t, n = 0.0, 0
        while True:
            t += self.rng.expovariate(rate)
            if t >= duration:
                return n
            n += 1
            self._loop.call_later(t, self._churn_event)

    def _churn_event(self) -> None:
        online = self.online
        if len(online) > 1:
            self._spawn(self.depart(self.rng.choice(online)))

        async def replace() -> None:
            p = await self.add_peer()
            await self.dial_some(p, self.online)

        self._spawn(replace())

    # ---- publishing --------------------------------------------------------------------

    def sample_mesh(self) -> None:
        topic = self.cfg.topic
        self.mesh_samples.append(
            (round(self.now(), 6), [len(p.ps.mesh_peers(topic)) for p in self.online])
        )

    async def _sampler(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.sample_interval)
            self.sample_mesh()

    async def publish_all(self, progress: Callable[[str], None] | None = None) -> None:
        """``rate * duration`` messages, ``1 / rate`` apart, each by a random settled node;
        then ``drain`` seconds for the last ones to spread."""
        cfg = self.cfg
        count = max(1, round(cfg.rate * cfg.duration))
        t0 = self.now()
        self._spawn(self._sampler())
        for i in range(count):
            delay = t0 + i / cfg.rate - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            now = self.now()
            pool = self.publishers()
            settled = [p for p in pool if p.joined_at <= now - cfg.settle] or pool
            await self.publish_from(self.rng.choice(settled))
            if progress is not None and (i + 1) % max(1, count // 10) == 0:
                progress(f"published {i + 1}/{count}")
        await asyncio.sleep(cfg.drain)
        self.sample_mesh()

    async def publish_from(self, src: GossipPeer) -> Published:
        """Publishes the next message (its index, then zeros: ``msg_size`` bytes) at ``src``."""
        m = Published(self.now(), src.node.index)
        idx = len(self.messages)
        self.messages.append(m)
        data = idx.to_bytes(_IDX, "big") + bytes(self.cfg.msg_size - _IDX)
        with contextlib.suppress(Libp2pError, OSError, ValueError):  # counted as undelivered
            await src.ps.publish(self.cfg.topic, data)
        return m

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for p in self.online:
            await p.host.close(linger=0)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))], 6)


def _expected(sim: GossipSim, m: Published) -> list[int]:
    """Nodes a message should reach: settled before it, still online ``drain`` after it."""
    cfg = sim.cfg
    return [
        p.node.index
        for p in sim.peers
        if p.node.index != m.publisher
        and p.joined_at <= m.at - cfg.settle
        and (p.left_at is None or p.left_at >= m.at + cfg.drain)
    ]


def summarize_gossip(sim: GossipSim) -> dict[str, Any]:
    """The run's deterministic figures (what ``results.json`` holds)."""
    cfg = sim.cfg
    expected = delivered = full = 0
    latencies: list[float] = []
    per_msg_ratio: list[float] = []
    for m in sim.messages:
        exp = _expected(sim, m)
        got = [m.received[i] - m.at for i in exp if i in m.received]
        expected += len(exp)
        delivered += len(got)
        latencies.extend(got)
        if exp:
            per_msg_ratio.append(len(got) / len(exp))
            full += len(got) == len(exp)
    counts = [p.ps.router.topic_counts.get(cfg.topic) for p in sim.peers]
    unfiltered = sum(c.unfiltered for c in counts if c is not None)
    duplicates = sum(c.duplicate for c in counts if c is not None)
    accepted = sum(c.accepted for c in counts if c is not None)
    sent = sum(p.ps.bytes_sent for p in sim.peers)
    final = sim.mesh_samples[-1][1] if sim.mesh_samples else []
    hist: dict[str, int] = {}
    for d in sorted(set(final)):
        hist[str(d)] = final.count(d)
    return {
        "config": asdict(cfg),
        "nodes_created": len(sim.peers),
        "nodes_online": len(sim.online),
        "nodes_departed": sum(p.left_at is not None for p in sim.peers),
        "nat_nodes": sum(p.node.nat for p in sim.peers),
        "messages_published": len(sim.messages),
        "delivery": {
            "expected": expected,
            "delivered": delivered,
            "ratio": round(delivered / expected, 6) if expected else None,
            "messages_fully_delivered": full,
            "worst_message_ratio": round(min(per_msg_ratio), 6) if per_msg_ratio else None,
        },
        "latency": {
            "p50": _pct(latencies, 50),
            "p90": _pct(latencies, 90),
            "p99": _pct(latencies, 99),
            "max": _pct(latencies, 100),
            "mean": round(statistics.fmean(latencies), 6) if latencies else None,
        },
        # Every copy of a message a node received, over the messages it accepted: 1.0 would
        # be a perfect tree; the rest are the duplicates the mesh and the publish flood cost.
        "amplification": {
            "copies_received": unfiltered,
            "duplicates": duplicates,
            "accepted": accepted,
            "copies_per_accepted": round(unfiltered / accepted, 4) if accepted else None,
            "duplicates_per_accepted": round(duplicates / accepted, 4) if accepted else None,
        },
        "mesh_degree": {
            "histogram": hist,
            "mean": round(statistics.fmean(final), 3) if final else None,
            "min": min(final) if final else None,
            "max": max(final) if final else None,
            "samples": [
                [t, round(statistics.fmean(ds), 3) if ds else 0.0, min(ds, default=0)]
                for t, ds in sim.mesh_samples
            ],
        },
        "latency_cdf": _cdf(latencies),
        "pubsub_bytes_sent": sent,
        "virtual_seconds": round(sim.now(), 6),
        "deliveries": sim.net.deliveries,
        "bytes_delivered": sim.net.bytes_delivered,
        "trace_digest": sim.net.trace_digest,
    }


def _cdf(values: list[float], points: int = 50) -> list[list[float]]:
    """``points`` (latency, share delivered by then) pairs, for the plot."""
    if not values:
        return []
    s = sorted(values)
    out = []
    for i in range(1, points + 1):
        j = max(0, math.ceil(i / points * len(s)) - 1)
        out.append([round(s[j], 6), round((j + 1) / len(s), 6)])
    return out


async def run_gossip_scenario(
    cfg: GossipScenarioConfig, progress: Callable[[str], None] | None = None
) -> RunResult:
    """Start, warm up, (churn), publish, drain; call inside :func:`rapidp2p.sim.clock.run`."""
    from rapidp2p.sim.machine import MachineMeter

    meter = MachineMeter()
    sim = GossipSim(cfg)
    await sim.start(progress)
    meter.mark("bootstrap", sim.now(), len(sim.peers))
    sim.schedule_churn(cfg.duration + cfg.drain)
    await sim.publish_all(progress)
    meter.mark("publish", sim.now(), len(sim.peers))
    results = summarize_gossip(sim)
    await sim.close()
    return RunResult(results, meter.figures())
