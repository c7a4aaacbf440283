"""A 20-node GossipSub mesh on loopback TCP: throughput, latency, overhead; rapidp2p against
go-libp2p-pubsub, rust-libp2p gossipsub and py-libp2p.

    python benches/pubsub_mesh.py [--nodes 20] [--setups multi,single]
                                  [--impls rapidp2p,go-libp2p,rust-libp2p,py-libp2p]
                                  [--quick] [--json]

The nodes run in worker processes driven by this orchestrator over JSON lines on stdin/stdout:
* ``multi``: the publisher alone in one process, the other nodes spread over ``--procs``
  processes, so the publisher's rate is not bounded by the CPU of the nodes it feeds;
* ``single``: all nodes in one process and one event loop (the whole mesh's CPU on one core).

The same worker protocol is spoken by ``pubsub_mesh_py_libp2p.py`` (py-libp2p, trio), run with
the interop venv's python (``tests/interop/py-peer/build``), and by the go and rust interop
peers' ``bench-worker`` command (``tests/interop/{go,rust}-peer/run bench-worker``: one
go-libp2p-pubsub / rust-libp2p gossipsub router per node, no peer scoring, IDONTWANT fixed at
start, so only the "on" overhead is measured; rust does not count its bytes), so every
implementation builds the same mesh (same dial graph, D=6/4/12, same heartbeat, strict
signing, flood publish where the implementation has it) and are measured the same way:

* messages/s one publisher pushes with every subscriber getting >= 99% of them without a
  growing backlog (1 KiB, 64 KiB): paced rates doubling upwards until one fails, then "max"
  (as fast as the publisher's own send queues allow) if all held; py-libp2p's publish()
  never waits (its queues drop instead), hence the pacing; msgs/s counts delivered
  messages (published x delivered / time from the first publish to the last arrival);
* delivery latency p50/p99 of 1 KiB messages at 0.5 msg/s on a fresh mesh (the publisher's
  timestamp is in the payload; CLOCK_MONOTONIC is shared by all processes);
* pubsub bytes sent by all nodes per byte published (64 KiB at half the sustained rate),
  IDONTWANT on, then off, on the same mesh.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
INTEROP = HERE.parent / "tests" / "interop"
PY_LIBP2P_PYTHON = Path.home() / ".cache" / "rapidp2p-interop" / "py-peer-venv" / "bin" / "python"
HEADER = 16  # run u32, seq u32, publish time u64 (monotonic ns), big endian


class Worker:
    """One worker process: JSON commands in, JSON replies out (matched by ``id``)."""

    def __init__(self, argv: list[str], name: str) -> None:
        self.name = name
        #: The worker's stderr (py-libp2p logs connection errors at teardown).
        safe = "".join(c if c.isalnum() or c in "-." else "_" for c in name)
        self.log = Path(f"/tmp/pubsub_mesh_{safe}.log")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log.open("w"),
            text=True,
            bufsize=1,
        )
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._ids = iter(range(1, 1 << 30))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                print(f"[{self.name}] {line.rstrip()}", file=sys.stderr)
                continue
            with self._lock:
                q = self._replies.setdefault(msg.get("id", 0), queue.Queue())
            q.put(msg)
        with self._lock:
            for q in self._replies.values():
                q.put({"error": f"worker {self.name} exited"})

    def send(self, op: str, **kw: Any) -> int:
        rid = next(self._ids)
        with self._lock:
            self._replies.setdefault(rid, queue.Queue())
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": rid, "op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        return rid

    def wait(self, rid: int, timeout: float = 300.0) -> dict[str, Any]:
        with self._lock:
            q = self._replies.setdefault(rid, queue.Queue())
        try:
            msg = q.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"worker {self.name}: no reply in {timeout} s") from None
        if "error" in msg:
            raise RuntimeError(f"worker {self.name}: {msg['error']}")
        return msg

    def call(self, op: str, timeout: float = 300.0, **kw: Any) -> dict[str, Any]:
        return self.wait(self.send(op, **kw), timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("quit", timeout=20)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def bench_worker_argv(impl: str) -> list[str]:
    """The go or rust interop peer's ``bench-worker`` (JSON lines, pubsub and kad ops)."""
    peer = {"go-libp2p": "go-peer", "rust-libp2p": "rust-peer"}[impl]
    return [str(INTEROP / peer / "run"), "bench-worker"]


def rapidp2p_python(impl: str) -> str | None:
    """The interpreter whose rapidp2p runs ``impl``'s workers: this one for ``rapidp2p``,
    PYTHON for ``rapidp2p@PYTHON`` (another build, for before/after figures in one run);
    None for the other implementations."""
    if impl == "rapidp2p":
        return sys.executable
    if impl.startswith("rapidp2p@"):
        return impl.removeprefix("rapidp2p@")
    return None


def worker_argv(impl: str) -> list[str]:
    python = rapidp2p_python(impl)
    if python is not None:
        return [python, str(HERE / "pubsub_mesh_worker.py")]
    if impl in ("go-libp2p", "rust-libp2p"):
        return bench_worker_argv(impl)
    return [str(PY_LIBP2P_PYTHON), str(HERE / "pubsub_mesh_py_libp2p.py")]


def layout(n: int, setup: str, procs: int) -> list[list[int]]:
    """Node indices per worker process; node 0 (the publisher) is first in the first one."""
    if setup == "single":
        return [list(range(n))]
    rest = list(range(1, n))
    return [[0]] + [rest[i::procs] for i in range(procs)]


def dial_plan(n: int) -> list[tuple[int, int]]:
    """(dialer, target): a ring plus 4 random chords per node, one connection per pair."""
    rng = random.Random(1)
    seen: set[frozenset[int]] = set()
    plan = []
    for i in range(n):
        for j in [(i + 1) % n, *rng.sample([k for k in range(n) if k != i], 4)]:
            pair = frozenset((i, j))
            if pair not in seen:
                seen.add(pair)
                plan.append((i, j))
    return plan


class Mesh:
    """A running mesh of ``n`` nodes in worker processes."""

    def __init__(self, impl: str, n: int, setup: str, procs: int, cfg: dict[str, Any]) -> None:
        self.impl = impl
        self.groups = layout(n, setup, procs)
        self.workers = [Worker(worker_argv(impl), f"{impl}:{k}") for k in range(len(self.groups))]
        self.where: dict[int, Worker] = {}
        addrs: dict[int, str] = {}
        rids = [
            w.send("start", nodes=g, **cfg) for w, g in zip(self.workers, self.groups, strict=True)
        ]
        for w, g, rid in zip(self.workers, self.groups, rids, strict=True):
            rep = w.wait(rid, 120)
            for i in g:
                self.where[i] = w
                addrs[i] = rep["addrs"][str(i)]
        plan = dial_plan(n)
        rids = []
        for w, g in zip(self.workers, self.groups, strict=True):
            dials = [[i, addrs[j]] for i, j in plan if i in g]
            rids.append(w.send("dial", dials=dials))
        for w, rid in zip(self.workers, rids, strict=True):
            w.wait(rid, 120)
        for w in self.workers:
            w.call("subscribe", timeout=60)
        time.sleep(max(2.0, 4 * cfg["heartbeat"]))  # meshes form over a few heartbeats
        deadline = time.monotonic() + 60
        self.mesh_sizes: list[int] = []
        while True:
            self.mesh_sizes = []
            for w in self.workers:
                self.mesh_sizes += w.call("mesh")["sizes"]
            if min(self.mesh_sizes) >= 1 or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        self.run = 0

    def close(self) -> None:
        for w in self.workers:
            w.close()

    def bytes_sent(self) -> int | None:
        """Pubsub bytes every node sent so far (None: a worker does not count them)."""
        counts = [w.call("bytes")["bytes"] for w in self.workers]
        return None if any(c is None for c in counts) else sum(counts)

    def measure(self, size: int, count: int, interval: float) -> dict[str, Any]:
        """Publishes ``count`` messages from node 0 (paced if ``interval``) and collects them."""
        self.run += 1
        pub = self.where[0]
        for w in self.workers:
            w.call("expect", run=self.run, count=count)
        rid_pub = pub.send("publish", run=self.run, size=size, count=count, interval=interval)
        # Whatever has not arrived 10 s after the last publish counts as lost (a backlog).
        limit = count * interval + (10.0 if interval else 60.0)
        rids = [
            (w, w.send("collect", run=self.run, count=count, idle=3.0, limit=limit))
            for w in self.workers
        ]
        pubrep = pub.wait(rid_pub, 600)
        lat: list[float] = []
        got = 0
        subs = 0
        last = 0
        for w, rid in rids:
            rep = w.wait(rid, 900)
            lat += rep["lat_ns"]
            got += rep["got"]
            subs += rep["subscribers"]
            last = max(last, rep["last_ns"])
        t0 = pubrep["t0_ns"]
        elapsed = max(last, pubrep["t1_ns"]) - t0
        lat.sort()
        out: dict[str, Any] = {
            "size": size,
            "messages": count,
            "delivered": round(got / (count * subs), 4) if subs else 0.0,
            "publish_loop_s": round((pubrep["t1_ns"] - t0) / 1e9, 3),
            # Goodput: messages every subscriber got, per second until the last arrival.
            "msgs_per_s": round(count * got / (count * subs) / (elapsed / 1e9), 1)
            if elapsed > 0 and subs
            else 0.0,
        }
        if lat:
            out["p50_ms"] = round(lat[len(lat) // 2] / 1e6, 2)
            out["p99_ms"] = round(lat[int(0.99 * (len(lat) - 1))] / 1e6, 2)
        return out


#: Paced rates tried upwards (msgs/s), doubling from the first; then, if every one held,
#: "max": as fast as the publisher's own send queues allow. Upwards, because an overloaded
#: py-libp2p mesh stays damaged (dropped IWANT/IHAVE state, penalties) for what follows.
LADDER = {1024: 1.0, 65536: 0.5}
LADDER_TOP = {1024: 512.0, 65536: 64.0}


def _held(r: dict[str, Any], rate: float) -> bool:
    """(Nearly) every message everywhere, and not through a growing backlog."""
    return bool(r["delivered"] >= 0.99 and (not rate or r["msgs_per_s"] >= 0.8 * rate))


def sustained(mesh: Mesh, size: int, quick: bool) -> dict[str, Any]:
    """The best publishing rate at which (nearly) every message reaches every subscriber."""
    tries: list[tuple[Any, float, float, bool]] = []
    best: dict[str, Any] = {"msgs_per_s": 0.0, "delivered": 0.0}
    rate = LADDER[size]
    while True:
        count = int(min(max(10, rate * (2 if quick else 3)), 500)) if rate else 500
        if not rate and size != 1024:
            count = 100
        r = mesh.measure(size, count, 1.0 / rate if rate else 0.0)
        held = _held(r, rate)
        tries.append((rate or "max", r["delivered"], r["msgs_per_s"], held))
        if not held:
            break
        if r["msgs_per_s"] >= best["msgs_per_s"]:
            best = r
        if not rate:
            break
        rate = 0.0 if rate * 2 > LADDER_TOP[size] else rate * 2
    best["tries"] = tries
    return best


def bench_impl(impl: str, setup: str, a: argparse.Namespace) -> dict[str, Any]:
    q = a.quick
    res: dict[str, Any] = {}
    cfg = {"heartbeat": a.heartbeat, "idontwant": True}
    # One mesh for latency (first, unloaded) and the 1 KiB ladder, a fresh one for 64 KiB.
    mesh = Mesh(impl, a.nodes, setup, a.procs, cfg)
    try:
        res["mesh_sizes"] = mesh.mesh_sizes
        rate = a.latency_rate
        res["latency_1KiB"] = mesh.measure(1024, max(10, int(rate * (20 if q else 40))), 1 / rate)
        res["latency_1KiB"]["rate"] = rate
        res["throughput_1KiB"] = sustained(mesh, 1024, q)
    finally:
        mesh.close()
    mesh = Mesh(impl, a.nodes, setup, a.procs, cfg)
    try:
        res["throughput_64KiB"] = sustained(mesh, 65536, q)
        # Overhead on the same mesh, IDONTWANT on then off, at half the sustained rate.
        rate = max(0.25, min(20.0, res["throughput_64KiB"]["msgs_per_s"] / 2))
        count = 10 if q else 20
        for on in (True, False):
            key = f"overhead_64KiB_idontwant_{'on' if on else 'off'}"
            replies = [w.call("idontwant", on=on) for w in mesh.workers]
            if not on and any(r.get("unsupported") for r in replies):
                res[key] = {"unsupported": "IDONTWANT is fixed when the router starts"}
                continue
            time.sleep(2.0)
            before = mesh.bytes_sent()
            r = mesh.measure(65536, count, 1.0 / rate)
            time.sleep(2 * a.heartbeat)
            after = mesh.bytes_sent()
            if before is None or after is None:
                res[key] = {"unsupported": "the worker does not count its pubsub bytes"}
                continue
            sent = after - before
            res[key] = {
                "bytes_sent_per_byte_published": round(sent / (count * 65536), 2),
                "delivered": r["delivered"],
                "rate": round(rate, 2),
            }
    finally:
        mesh.close()
    return res


def _tries(t: Any) -> str:
    if not isinstance(t, list):
        return "-"
    # target rate: delivered fraction, goodput, and whether it held
    return ", ".join(f"{rate}:{int(100 * d)}%@{g}{'' if ok else ' FAIL'}" for rate, d, g, ok in t)


def ratio(a: Any, b: Any) -> str:
    try:
        return f"{a / b:.1f}x" if b else "-"
    except TypeError:
        return "-"


IMPLS = ("rapidp2p", "go-libp2p", "rust-libp2p", "py-libp2p")


def table(results: dict[str, dict[str, Any]], setup: str) -> list[str]:
    """One column per implementation measured; the ratio is rapidp2p against the best of
    go/rust (how many times better rapidp2p is; latency and bytes: lower is better)."""
    impls = [i for i in IMPLS if f"{i}/{setup}" in results]
    rows = [
        ("1 KiB msg/s", "throughput_1KiB", "msgs_per_s", True),
        ("1 KiB delivered", "throughput_1KiB", "delivered", None),
        ("1 KiB rates tried", "throughput_1KiB", "tries", None),
        ("64 KiB msg/s", "throughput_64KiB", "msgs_per_s", True),
        ("64 KiB delivered", "throughput_64KiB", "delivered", None),
        ("64 KiB rates tried", "throughput_64KiB", "tries", None),
        ("latency msgs/s (paced)", "latency_1KiB", "rate", None),
        ("latency p50 ms", "latency_1KiB", "p50_ms", False),
        ("latency p99 ms", "latency_1KiB", "p99_ms", False),
        ("latency delivered", "latency_1KiB", "delivered", None),
        (
            "bytes/byte IDONTWANT on",
            "overhead_64KiB_idontwant_on",
            "bytes_sent_per_byte_published",
            False,
        ),
        (
            "bytes/byte IDONTWANT off",
            "overhead_64KiB_idontwant_off",
            "bytes_sent_per_byte_published",
            False,
        ),
    ]
    head = f"{'figure':28} " + " ".join(f"{i:>12}" for i in impls) + f" {'vs go/rust':>10}"
    out = [f"== setup {setup} ==", head]
    for label, sect, key, higher in rows:
        vals = {i: results[f"{i}/{setup}"].get(sect, {}).get(key, "-") for i in impls}
        if key == "tries":
            out.append(f"{label:28} " + "; ".join(f"{i} {_tries(v)}" for i, v in vals.items()))
            continue
        r = ""
        ours = vals.get("rapidp2p")
        others = [v for i, v in vals.items() if i in ("go-libp2p", "rust-libp2p")]
        others = [v for v in others if isinstance(v, (int, float)) and v > 0]
        if higher is not None and others:
            best = max(others) if higher else min(others)
            r = ratio(ours, best) if higher else ratio(best, ours)
        out.append(f"{label:28} " + " ".join(f"{v!s:>12}" for v in vals.values()) + f" {r:>10}")
    for i in impls:
        name = f"{i}/{setup}"
        err = results.get(name, {}).get("error")
        if err:
            out.append(f"{name}: {err}")
        for note in results.get(name, {}).get("notes", []):
            out.append(f"{name}: {note}")
    out.append("(ratio: how many times better rapidp2p is than the better of go/rust; latency and"
               " bytes: lower is better)")  # fmt: skip
    return out


PY_LIBP2P_NOTES = [
    "py-libp2p: spam protection (10 msgs/topic/s per peer), adaptive gossip (stretches "
    "heartbeats to 30-60 s) and eclipse protection (3 distinct IPs per mesh: impossible on "
    "127.0.0.1) are off, and max_idontwant_messages is 5000; otherwise it throttles, "
    "penalises or never forms the mesh",
    "py-libp2p: publish() does not wait for the network; its per-peer queues and 32-slot "
    "subscription channels drop when full, hence the paced-rate ladder",
    "py-libp2p has no flood publish: its publisher sends to its mesh (or fanout) only",
    "py-libp2p sends IDONTWANT for every message (no size threshold); 'off' stubs its "
    "IDONTWANT emission on every node",
    "bytes: pubsub frames written (length prefix + RPC), both implementations",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--procs", type=int, default=2, help="processes for the non-publishers")
    ap.add_argument("--setups", default="multi,single")
    ap.add_argument("--impls", default="rapidp2p,go-libp2p,rust-libp2p,py-libp2p")
    ap.add_argument("--heartbeat", type=float, default=0.5)
    ap.add_argument(
        "--latency-rate",
        type=float,
        default=0.5,
        help="msgs/s for the latency run (first, on a fresh mesh; below both capacities)",
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    load0 = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    setups = [s for s in a.setups.split(",") if s]
    for setup in setups:
        for impl in [i for i in a.impls.split(",") if i]:
            name = f"{impl}/{setup}"
            if impl == "py-libp2p" and not PY_LIBP2P_PYTHON.exists():
                results[name] = {"error": "no py-libp2p venv (run tests/interop/py-peer/build)"}
                continue
            print(f"running {name} ...", file=sys.stderr, flush=True)
            t = time.time()
            try:
                results[name] = bench_impl(impl, setup, a)
            except Exception as exc:
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            if impl == "py-libp2p":
                results[name].setdefault("notes", []).extend(PY_LIBP2P_NOTES)
            results[name]["wall_s"] = round(time.time() - t, 1)
    results["machine"] = {
        "cpus": os.cpu_count(),
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
    }
    if a.json:
        print(json.dumps(results))
        return
    for name, r in results.items():
        print(f"{name}: {json.dumps(r)}")
    for setup in setups:
        print("\n".join(table(results, setup)))


if __name__ == "__main__":
    main()
