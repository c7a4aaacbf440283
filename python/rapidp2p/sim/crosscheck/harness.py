"""The real-process side of the cross-check: N OS processes in N network namespaces, the
delaying TUN router between them, the recorded scenario replayed on the real clock.

Lifecycle (everything undone on the way out, error or not): namespaces are created
(:class:`~rapidp2p.sim.crosscheck.netns.Namespaces`), the router process creates a ``tun0``
in each and the harness addresses them; two probe namespaces measure the router's own
latency; then one process per node is forked from the harness (so the library is imported
once, not N times), enters its namespace with ``setns`` and runs
:mod:`rapidp2p.sim.crosscheck.node` on a fresh ordinary event loop. Node processes and the
router exit when their stdin closes (and die with the harness: ``PR_SET_PDEATHSIG``), and
the namespaces are deleted in a ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapidp2p.sim.crosscheck import probe as probe_mod
from rapidp2p.sim.crosscheck import router as router_mod
from rapidp2p.sim.crosscheck.netns import Namespaces
from rapidp2p.sim.crosscheck.plan import GossipPlan, KadPlan, NodeSpec
from rapidp2p.sim.crosscheck.router import RouterSpec, percentiles
from rapidp2p.sim.geo import one_way_base

__all__ = ["Testbed", "run_gossip_real", "run_kad_real", "testbed"]

_PR_SET_PDEATHSIG = 1


class NodeProc:
    """The harness's handle on one forked node process: JSON-line requests over pipes."""

    def __init__(self, index: int, pid: int, rfd: int, wfd: int) -> None:
        self.index = index
        self.pid = pid
        self._rfd = rfd
        self._wfd = wfd
        self._next = 1
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.StreamReader | None = None
        self._task: asyncio.Task[None] | None = None
        self.info: dict[str, Any] = {}

    async def attach(self) -> None:
        loop = asyncio.get_running_loop()
        reader = self._reader = asyncio.StreamReader(limit=1 << 26)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(self._rfd, "rb", 0)
        )
        self._writer, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(self._wfd, "wb", 0)
        )
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self._reader is not None
        while line := await self._reader.readline():
            msg = json.loads(line)
            fut = self._pending.pop(msg.get("id", -1), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        err = RuntimeError(f"node {self.index} exited")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)

    def _send(self, obj: dict[str, Any]) -> None:
        assert self._writer is not None
        self._writer.write((json.dumps(obj) + "\n").encode())

    async def configure(self, conf: dict[str, Any]) -> dict[str, Any]:
        fut = asyncio.get_running_loop().create_future()
        self._pending[0] = fut
        self._send(conf)
        self.info = await fut
        return self.info

    async def request(self, cmd: str, **kw: Any) -> dict[str, Any]:
        rid = self._next
        self._next += 1
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self._send({"id": rid, "cmd": cmd, **kw})
        res: dict[str, Any] = await fut
        if "fatal" in res:
            raise RuntimeError(f"node {self.index}: {cmd} failed: {res['fatal']}")
        return res

    def close(self) -> None:
        """Closes the request pipe (the node exits on EOF); safe once the loop is gone."""
        if self._task is not None and not self._task.get_loop().is_closed():
            self._task.cancel()
        w, self._writer = self._writer, None
        if w is not None and not w.is_closing():
            try:
                w.close()
            except RuntimeError:  # the loop is closed: close the descriptor directly
                pipe = w.get_extra_info("pipe")
                if pipe is not None:
                    pipe.close()
        elif w is None and self._wfd >= 0 and self._task is None:
            os.close(self._wfd)
        self._wfd = -1


def _fork_node(netns: str, index: int, nice: int = 0) -> NodeProc:
    """Forks a node process that enters ``netns`` and serves requests on pipes (at
    ``nice`` priority: negative values let the nodes run before other work on the machine)."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            os.dup2(to_child_r, 0)
            os.dup2(from_child_w, 1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.closerange(3, 65536)  # the parent's loop, sockets and the other nodes' pipes
            ns_fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            router_mod._setns(ns_fd)
            os.close(ns_fd)
            if nice:
                os.nice(nice)
            sys.stdin = open(0)  # noqa: SIM115 - the process's lifetime
            sys.stdout = open(1, "w")  # noqa: SIM115
            sys.stderr = open(2, "w")  # noqa: SIM115
            asyncio.set_event_loop_policy(None)
            asyncio.set_event_loop(None)
            from rapidp2p.sim.crosscheck.node import _serve

            asyncio.run(_serve())
        except BaseException:  # a child must never return into the harness
            code = 1
        finally:
            os._exit(code)
    os.close(to_child_r)
    os.close(from_child_w)
    os.set_inheritable(to_child_w, False)
    os.set_inheritable(from_child_r, False)
    return NodeProc(index, pid, from_child_r, to_child_w)


def base_matrix(nodes: list[NodeSpec]) -> list[list[float]]:
    """One-way delays as :meth:`rapidp2p.sim.network.SimNetwork.latency` computes them."""
    return [
        [one_way_base(a.region, b.region) + a.access_delay + b.access_delay for b in nodes]
        for a in nodes
    ]


@dataclass
class Testbed:
    """A running set of namespaces, the router, and the node processes."""

    ns: Namespaces
    router: subprocess.Popen[str]
    nodes: list[NodeProc]
    n: int
    router_idle: dict[str, Any]
    workdir: Path
    #: CPU seconds of all node processes, known once they exited (after the block).
    node_cpu_s: float = 0.0

    def probe_ns(self) -> tuple[int, int]:
        return self.n, self.n + 1

    def router_stats(self) -> dict[str, Any]:
        assert self.router.stdin is not None and self.router.stdout is not None
        self.router.stdin.write("stats\n")
        self.router.stdin.flush()
        stats: dict[str, Any] = json.loads(self.router.stdout.readline())
        return stats

    def router_reset(self) -> None:
        assert self.router.stdin is not None and self.router.stdout is not None
        self.router.stdin.write("reset\n")
        self.router.stdin.flush()
        self.router.stdout.readline()


def _probe(ns: Namespaces, a: int, b: int, count: int, interval: float) -> list[float]:
    """Round trips of a TCP echo from probe namespace ``a`` to ``b`` (zero configured delay)."""
    script = probe_mod.__file__
    port = "9000"
    srv = subprocess.Popen(
        ns.exec_argv(b, [sys.executable, script, "server", ns.addrs[b], port]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert srv.stdout is not None
        if srv.stdout.readline().strip() != "ready":
            raise RuntimeError("probe server did not start")
        out = subprocess.run(
            ns.exec_argv(
                a, [sys.executable, script, "client", ns.addrs[b], port, str(count), str(interval)]
            ),
            capture_output=True,
            text=True,
            timeout=120 + count * interval * 4,
            check=True,
        )
        rtts: list[float] = json.loads(out.stdout)
        return rtts
    finally:
        if srv.stdin is not None:
            srv.stdin.close()
        srv.wait(timeout=30)


def overhead_figures(rtts: list[float]) -> dict[str, Any]:
    """The probe's round trips and the one-way overhead (half of each) they imply."""
    return {
        "rtt_s": percentiles(rtts),
        "one_way_s": percentiles([r / 2 for r in rtts]),
    }


@contextlib.contextmanager
def testbed(
    nodes: list[NodeSpec],
    net: dict[str, Any],
    seed: int,
    progress: Callable[[str], None] | None = None,
    node_nice: int = 0,
) -> Iterator[Testbed]:
    """Namespaces + router + forked node processes for ``nodes``; all removed on exit."""
    say = progress or (lambda _m: None)
    n = len(nodes)
    ns = Namespaces(n + 2)  # two probe namespaces at the end
    router: subprocess.Popen[str] | None = None
    procs: list[NodeProc] = []
    bed: Testbed | None = None
    old_term = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally below

    if old_term in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, on_term)
    with tempfile.TemporaryDirectory(prefix="rpx-") as tmp:
        workdir = Path(tmp)
        try:
            ns.create()
            base = base_matrix(nodes)
            for row in base:
                row += [0.0, 0.0]
            base += [[0.0] * (n + 2), [0.0] * (n + 2)]
            spec = RouterSpec(
                namespaces=ns.names,
                addrs=ns.addrs,
                up_bps=[s.up_bps for s in nodes] + [0.0, 0.0],
                down_bps=[s.down_bps for s in nodes] + [0.0, 0.0],
                base=base,
                jitter=float(net.get("jitter", 0.1)),
                seed=seed,
            )
            spec_path = workdir / "router.json"
            spec_path.write_text(spec.to_json())
            router = subprocess.Popen(
                [sys.executable, router_mod.__file__, str(spec_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert router.stdout is not None
            if router.stdout.readline().strip() != "ready":
                raise RuntimeError("the router did not start")
            ns.configure_tun()
            say(f"{n + 2} namespaces and the router are up; probing the router")
            rtts = _probe(ns, n, n + 1, 50, 0.01)
            idle = overhead_figures(rtts)
            for i in range(n):
                procs.append(_fork_node(ns.names[i], i, node_nice))
            bed = Testbed(ns, router, procs, n, idle, workdir)
            yield bed
        finally:
            try:
                if bed is not None:
                    bed.node_cpu_s = _stop_nodes(procs)
                else:
                    _stop_nodes(procs)
                if router is not None:
                    _stop_router(router)
            finally:
                ns.remove()
                if old_term in (signal.SIG_DFL, None):
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_nodes(procs: list[NodeProc]) -> float:
    """Closes the nodes' stdin (they exit on EOF), then kills whatever is left after 10 s;
    returns the CPU seconds the node processes used in all."""
    for p in procs:
        with contextlib.suppress(Exception):
            p.close()
    deadline = time.monotonic() + 10
    cpu = 0.0
    for p in procs:
        with contextlib.suppress(ChildProcessError):
            while time.monotonic() < deadline:
                pid, _, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                time.sleep(0.02)
            else:
                os.kill(p.pid, signal.SIGKILL)
                _, _, ru = os.wait4(p.pid, 0)
            cpu += ru.ru_utime + ru.ru_stime
    return cpu


def _stop_router(router: subprocess.Popen[str]) -> None:
    with contextlib.suppress(Exception):
        if router.stdin is not None:
            router.stdin.close()
    try:
        router.wait(timeout=10)
    except subprocess.TimeoutExpired:
        router.kill()
        router.wait()


async def _start_nodes(
    bed: Testbed, nodes: list[NodeSpec], conf: dict[str, Any], seed: int
) -> None:
    for p in bed.nodes:
        await p.attach()
    if conf["scenario"] == "gossip":
        # Every node starts its router at this instant (CLOCK_MONOTONIC is shared).
        conf = {**conf, "start_at": asyncio.get_running_loop().time() + 2.0 + 0.02 * len(nodes)}
    await asyncio.gather(
        *(
            p.configure(
                {
                    **conf,
                    "key_seed": s.key_seed,
                    "addr": bed.ns.addrs[s.index],
                    "index": s.index,
                    "seed": seed,
                }
            )
            for p, s in zip(bed.nodes, nodes, strict=True)
        )
    )
    for p, s in zip(bed.nodes, nodes, strict=True):
        if p.info.get("peer_id") != s.peer_id:
            raise RuntimeError(f"node {s.index} has another peer ID than in the simulator")


class LoadSampler:
    """The machine's 1-minute load average every ``interval`` seconds while a scenario runs
    (the real processes' latencies depend on it; the simulator's do not)."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            await asyncio.sleep(self.interval)

    def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
        s = self.samples or [os.getloadavg()[0]]
        return {"mean": statistics.fmean(s), "max": max(s), "samples": len(s)}


class _LoadProbe:
    """Zero-delay echoes between the probe namespaces while the scenario runs: the router's
    overhead under the scenario's load (the idle figure is taken before)."""

    def __init__(self, bed: Testbed, duration_hint: float) -> None:
        self.bed = bed
        self.count = max(8, min(400, int(duration_hint / 0.25)))
        self.interval = max(0.25, duration_hint / 400)
        self.task: asyncio.Future[list[float]] | None = None

    def start(self) -> None:
        a, b = self.bed.probe_ns()
        loop = asyncio.get_running_loop()
        self.task = loop.run_in_executor(None, _probe, self.bed.ns, a, b, self.count, self.interval)

    async def result(self) -> dict[str, Any]:
        assert self.task is not None
        return overhead_figures(await self.task)


def _key(raw: bytes) -> int:
    return int.from_bytes(hashlib.sha256(raw).digest(), "big")


async def run_kad_real(
    bed: Testbed, plan: KadPlan, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Replays a recorded Kademlia run on the testbed; returns the operations' outcomes."""
    from rapidp2p.peer import PeerId

    say = progress or (lambda _m: None)
    cfg = plan.config
    t_start = time.monotonic()
    await _start_nodes(
        bed,
        plan.nodes,
        {"scenario": "kad", "k": cfg["k"], "alpha": cfg["alpha"], "security": cfg["security"]},
        cfg["seed"],
    )
    say(f"{len(bed.nodes)} node processes up ({time.monotonic() - t_start:.1f} s)")
    bed.router_reset()
    rng_keys = [hashlib.sha256(f"join-{cfg['seed']}-{i}".encode()).hexdigest() for i in range(64)]
    addrs = [p.info["addr"] for p in bed.nodes]
    n_seeds = min(cfg["seeds"], len(bed.nodes))
    seeds = addrs[:n_seeds]

    def refresh(i: int) -> list[str]:
        return [rng_keys[(i + j) % 64] for j in range(cfg["refresh_lookups"])]

    sampler = LoadSampler()
    sampler.start()
    t_boot = time.monotonic()
    joined = []
    for i in range(n_seeds):
        joined.append(await bed.nodes[i].request("join", seeds=seeds, refresh=refresh(i)))
    tasks = []
    for i in range(n_seeds, len(bed.nodes)):
        tasks.append(
            asyncio.ensure_future(bed.nodes[i].request("join", seeds=seeds, refresh=refresh(i)))
        )
        await asyncio.sleep(cfg["join_interval"])
    joined += await asyncio.gather(*tasks)
    boot_s = time.monotonic() - t_boot
    say(f"bootstrapped in {boot_s:.1f} s; replaying {len(plan.ops)} operations")
    ids = [PeerId.from_string(s.peer_id) for s in plan.nodes]
    ranked_cache: dict[str, str] = {}

    def truth(key_hex: str) -> str:
        if key_hex not in ranked_cache:
            kk = _key(bytes.fromhex(key_hex))
            best = min(ids, key=lambda p: _key(p.to_bytes()) ^ kk)
            ranked_cache[key_hex] = str(best)
        return ranked_cache[key_hex]

    load = _LoadProbe(bed, len(plan.ops) * (cfg["op_interval"] * 0.75 + 0.5))
    load.start()
    outcomes: list[dict[str, Any]] = []
    for j, op in enumerate(plan.ops):
        node = bed.nodes[op["src"]]
        if op["op"] == "get_closest_peers":
            r = await node.request("closest", key=op["key"])
            ok = r["value"] is not None and truth(op["key"]) in r["value"]
        elif op["op"] == "find_peer":
            r = await node.request("find_peer", peer=plan.nodes[op["target"]].peer_id)
            ok = bool(r["value"])
        elif op["op"] == "provide":
            r = await node.request("provide", key=op["key"])
            ok = bool(r["value"])
        else:
            provider = plan.nodes[op["provider"]].peer_id
            r = await node.request("find_providers", key=op["key"], provider=provider)
            ok = bool(r["value"])
        outcomes.append(
            {
                "op": op["op"],
                "ok": ok,
                "latency": r["latency"],
                "hops": r["hops"],
                "error": r["error"],
            }
        )
        if op["op"] != "provide":
            await asyncio.sleep(cfg["op_interval"])
        if (j + 1) % 40 == 0:
            say(f"operations {j + 1}/{len(plan.ops)}")
    routing = [(await p.request("routing"))["size"] for p in bed.nodes]
    return {
        "ops": outcomes,
        "joins_ok": sum(bool(j.get("ok")) for j in joined),
        "join_errors": sorted({j["error"] for j in joined if j.get("error")}),
        "routing_table_size": routing,
        "bootstrap_wall_s": boot_s,
        "load_average": sampler.stop(),
        "router": bed.router_stats(),
        "router_under_load": await load.result(),
    }


async def run_gossip_real(
    bed: Testbed, plan: GossipPlan, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Replays a recorded GossipSub run on the testbed; returns deliveries and counters."""
    say = progress or (lambda _m: None)
    cfg = plan.config
    t_start = time.monotonic()
    gossip = {k: cfg[k] for k in ("d", "d_lo", "d_hi", "heartbeat_interval", "idontwant", "topic")}
    await _start_nodes(
        bed,
        plan.nodes,
        {"scenario": "gossip", "gossip": gossip, "security": cfg["security"]},
        cfg["seed"],
    )
    say(f"{len(bed.nodes)} node processes up ({time.monotonic() - t_start:.1f} s)")
    bed.router_reset()
    sampler = LoadSampler()
    sampler.start()
    addrs = [p.info["addr"] for p in bed.nodes]
    dials = []
    for i, targets in enumerate(plan.dials):
        dials.append(
            asyncio.ensure_future(bed.nodes[i].request("dial", addrs=[addrs[t] for t in targets]))
        )
        await asyncio.sleep(cfg["join_interval"])
    await asyncio.gather(*dials)
    say(f"connected; warming up {cfg['warmup']:g} s")
    await asyncio.sleep(cfg["warmup"])
    loop = asyncio.get_running_loop()
    load = _LoadProbe(bed, cfg["duration"] + cfg["drain"])
    load.start()
    t0 = loop.time()
    pubs = []
    for idx, (offset, src) in enumerate(plan.publishes):
        delay = t0 + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        pubs.append(
            asyncio.ensure_future(bed.nodes[src].request("publish", idx=idx, size=cfg["msg_size"]))
        )
    published = await asyncio.gather(*pubs)
    say(f"published {len(published)}; draining {cfg['drain']:g} s")
    await asyncio.sleep(cfg["drain"])
    reports = await asyncio.gather(*(p.request("report") for p in bed.nodes))
    received: list[dict[int, float]] = []
    for idx, pub in enumerate(published):
        at = pub["at"]
        src = plan.publishes[idx][1]
        got = {}
        for i, rep in enumerate(reports):
            t = rep["received"].get(str(idx))
            if i != src and t is not None:
                got[i] = t - at
        received.append(got)
    counters = [
        {k: rep[k] for k in ("unfiltered", "duplicate", "accepted", "mesh")} for rep in reports
    ]
    return {
        "received": received,
        "counters": counters,
        "publish_errors": sum("error" in p for p in published),
        "load_average": sampler.stop(),
        "router": bed.router_stats(),
        "router_under_load": await load.result(),
    }
