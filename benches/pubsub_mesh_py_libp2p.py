"""py-libp2p worker for ``pubsub_mesh.py`` (trio): the same commands as pubsub_mesh_worker.py.

Run with the interop venv's python (``~/.cache/rapidp2p-interop/py-peer-venv``, built by
``tests/interop/py-peer/build``; PyPI libp2p). Hosts as in tests/interop/py-peer (Noise, yamux,
TCP, Ed25519, one connection per peer). GossipSub with D=6/4/12 and the orchestrator's
heartbeat; its spam protection (10 msgs/topic/s), adaptive gossip (heartbeats stretched to
30-60 s) and eclipse protection (3 distinct IPs per mesh, impossible on loopback) are off,
since each would stop or throttle a one-publisher benchmark on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

TOPIC = "bench"


def _uvarint_len(n: int) -> int:
    k = 1
    while n >= 0x80:
        n >>= 7
        k += 1
    return k


class CountingPubsub(Pubsub):
    """Counts pubsub bytes written (length prefix + RPC), like rapidp2p's bytes_sent."""

    bytes_sent = 0

    async def write_msg(self, stream: Any, rpc_msg: Any) -> bool:
        n = rpc_msg.ByteSize()
        self.bytes_sent += n + _uvarint_len(n)
        return await super().write_msg(stream, rpc_msg)


def make_host() -> Any:
    key_pair = create_new_key_pair()
    noise = NoiseTransport(key_pair, noise_privkey=create_new_x25519_key_pair().private_key)
    return new_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        connection_config=ConnectionConfig(max_connections_per_peer=1),
    )


class Worker:
    def __init__(self, nursery: trio.Nursery, stack: contextlib.AsyncExitStack) -> None:
        self.nursery = nursery
        self.stack = stack
        self.nodes: dict[int, tuple[Any, CountingPubsub, GossipSub]] = {}
        self.counts: dict[int, dict[int, int]] = {}
        self.lat: dict[int, list[int]] = {}
        self.last: dict[int, int] = {}
        self.progress = trio.Event()

    async def start(self, nodes: list[int], heartbeat: float, idontwant: bool) -> dict[str, Any]:
        protocols = (
            [PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID]
            if idontwant
            else [
                PROTOCOL_ID_V11,
                PROTOCOL_ID,
            ]
        )
        addrs = {}
        for i in nodes:
            host = make_host()
            gs = GossipSub(
                protocols=protocols,
                degree=6,
                degree_low=4,
                degree_high=12,
                time_to_live=60,
                gossip_window=3,
                gossip_history=5,
                heartbeat_initial_delay=heartbeat,
                heartbeat_interval=heartbeat,  # type: ignore[arg-type]
                max_idontwant_messages=5000,
                adaptive_gossip_enabled=False,
                spam_protection_enabled=False,
                eclipse_protection_enabled=False,
            )
            ps = CountingPubsub(host, gs, strict_signing=True)
            await self.stack.enter_async_context(
                host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")])
            )
            await self.stack.enter_async_context(background_trio_service(ps))
            await self.stack.enter_async_context(background_trio_service(gs))
            await ps.wait_until_ready()
            addr = str(host.get_addrs()[0])
            if "/p2p/" not in addr:
                addr = f"{addr}/p2p/{host.get_id().to_string()}"
            self.nodes[i] = (host, ps, gs)
            addrs[str(i)] = addr
        return {"addrs": addrs}

    async def dial(self, dials: list[list[Any]]) -> dict[str, Any]:
        failed = 0

        async def one(i: int, addr: str) -> None:
            nonlocal failed
            try:
                with trio.fail_after(60):
                    await self.nodes[i][0].connect(info_from_p2p_addr(multiaddr.Multiaddr(addr)))
            except Exception as exc:
                print(f"dial {i} -> {addr}: {exc!r}", file=sys.stderr)
                failed += 1

        async with trio.open_nursery() as n:
            for i, addr in dials:
                n.start_soon(one, i, addr)
        return {"failed": failed}

    async def subscribe(self) -> dict[str, Any]:
        for i, (_, ps, _) in self.nodes.items():
            sub = await ps.subscribe(TOPIC)
            self.nursery.start_soon(self._consume, i, sub)
        return {}

    async def _consume(self, node: int, sub: Any) -> None:
        async for msg in sub:
            if node == 0:
                continue  # the publisher's own copies: drained so its channel never fills
            data = msg.data
            now = time.monotonic_ns()
            run = int.from_bytes(data[0:4], "big")
            c = self.counts.setdefault(run, {})
            c[node] = c.get(node, 0) + 1
            self.lat.setdefault(run, []).append(now - int.from_bytes(data[8:16], "big"))
            self.last[run] = now
            self.progress.set()

    async def mesh(self) -> dict[str, Any]:
        return {"sizes": [len(gs.mesh.get(TOPIC, ())) for _, _, gs in self.nodes.values()]}

    async def idontwant(self, on: bool) -> dict[str, Any]:
        """Off: this node stops emitting IDONTWANT (received ones are still honoured)."""
        for _, _, gs in self.nodes.values():
            if on:
                gs.__dict__.pop("_emit_idontwant_for_message", None)
            else:
                gs._emit_idontwant_for_message = _no_idontwant  # type: ignore[method-assign]
        return {}

    async def expect(self, run: int, count: int) -> dict[str, Any]:
        self.counts.setdefault(run, {})
        return {}

    async def publish(self, run: int, size: int, count: int, interval: float) -> dict[str, Any]:
        ps = self.nodes[0][1]
        pad = os.urandom(max(0, size - 16))
        t0 = time.monotonic_ns()
        for seq in range(count):
            if interval:
                delay = (t0 + int(seq * interval * 1e9) - time.monotonic_ns()) / 1e9
                if delay > 0:
                    await trio.sleep(delay)
            head = run.to_bytes(4, "big") + seq.to_bytes(4, "big")
            # publish() awaits the stream writes: py-libp2p's own backpressure.
            await ps.publish(TOPIC, head + time.monotonic_ns().to_bytes(8, "big") + pad)
        return {"t0_ns": t0, "t1_ns": time.monotonic_ns()}

    async def collect(self, run: int, count: int, idle: float, limit: float) -> dict[str, Any]:
        """Waits for ``count`` messages per subscriber; gives up after ``idle`` s without
        progress or ``limit`` s in all."""
        end = time.monotonic() + limit
        subs = [i for i in self.nodes if i != 0]
        while True:
            c = self.counts.get(run, {})
            if all(c.get(i, 0) >= count for i in subs):
                break
            self.progress = trio.Event()
            wait = min(idle, end - time.monotonic())
            if wait <= 0:
                break
            with trio.move_on_after(wait) as scope:
                await self.progress.wait()
            if scope.cancelled_caught:
                break
        c = self.counts.get(run, {})
        return {
            "got": sum(min(c.get(i, 0), count) for i in subs),
            "subscribers": len(subs),
            "lat_ns": self.lat.pop(run, []),
            "last_ns": self.last.get(run, 0),
        }

    async def bytes(self) -> dict[str, Any]:
        return {"bytes": sum(ps.bytes_sent for _, ps, _ in self.nodes.values())}

    async def quit(self) -> dict[str, Any]:
        return {}


async def _no_idontwant(msg_id: bytes, topic_ids: Any) -> None:
    return None


def reply(rid: int, rep: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({"id": rid, **rep}) + "\n")
    sys.stdout.flush()


async def serve() -> None:
    async with trio.open_nursery() as nursery, contextlib.AsyncExitStack() as stack:
        w = Worker(nursery, stack)

        async def handle(cmd: dict[str, Any]) -> None:
            rid = cmd.pop("id")
            op = cmd.pop("op")
            try:
                rep = await getattr(w, op)(**cmd)
            except Exception as exc:
                rep = {"error": f"{op}: {type(exc).__name__}: {exc}"}
            reply(rid, rep)

        while True:
            line = await trio.to_thread.run_sync(sys.stdin.readline)
            if not line:
                break
            cmd = json.loads(line)
            if cmd["op"] == "quit":
                reply(cmd["id"], {})
                break
            if cmd["op"] == "start":
                await handle(cmd)  # host/service contexts must be entered by this task
            else:
                nursery.start_soon(handle, cmd)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    import logging

    logging.disable(logging.CRITICAL)
    trio.run(serve)
