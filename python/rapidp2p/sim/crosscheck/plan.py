"""The simulator's side of the cross-check: the ordinary scenarios, recorded so that the real
processes can replay them.

:class:`RecordingKadSim` and :class:`RecordingGossipSim` are the simulator's own
:class:`~rapidp2p.sim.kad.KadSim` and :class:`~rapidp2p.sim.gossip.GossipSim`, unchanged
except that they note what they did: every node's key seed and placement, and every measured
operation (who looked up which key, who published which message when, who dialled whom).
The harness then starts the same nodes (same peer IDs, same places in the latency model)
as real processes and replays the same operations in the same order and at the same
intervals, so the two runs differ only in the network and the clock, and every figure can
be compared pair by pair, not just as two samples of a distribution.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from rapidp2p.crypto.ed25519 import Ed25519PrivateKey
from rapidp2p.exceptions import Libp2pError
from rapidp2p.peer import PeerId
from rapidp2p.sim.gossip import GossipPeer, GossipScenarioConfig, GossipSim, summarize_gossip
from rapidp2p.sim.kad import KadScenarioConfig, KadSim, Measurement, SimPeer, summarize
from rapidp2p.sim.network import NetConfig, SimNode

__all__ = ["GossipPlan", "KadPlan", "NodeSpec", "record_gossip", "record_kad"]


@dataclass
class NodeSpec:
    """One node as the simulator placed it."""

    index: int
    key_seed: str
    peer_id: str
    region: str
    access_delay: float
    up_bps: float
    down_bps: float


def _node_spec(index: int, node: SimNode, key_seed: bytes, peer_id: PeerId) -> NodeSpec:
    p = node.placement
    return NodeSpec(
        index, key_seed.hex(), str(peer_id), p.region, p.access_delay, p.up_bps, p.down_bps
    )


@dataclass
class KadPlan:
    """A recorded Kademlia run: its nodes, its operations (with the simulator's outcome of
    each) and the simulator's summary."""

    config: dict[str, Any]
    net: dict[str, Any]
    nodes: list[NodeSpec]
    #: {"op", "src", "key"|"target"|"provider", "ok", "latency", "hops"} in run order.
    ops: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


class RecordingKadSim(KadSim):
    """:class:`KadSim` noting its nodes and operations (see the module docstring)."""

    def __init__(self, cfg: KadScenarioConfig) -> None:
        super().__init__(cfg)
        self.key_seeds: list[bytes] = []
        self.op_log: list[dict[str, Any]] = []
        self._index: dict[PeerId, int] = {}

    async def add_peer(self) -> SimPeer:
        p = await super().add_peer()
        self.key_seeds.append(cast(Ed25519PrivateKey, p.host.key).seed())
        self._index[p.host.peer_id] = p.node.index
        return p

    async def measure_closest(self, peer: SimPeer, key: bytes) -> Measurement:
        self.op_log.append({"op": "get_closest_peers", "src": peer.node.index, "key": key.hex()})
        return await super().measure_closest(peer, key)

    async def measure_find_peer(self, peer: SimPeer, target: PeerId) -> Measurement:
        self.op_log.append(
            {"op": "find_peer", "src": peer.node.index, "target": self._index[target]}
        )
        return await super().measure_find_peer(peer, target)

    async def measure_providers(
        self, provider: SimPeer, finder: SimPeer, key: bytes
    ) -> tuple[Measurement, Measurement]:
        a, b = provider.node.index, finder.node.index
        self.op_log.append({"op": "provide", "src": a, "key": key.hex()})
        self.op_log.append({"op": "find_providers", "src": b, "key": key.hex(), "provider": a})
        return await super().measure_providers(provider, finder, key)

    def plan(self) -> KadPlan:
        nodes = [
            _node_spec(i, p.node, self.key_seeds[i], p.host.peer_id)
            for i, p in enumerate(self.peers)
        ]
        ops = []
        for rec, m in zip(self.op_log, self.measurements, strict=True):
            ops.append({**rec, "ok": m.ok, "latency": m.latency, "hops": m.hops})
        return KadPlan(asdict(self.cfg), asdict(self.net.config), nodes, ops, summarize(self))


async def record_kad(cfg: KadScenarioConfig) -> KadPlan:
    """Runs the simulator's Kademlia scenario (bootstrap, queries) and records it; call
    inside :func:`rapidp2p.sim.clock.run`."""
    if cfg.nat_share or cfg.loss or cfg.churn_per_hour:
        raise ValueError("the cross-check models latency and bandwidth only (no NAT/loss/churn)")
    sim = RecordingKadSim(cfg)
    await sim.start()
    await sim.run_queries()
    plan = sim.plan()
    await sim.close()
    return plan


@dataclass
class GossipPlan:
    """A recorded GossipSub run: nodes, who dialled whom, who published when, and the
    simulator's per-message deliveries and summary."""

    config: dict[str, Any]
    net: dict[str, Any]
    nodes: list[NodeSpec]
    #: dials[i]: the nodes node i dialled, in order.
    dials: list[list[int]] = field(default_factory=list)
    #: (seconds after the first publish, publisher) per message.
    publishes: list[tuple[float, int]] = field(default_factory=list)
    #: Per message: {receiver: latency}; per node: topic counters and final mesh degree.
    received: list[dict[int, float]] = field(default_factory=list)
    counters: list[dict[str, int]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


class RecordingGossipSim(GossipSim):
    """:class:`GossipSim` noting its nodes, dials and publishes."""

    def __init__(self, cfg: GossipScenarioConfig) -> None:
        super().__init__(cfg)
        self.key_seeds: list[bytes] = []
        self.dial_log: dict[int, list[int]] = {}
        self.t0: float | None = None

    async def add_peer(self) -> GossipPeer:
        p = await super().add_peer()
        self.key_seeds.append(cast(Ed25519PrivateKey, p.host.key).seed())
        return p

    async def dial_some(self, peer: GossipPeer, pool: list[GossipPeer]) -> int:
        """:meth:`GossipSim.dial_some` (the same draws), noting the targets."""
        cands = [q for q in pool if q is not peer and not q.node.nat and q.left_at is None]
        targets = self.rng.sample(cands, min(self.cfg.connect, len(cands)))
        self.dial_log[peer.node.index] = [q.node.index for q in targets]
        ok = 0
        for q in targets:
            try:
                await peer.host.connect(q.host.full_addrs[0])
                ok += 1
            except (Libp2pError, OSError, asyncio.TimeoutError):
                continue
        return ok

    def plan(self) -> GossipPlan:
        nodes = [
            _node_spec(i, p.node, self.key_seeds[i], p.host.peer_id)
            for i, p in enumerate(self.peers)
        ]
        t0 = self.messages[0].at if self.messages else 0.0
        topic = self.cfg.topic
        counters = []
        for p in self.peers:
            c = p.ps.router.topic_counts.get(topic)
            counters.append(
                {
                    "unfiltered": c.unfiltered if c else 0,
                    "duplicate": c.duplicate if c else 0,
                    "accepted": c.accepted if c else 0,
                    "mesh": len(p.ps.mesh_peers(topic)),
                }
            )
        return GossipPlan(
            asdict(self.cfg),
            asdict(self.net.config),
            nodes,
            [self.dial_log.get(i, []) for i in range(len(self.peers))],
            [(m.at - t0, m.publisher) for m in self.messages],
            [{r: t - m.at for r, t in m.received.items()} for m in self.messages],
            counters,
            summarize_gossip(self),
        )


async def record_gossip(cfg: GossipScenarioConfig) -> GossipPlan:
    """Runs the simulator's GossipSub scenario (start, warm up, publish, drain) and records
    it; call inside :func:`rapidp2p.sim.clock.run`."""
    if cfg.nat_share or cfg.loss or cfg.churn_per_hour:
        raise ValueError("the cross-check models latency and bandwidth only (no NAT/loss/churn)")
    sim = RecordingGossipSim(cfg)
    await sim.start()
    await sim.publish_all()
    plan = sim.plan()
    await sim.close()
    return plan


def default_net() -> NetConfig:
    """The simulated network's settings the cross-check reproduces (jitter included)."""
    return NetConfig()
