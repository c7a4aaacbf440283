"""The Kademlia scenario: N production hosts running :class:`~rapidp2p.kad.KadDHT` on the
simulated network, then lookups measured in virtual time.

Bootstrap is the core of ``KadDHT.bootstrap``, done with public calls so it is reproducible:
connect to a seed node, look up our own ID, then ``refresh_lookups`` lookups of random keys
(the seeded equivalent of the random-bucket refresh, whose targets ``KadDHT.refresh`` draws
from an unseeded generator). The periodic refresh is pushed past the run for the same reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from rapidp2p.crypto.ed25519 import Ed25519PrivateKey
from rapidp2p.exceptions import Libp2pError
from rapidp2p.host import ConnManagerConfig, Host, HostConfig, PeerGCConfig
from rapidp2p.host.limits import Limits
from rapidp2p.host.upgrader import MuxerOptions
from rapidp2p.kad import KadConfig, KadDHT
from rapidp2p.peer import PeerId
from rapidp2p.peerstore import MemoryPeerStore
from rapidp2p.resources.limits import ResourceLimits, ScopeLimit
from rapidp2p.sim.network import NetConfig, SimNetwork, SimNode

__all__ = ["KadScenarioConfig", "KadSim", "Measurement", "run_kad_scenario"]

#: Virtual wall clock epoch of the records' timestamps (2026-01-01T00:00:00Z).
EPOCH = 1767225600.0

#: The muxer's production keep-alive interval (yamux pings each connection this often).
PRODUCTION_KEEPALIVE: float | None = MuxerOptions().keepalive_interval


@dataclass
class KadScenarioConfig:
    """What one Kademlia run does (times in virtual seconds)."""

    nodes: int = 100
    seed: int = 1
    #: Lookups of each kind measured after bootstrap.
    queries: int = 50
    #: "noise" (faithful) or "plaintext" (identity-only, see :func:`host_config`).
    security: str = "noise"
    nat_share: float = 0.0
    loss: float = 0.0
    #: Departures per node per hour during the measurement phase (each replaced by a join).
    churn_per_hour: float = 0.0
    #: Virtual seconds between two measured operations.
    op_interval: float = 2.0
    #: Virtual seconds between two joins during bootstrap.
    join_interval: float = 0.2
    seeds: int = 3
    refresh_lookups: int = 1
    k: int = 20
    alpha: int = 3
    #: Seconds between yamux keep-alive pings; None: none (see :func:`host_config`).
    keepalive: float | None = PRODUCTION_KEEPALIVE


@dataclass
class Measurement:
    """One measured operation."""

    op: str
    ok: bool
    latency: float
    hops: int | None


@dataclass
class SimPeer:
    node: SimNode
    host: Host
    dht: KadDHT


def sim_limits() -> Limits:
    """Admission caps out of reach, for the same reason as :func:`sim_resource_limits`."""
    big = 1 << 30
    return Limits(
        max_connections=big,
        max_pending_handshakes=big,
        max_pending_per_ip=big,
        max_connections_per_ip=big,
        connection_rate_per_ip=float(big),
        connection_burst_per_ip=big,
        max_streams_per_connection=big,
        max_inbound_streams_per_protocol=big,
        allowlist_max_connections=big,
        allowlist_max_pending_handshakes=big,
    )


def sim_resource_limits() -> ResourceLimits:
    """Every scope unlimited: the production defaults (128 system connections, sized from
    this machine's memory) are meant for one process on the open Internet, whereas a simulated
    host is one of thousands sharing a process, and its real constraints are the simulated
    network's, so the defaults would only refuse joiners once N >= 500."""
    free = ScopeLimit()
    return ResourceLimits(
        system=free,
        transient=free,
        allowlisted_system=free,
        allowlisted_transient=free,
        service=free,
        protocol=free,
        peer=free,
        conn=free,
        stream=free,
    )


def host_config(security: str, keepalive: float | None = PRODUCTION_KEEPALIVE) -> HostConfig:
    """Production defaults except: watermarks and peer GC out of reach (their clocks are
    wall clocks, which would make runs irreproducible), the security protocol, and the
    muxer's keep-alive (``keepalive`` seconds; None: no pings).

    The host's maintenance round runs once an hour instead of once a second: with the
    watermarks out of reach and peer GC off it has nothing to do, but at 10,000 nodes its
    one-second timer alone was tens of millions of loop events in a bootstrap.

    Why keep-alive is a knob: the scenarios keep every connection (no trimming), so in a
    long run the pings, each connection's two sides every 10 s, become nearly all of the
    traffic (about 5 of the 5.2 million deliveries of the 1,000-node Kademlia run) while
    no lookup waits on them; a crashed peer's connections are reset by the simulated
    network's broken-connection timeout either way.

    ``plaintext`` is the identity-only mode: ``/plaintext/2.0.0`` exchanges the public keys
    and checks that they match the peer IDs, but skips the Diffie-Hellman handshake, the proof
    that the peer holds its private key (no signature) and all encryption and integrity."""
    cfg = HostConfig(
        connmgr=ConnManagerConfig(low_water=1 << 20, high_water=1 << 21),
        peer_gc=PeerGCConfig(grace=None, max_age=None),
        close_linger=0.0,
        maintenance_interval=3600.0,
        muxer=MuxerOptions(keepalive_interval=keepalive),
        limits=sim_limits(),
        resource_limits=sim_resource_limits(),
    )
    if security == "plaintext":
        cfg.enable_plaintext = True
        cfg.security_protocols = ["/plaintext/2.0.0"]
    elif security != "noise":
        raise ValueError(f"unknown security mode {security!r}")
    return cfg


def kad_key(raw: bytes) -> int:
    """Position of a key in the Kademlia keyspace (SHA-256, as the libp2p spec says)."""
    return int.from_bytes(hashlib.sha256(raw).digest(), "big")


class KadSim:
    """A simulated DHT network; build with :meth:`start`, then call the measured operations."""

    def __init__(self, cfg: KadScenarioConfig) -> None:
        self.cfg = cfg
        self.net = SimNetwork(cfg.seed, NetConfig(nat_share=cfg.nat_share, loss=cfg.loss))
        self.rng = random.Random(f"kad-scenario-{cfg.seed}")
        self.peers: list[SimPeer] = []
        self.departed: list[SimPeer] = []
        self.measurements: list[Measurement] = []
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[Any]] = set()

    def now(self) -> float:
        return self._loop.time()

    def wall(self) -> float:
        """Virtual wall clock for record timestamps."""
        return EPOCH + self._loop.time()

    @property
    def online(self) -> list[SimPeer]:
        return [p for p in self.peers if p.node.online]

    @property
    def servers(self) -> list[SimPeer]:
        return [p for p in self.online if p.dht.mode == "server"]

    async def add_peer(self) -> SimPeer:
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
        kcfg = KadConfig(
            mode="client" if node.nat else "server",
            k=self.cfg.k,
            alpha=self.cfg.alpha,
            refresh_interval=1e9,
        )
        dht = KadDHT(host, kcfg)
        dht._now = self.wall  # documented as replaceable: record times follow the virtual clock
        await dht.start()
        peer = SimPeer(node, host, dht)
        self.peers.append(peer)
        return peer

    async def join(self, peer: SimPeer, seeds: list[SimPeer]) -> bool:
        """Connects to one seed, looks up its own ID, then random keys; True if it got peers."""
        for s in seeds:
            if s is peer or not s.node.online:
                continue
            try:
                await peer.host.connect(s.host.full_addrs[0])
            except (Libp2pError, OSError, asyncio.TimeoutError):
                continue
            # The seed enters the routing table once identify says it serves kad (as in
            # KadDHT.bootstrap, whose first request would add it).
            for _ in range(1000):
                if s.host.peer_id in peer.dht.routing:
                    break
                await asyncio.sleep(0.01)
            break
        try:
            await peer.dht.get_closest_peers(peer.host.peer_id)
            for _ in range(self.cfg.refresh_lookups):
                await peer.dht.get_closest_peers(self.rng.randbytes(32))
        except (Libp2pError, OSError, asyncio.TimeoutError):
            return False
        return len(peer.dht.routing) > 0

    async def start(self, progress: Callable[[str], None] | None = None) -> None:
        """Creates the nodes and lets them join one after another (``join_interval`` apart,
        overlapping in time like a real network coming up)."""
        cfg = self.cfg
        seeds: list[SimPeer] = []
        while len(seeds) < min(cfg.seeds, cfg.nodes):
            p = await self.add_peer()
            if not p.node.nat:
                seeds.append(p)
        for s in seeds:
            await self.join(s, seeds)
        joins: list[asyncio.Task[bool]] = []
        while len(self.peers) < cfg.nodes:
            p = await self.add_peer()
            joins.append(asyncio.ensure_future(self.join(p, list(seeds))))
            await asyncio.sleep(cfg.join_interval)
            if progress is not None and len(self.peers) % 100 == 0:
                progress(f"joined {len(self.peers)}/{cfg.nodes}")
        await asyncio.gather(*joins)

    # ---- churn and partitions ----------------------------------------------------------

    async def depart(self, peer: SimPeer) -> None:
        """A crash: the node's links go silent, then its host stops (no goodbyes arrive)."""
        self.net.set_online(peer.node, False)
        self.departed.append(peer)
        await peer.dht.close()
        await peer.host.close(linger=0)

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def schedule_churn(self, duration: float) -> int:
        """Poisson departures at ``churn_per_hour`` per node, each replaced by a new node
        joining; returns how many were scheduled."""
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
        candidates = self.online[self.cfg.seeds :]
        if candidates:
            self._spawn(self.depart(self.rng.choice(candidates)))

        async def replace() -> None:
            p = await self.add_peer()
            await self.join(p, self.servers[: self.cfg.seeds])

        self._spawn(replace())

    # ---- measured operations -----------------------------------------------------------

    def true_closest(self, key: bytes, n: int) -> list[PeerId]:
        kk = kad_key(key)
        ranked = sorted(self.servers, key=lambda p: kad_key(p.host.peer_id.to_bytes()) ^ kk)
        return [p.host.peer_id for p in ranked[:n]]

    async def _timed(self, op: str, peer: SimPeer, coro: Any) -> Measurement:
        before = len(peer.dht.lookup_hops)
        last = peer.dht.lookup_hops[-1:] if before else []
        t0 = self.now()
        try:
            ok = bool(await coro)
        except (Libp2pError, OSError, asyncio.TimeoutError):
            ok = False
        hops_list = peer.dht.lookup_hops
        grew = len(hops_list) > before or (len(hops_list) == 1024 and hops_list[-1:] != last)
        m = Measurement(op, ok, self.now() - t0, hops_list[-1] if grew else None)
        self.measurements.append(m)
        return m

    async def measure_closest(self, peer: SimPeer, key: bytes) -> Measurement:
        truth = self.true_closest(key, 1)

        async def op() -> bool:
            got = await peer.dht.get_closest_peers(key)
            return bool(truth) and truth[0] in got

        return await self._timed("get_closest_peers", peer, op())

    async def measure_find_peer(self, peer: SimPeer, target: PeerId) -> Measurement:
        async def op() -> bool:
            info = await peer.dht.find_peer(target)
            return bool(info.addrs)

        return await self._timed("find_peer", peer, op())

    async def measure_providers(
        self, provider: SimPeer, finder: SimPeer, key: bytes
    ) -> tuple[Measurement, Measurement]:
        async def prov() -> bool:
            return await provider.dht.provide(key) > 0

        async def find() -> bool:
            async for info in finder.dht.find_providers(key, count=1):
                if info.peer_id == provider.host.peer_id:
                    return True
            return False

        a = await self._timed("provide", provider, prov())
        b = await self._timed("find_providers", finder, find())
        return a, b

    async def run_queries(self, progress: Callable[[str], None] | None = None) -> None:
        """``queries`` of each operation from random online nodes, ``op_interval`` apart."""
        for i in range(self.cfg.queries):
            online = self.online
            src = self.rng.choice(online)
            await self.measure_closest(src, self.rng.randbytes(32))
            await asyncio.sleep(self.cfg.op_interval)
            target = self.rng.choice([p for p in self.servers if p is not src] or [src])
            await self.measure_find_peer(self.rng.choice(self.online), target.host.peer_id)
            await asyncio.sleep(self.cfg.op_interval)
            a, b = self.rng.sample(self.online, 2)
            await self.measure_providers(a, b, self.rng.randbytes(32))
            await asyncio.sleep(self.cfg.op_interval)
            if progress is not None and (i + 1) % 10 == 0:
                progress(f"queries {i + 1}/{self.cfg.queries}")

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for p in self.peers:
            if p.node.online:
                await p.dht.close()
                await p.host.close(linger=0)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    i = min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))
    return s[i]


def summarize(sim: KadSim) -> dict[str, Any]:
    """The run's deterministic figures (what ``results.json`` holds)."""
    ops: dict[str, Any] = {}
    for op in ("get_closest_peers", "find_peer", "provide", "find_providers"):
        ms = [m for m in sim.measurements if m.op == op]
        lat = [m.latency for m in ms]
        hops = [m.hops for m in ms if m.hops is not None]
        ops[op] = {
            "count": len(ms),
            "success_rate": round(sum(m.ok for m in ms) / len(ms), 4) if ms else None,
            "latency_p50": round(_pct(lat, 50), 6),
            "latency_p90": round(_pct(lat, 90), 6),
            "latency_p99": round(_pct(lat, 99), 6),
            "hops_mean": round(statistics.fmean(hops), 3) if hops else None,
            "hops_max": max(hops) if hops else None,
            "hops_hist": {str(h): hops.count(h) for h in sorted(set(hops))},
        }
    sizes = [len(p.dht.routing) for p in sim.online]
    regions: dict[str, int] = {}
    for p in sim.peers:
        regions[p.node.placement.region] = regions.get(p.node.placement.region, 0) + 1
    return {
        "config": asdict(sim.cfg),
        "nodes_created": len(sim.peers),
        "nodes_online": len(sim.online),
        "nodes_departed": len(sim.departed),
        "nat_nodes": sum(p.node.nat for p in sim.peers),
        "regions": regions,
        "routing_table_size": {
            "mean": round(statistics.fmean(sizes), 2) if sizes else None,
            "min": min(sizes) if sizes else None,
            "max": max(sizes) if sizes else None,
        },
        "log2_n": round(math.log2(max(sim.cfg.nodes, 2)), 3),
        "virtual_seconds": round(sim.now(), 6),
        "deliveries": sim.net.deliveries,
        "bytes_delivered": sim.net.bytes_delivered,
        "trace_digest": sim.net.trace_digest,
        "ops": ops,
    }


@dataclass
class RunResult:
    """Deterministic results plus this machine's cost figures (which vary run to run)."""

    results: dict[str, Any]
    machine: dict[str, float] = field(default_factory=dict)


async def run_kad_scenario(
    cfg: KadScenarioConfig, progress: Callable[[str], None] | None = None
) -> RunResult:
    """Bootstrap, (optional churn), queries; call inside :func:`rapidp2p.sim.clock.run`."""
    from rapidp2p.sim.machine import MachineMeter

    meter = MachineMeter()
    sim = KadSim(cfg)
    await sim.start(progress)
    meter.mark("bootstrap", sim.now(), len(sim.peers))
    sim.schedule_churn(cfg.queries * 3 * cfg.op_interval)
    await sim.run_queries(progress)
    meter.mark("queries", sim.now(), len(sim.peers))
    results = summarize(sim)
    await sim.close()
    return RunResult(results, meter.figures())
