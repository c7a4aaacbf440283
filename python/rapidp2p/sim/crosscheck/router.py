"""The delaying router of the cross-check: one TUN device per network namespace, one process.

Why a TUN router: this machine's kernel has no ``netem`` qdisc (``tbf`` and ``htb`` shape
rates but cannot delay), so the model's one-way delays must be applied in user space. A TUN
device hands the router whole IP packets, so the nodes run their unchanged TCP stacks (SYN
handshakes, slow start, delayed ACKs, retransmissions) end to end through it, which a
delaying TCP relay would not: a relay terminates each connection and splits one TCP flow
into two, so handshakes and ACK clocking would not cross the modelled path.

How: the router enters each namespace (``setns``) just long enough to create its ``tun0``
there, keeps the file descriptor and returns to its own namespace. Every namespace routes
the cross-check subnet into its ``tun0`` (the harness configures the addresses), so every
packet a node sends arrives here; the router reads it, looks at the destination address,
and writes it into the destination namespace's ``tun0`` when the model says it arrives:

    arrive = max(now, up_busy[src]) + size / up[src] + base[src][dst] * (1 + U(0, jitter))
    deliver = max(arrive, down_busy[dst]) + size / down[dst]   (then FIFO per (src, dst))

which is the simulator's :meth:`rapidp2p.sim.network.SimNetwork.arrival_time` applied per
packet instead of per write. Packets of one (src, dst) pair never overtake each other, as on
the simulator's links (per-packet jitter would otherwise reorder TCP segments).

The router measures its own lateness (when a packet was written minus when the model said it
should be); the harness reports it with a zero-delay TCP echo between two probe namespaces.

Run as ``python -m rapidp2p.sim.crosscheck.router SPEC.json`` (root): it prints ``ready``
once every TUN device exists, answers ``stats`` on stdin with one JSON line, and exits when
stdin closes (so it never outlives the harness).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import ctypes
import fcntl
import json
import math
import os
import random
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["RouterSpec", "open_tun_in_netns", "percentiles"]

_CLONE_NEWNET = 0x40000000
_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000


@dataclass
class RouterSpec:
    """What the router needs: each namespace with its address and access link, the one-way
    base delays between them (seconds), and the jitter fraction."""

    #: Namespace names, in node order.
    namespaces: list[str]
    #: IPv4 address of each node (dotted quad).
    addrs: list[str]
    #: Uplink / downlink of each node in bit/s (0: unlimited).
    up_bps: list[float]
    down_bps: list[float]
    #: base[i][j]: one-way propagation delay from node i to node j, seconds.
    base: list[list[float]]
    jitter: float = 0.1
    seed: int = 1

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> RouterSpec:
        return cls(**json.loads(text))


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def open_tun_in_netns(netns: str, name: str = "tun0") -> int:
    """Creates TUN device ``name`` inside namespace ``netns`` (``/run/netns/<netns>``) and
    returns its non-blocking file descriptor; the calling thread's namespace is restored.
    The device lives as long as the descriptor (no persistence: nothing to clean up)."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR)
            ifr = struct.pack("16sH22x", name.encode(), _IFF_TUN | _IFF_NO_PI)
            fcntl.ioctl(fd, _TUNSETIFF, ifr)
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)
    os.set_blocking(fd, False)
    return fd


def percentiles(values: array.array[float] | list[float]) -> dict[str, float | int]:
    """Count, p50, p90, p99 and max of ``values`` (nearest rank)."""
    s = sorted(values)
    if not s:
        return {"count": 0}

    def q(p: float) -> float:
        return s[min(len(s) - 1, max(0, math.ceil(len(s) * p / 100) - 1))]

    return {"count": len(s), "p50": q(50), "p90": q(90), "p99": q(99), "max": s[-1]}


class Router:
    """The packet loop (see the module docstring)."""

    def __init__(self, spec: RouterSpec) -> None:
        self.spec = spec
        self.rng = random.Random(f"crosscheck-router-{spec.seed}")
        self.by_addr: dict[bytes, int] = {
            bytes(int(x) for x in a.split(".")): i for i, a in enumerate(spec.addrs)
        }
        n = len(spec.namespaces)
        self.fds: list[int] = []
        self.up_busy = [0.0] * n
        self.down_busy = [0.0] * n
        self.last: dict[tuple[int, int], float] = {}
        self.lateness: array.array[float] = array.array("d")
        self.packets = 0
        self.bytes = 0
        self.dropped = 0
        self.loop = asyncio.get_running_loop()
        self.policy = "default"
        self._cpu0 = time.process_time()
        self._wall0 = time.monotonic()

    def open(self) -> None:
        for ns in self.spec.namespaces:
            self.fds.append(open_tun_in_netns(ns))
        for i, fd in enumerate(self.fds):
            self.loop.add_reader(fd, self._readable, i)

    def close(self) -> None:
        for fd in self.fds:
            self.loop.remove_reader(fd)
            os.close(fd)
        self.fds.clear()

    def _readable(self, src: int) -> None:
        fd = self.fds[src]
        for _ in range(256):  # bounded: other namespaces get their turn
            try:
                pkt = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                return
            self._route(src, pkt)

    def _route(self, src: int, pkt: bytes) -> None:
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            self.dropped += 1  # IPv6 router solicitations and the like: not modelled
            return
        dst = self.by_addr.get(pkt[16:20])
        if dst is None:
            self.dropped += 1
            return
        spec = self.spec
        now = self.loop.time()
        size = len(pkt)
        up, down = spec.up_bps[src], spec.down_bps[dst]
        start = max(now, self.up_busy[src])
        self.up_busy[src] = start + (size * 8 / up if up > 0 else 0.0)
        base = spec.base[src][dst]
        delay = base + (self.rng.uniform(0.0, spec.jitter * base) if base > 0 else 0.0)
        arrive = self.up_busy[src] + delay
        rx = max(arrive, self.down_busy[dst])
        self.down_busy[dst] = rx + (size * 8 / down if down > 0 else 0.0)
        when = max(self.down_busy[dst], self.last.get((src, dst), 0.0))
        self.last[(src, dst)] = when
        if when <= now:
            self._deliver(dst, pkt, when)
        else:
            self.loop.call_at(when, self._deliver, dst, pkt, when)

    def _deliver(self, dst: int, pkt: bytes, when: float) -> None:
        if not self.fds:
            return  # closed: packets still in flight are dropped
        self.lateness.append(max(0.0, self.loop.time() - when))
        try:
            os.write(self.fds[dst], pkt)
        except OSError:
            self.dropped += 1
            return
        self.packets += 1
        self.bytes += len(pkt)

    def stats(self) -> dict[str, Any]:
        lat = percentiles(self.lateness)
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "dropped": self.dropped,
            "lateness_s": lat,
            "cpu_s": time.process_time() - self._cpu0,
            "wall_s": time.monotonic() - self._wall0,
            "scheduling": self.policy,
        }

    def reset_stats(self) -> None:
        self.lateness = array.array("d")
        self.packets = self.bytes = self.dropped = 0
        self._cpu0 = time.process_time()
        self._wall0 = time.monotonic()


async def _main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = RouterSpec.from_json(f.read())
    # The router's lateness is part of every delay, so it runs before the nodes: real-time
    # FIFO priority (it sleeps between packets, and the kernel's RT throttling keeps 5% of
    # each CPU for everything else), or a high nice priority where RT is not allowed.
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        policy = "SCHED_FIFO 10"
    except OSError:
        policy = "nice -10"
        with contextlib.suppress(OSError):
            os.nice(-10)
    router = Router(spec)
    router.policy = policy
    router.open()
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    try:
        while not done.done():
            line = await reader.readline()
            if not line:
                break
            cmd = line.decode().strip()
            if cmd == "stats":
                print(json.dumps(router.stats()), flush=True)
            elif cmd == "reset":
                router.reset_stats()
                print("{}", flush=True)
    finally:
        router.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
