"""One real node of the cross-check: a production :class:`~rapidp2p.host.Host` over TCP on
the ordinary asyncio loop, inside its own network namespace, driven by the harness.

The harness starts ``ip netns exec NS python -m rapidp2p.sim.crosscheck.node`` and talks to
it over stdin/stdout, one JSON object a line (stdout carries nothing else; logs go to
stderr). The first line configures the node (its key seed, address and scenario); each
later line is a request ``{"id": n, "cmd": ..., ...}`` run in a task of its own, answered by
``{"id": n, ...}``. The node exits when stdin closes, so it never outlives the harness.

Times are ``loop.time()`` (``CLOCK_MONOTONIC``, shared by every process on the machine, so
a publish time at one node and a delivery time at another can be subtracted).

The node is configured as the simulator configures its nodes (:func:`host_config`, the same
``KadConfig``/``GossipSubParams``, the same per-node router seed and sequence numbers), so
that the only difference between the two is the network and the clock.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
from typing import Any

from rapidp2p.crypto.ed25519 import Ed25519PrivateKey
from rapidp2p.exceptions import Libp2pError
from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.transport.tcp import TcpTransport

__all__ = ["Node"]

_IDX = 8
_ERRORS = (Libp2pError, OSError, asyncio.TimeoutError, ValueError)


class Node:
    """The state of one node process and its request handlers."""

    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf
        self.loop = asyncio.get_running_loop()
        self.host: Host | None = None
        self.dht: Any = None
        self.ps: Any = None
        #: Message index -> first delivery time (gossip).
        self.received: dict[int, float] = {}
        self._consumer: asyncio.Future[None] | None = None

    async def start(self) -> dict[str, Any]:
        from rapidp2p.sim.kad import host_config

        c = self.conf
        key = Ed25519PrivateKey.from_seed(bytes.fromhex(c["key_seed"]))
        host = Host(key, host_config(c.get("security", "noise")), transports=[TcpTransport()])
        self.host = host
        await host.start()
        await host.listen(f"/ip4/{c['addr']}/tcp/{c.get('port', 4001)}")
        if c["scenario"] == "kad":
            from rapidp2p.kad import KadConfig, KadDHT

            self.dht = KadDHT(
                host,
                KadConfig(mode="server", k=c["k"], alpha=c["alpha"], refresh_interval=1e9),
            )
            await self.dht.start()
        else:
            from rapidp2p.pubsub import GossipSub, GossipSubParams

            # The simulator starts every router at the same instant, so their heartbeats
            # tick in phase; the replay does the same (the shared monotonic clock), since
            # the mesh that forms depends on it (see docs/sim/crosscheck-n100-seed1.md).
            start_at = c.get("start_at")
            if start_at is not None:
                await asyncio.sleep(max(0.0, start_at - self.loop.time()))

            g = c["gossip"]
            params = GossipSubParams(
                d=g["d"],
                d_lo=g["d_lo"],
                d_hi=g["d_hi"],
                heartbeat_interval=g["heartbeat_interval"],
            )
            if not g["idontwant"]:
                params.idontwant_threshold = 1 << 62
            ps = GossipSub(host, params=params)
            ps.router.rng = random.Random(f"gossip-router-{c['seed']}-{c['index']}")
            ps._seqno = itertools.count(c["index"] << 32)
            await host.add_service(ps)
            sub = await ps.subscribe(g["topic"])
            self.ps = ps
            self._consumer = asyncio.ensure_future(self._consume(sub))
        return {"peer_id": str(host.peer_id), "addr": str(host.full_addrs[0])}

    async def _consume(self, sub: Any) -> None:
        async for msg in sub:
            idx = int.from_bytes((msg.data or b"")[:_IDX], "big")
            if idx not in self.received:
                self.received[idx] = self.loop.time()

    # ---- Kademlia ------------------------------------------------------------------------

    async def cmd_join(self, req: dict[str, Any]) -> dict[str, Any]:
        """``KadSim.join``: connect to the first reachable seed, wait until it is in the
        routing table, look up our own ID, then the given random keys."""
        assert self.host is not None
        for addr in req["seeds"]:
            ma = Multiaddr(addr)
            pid = PeerId.from_string(addr.rsplit("/p2p/", 1)[1])
            if pid == self.host.peer_id:
                continue
            try:
                await self.host.connect(ma)
            except _ERRORS:
                continue
            for _ in range(1000):
                if pid in self.dht.routing:
                    break
                await asyncio.sleep(0.01)
            break
        try:
            await self.dht.get_closest_peers(self.host.peer_id)
            for k in req["refresh"]:
                await self.dht.get_closest_peers(bytes.fromhex(k))
        except _ERRORS as exc:
            return {"ok": False, "error": repr(exc)}
        return {"ok": len(self.dht.routing) > 0, "routing": len(self.dht.routing)}

    async def _timed(self, coro: Any) -> dict[str, Any]:
        """Runs one measured operation as ``KadSim._timed`` does."""
        hops_list = self.dht.lookup_hops
        before = len(hops_list)
        last = hops_list[-1:] if before else []
        t0 = self.loop.time()
        error = None
        try:
            value = await coro
        except _ERRORS as exc:
            value, error = None, repr(exc)
        latency = self.loop.time() - t0
        grew = len(hops_list) > before or (len(hops_list) == 1024 and hops_list[-1:] != last)
        return {
            "value": value,
            "latency": latency,
            "hops": hops_list[-1] if grew else None,
            "error": error,
        }

    async def cmd_closest(self, req: dict[str, Any]) -> dict[str, Any]:
        async def op() -> list[str]:
            return [str(p) for p in await self.dht.get_closest_peers(bytes.fromhex(req["key"]))]

        return await self._timed(op())

    async def cmd_find_peer(self, req: dict[str, Any]) -> dict[str, Any]:
        async def op() -> bool:
            info = await self.dht.find_peer(PeerId.from_string(req["peer"]))
            return bool(info.addrs)

        return await self._timed(op())

    async def cmd_provide(self, req: dict[str, Any]) -> dict[str, Any]:
        async def op() -> bool:
            return bool(await self.dht.provide(bytes.fromhex(req["key"])) > 0)

        return await self._timed(op())

    async def cmd_find_providers(self, req: dict[str, Any]) -> dict[str, Any]:
        want = PeerId.from_string(req["provider"])

        async def op() -> bool:
            async for info in self.dht.find_providers(bytes.fromhex(req["key"]), count=1):
                if info.peer_id == want:
                    return True
            return False

        return await self._timed(op())

    async def cmd_routing(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"size": len(self.dht.routing)}

    # ---- GossipSub -----------------------------------------------------------------------

    async def cmd_dial(self, req: dict[str, Any]) -> dict[str, Any]:
        """``GossipSim.dial_some`` with the simulator's targets, one after another."""
        assert self.host is not None
        ok = 0
        for addr in req["addrs"]:
            try:
                await self.host.connect(Multiaddr(addr))
                ok += 1
            except _ERRORS:
                continue
        return {"ok": ok}

    async def cmd_publish(self, req: dict[str, Any]) -> dict[str, Any]:
        data = int(req["idx"]).to_bytes(_IDX, "big") + bytes(int(req["size"]) - _IDX)
        at = self.loop.time()
        try:
            await self.ps.publish(self.conf["gossip"]["topic"], data)
        except _ERRORS as exc:
            return {"at": at, "error": repr(exc)}
        return {"at": at}

    async def cmd_report(self, req: dict[str, Any]) -> dict[str, Any]:
        topic = self.conf["gossip"]["topic"]
        c = self.ps.router.topic_counts.get(topic)
        return {
            "received": {str(k): v for k, v in self.received.items()},
            "unfiltered": c.unfiltered if c else 0,
            "duplicate": c.duplicate if c else 0,
            "accepted": c.accepted if c else 0,
            "mesh": len(self.ps.mesh_peers(topic)),
            "bytes_sent": self.ps.bytes_sent,
        }

    async def cmd_now(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"now": self.loop.time()}


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout

    def reply(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    first = await reader.readline()
    node = Node(json.loads(first))
    reply({"id": 0, **(await node.start())})
    tasks: set[asyncio.Task[None]] = set()

    async def handle(req: dict[str, Any]) -> None:
        try:
            res = await getattr(node, "cmd_" + req["cmd"])(req)
        except Exception as exc:  # reported to the harness, which fails the run
            res = {"fatal": repr(exc)}
        reply({"id": req["id"], **res})

    while line := await reader.readline():
        t = asyncio.ensure_future(handle(json.loads(line)))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if node.host is not None:
        await node.host.close(linger=0)


if __name__ == "__main__":
    asyncio.run(_serve())
