"""py-libp2p's Kademlia lookup in a local network: run with the py-libp2p virtualenv's python
(it cannot be imported next to rapidp2p), by ``benches/test_bench_kad.py``.

argv: NODES LOOKUPS. Starts NODES py-libp2p hosts (TCP on 127.0.0.1, Noise, yamux) with a
server-mode ``KadDHT`` each in one trio process; every node connects to node 0 and adds it to
its table, then every node refreshes its table; then LOOKUPS sequential
``find_closest_peers_network`` calls from rotating nodes. stdout: one JSON object with the
build time, lookups/s, RPCs per lookup (median) and how many of the true 20 closest the
lookups found (median).
"""

# Runs in the py-libp2p virtualenv: its packages are not importable (nor typed) here.
# mypy: disable-error-code="import-not-found,import-untyped,unused-ignore"

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.kad_dht import DHTMode, KadDHT
from libp2p.kad_dht import peer_routing as pr_mod
from libp2p.network.config import ConnectionConfig
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

RPCS = [0]
_original_query = pr_mod.PeerRouting._query_peer_for_closest


async def _counted_query(self: Any, peer: Any, target_key: bytes) -> Any:
    RPCS[0] += 1
    return await _original_query(self, peer, target_key)


pr_mod.PeerRouting._query_peer_for_closest = _counted_query  # type: ignore[method-assign]


def _host() -> Any:
    key_pair = create_new_key_pair()
    noise = NoiseTransport(key_pair, noise_privkey=create_new_x25519_key_pair().private_key)
    return new_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        connection_config=ConnectionConfig(max_connections_per_peer=1),
    )


def _key(peer_bytes: bytes) -> int:
    return int.from_bytes(hashlib.sha256(peer_bytes).digest(), "big")


async def main(n: int, lookups: int) -> None:
    t0 = time.perf_counter()
    async with AsyncExitStack() as stack:
        hosts = [_host() for _ in range(n)]
        dhts = []
        for h in hosts:
            await stack.enter_async_context(
                h.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")])
            )
            d = KadDHT(h, DHTMode.SERVER)
            await stack.enter_async_context(background_trio_service(d))
            dhts.append(d)
        boot = PeerInfo(hosts[0].get_id(), hosts[0].get_addrs())
        for h, d in zip(hosts[1:], dhts[1:], strict=True):
            await h.connect(boot)
            await d.routing_table.add_peer(boot)
        for d in dhts:
            await d.refresh_routing_table()
        build = time.perf_counter() - t0
        rpcs: list[int] = []
        found: list[int] = []
        t = time.perf_counter()
        for i in range(lookups):
            asker = dhts[i % n]
            key = b"bench-%d" % i
            target = _key(key)
            RPCS[0] = 0
            # py-libp2p hashes the key itself (SHA-256), as the wire protocol does.
            got = await asker.peer_routing.find_closest_peers_network(key)
            rpcs.append(RPCS[0])
            others = [h.get_id() for h in hosts if h.get_id() != asker.local_peer_id]
            true20 = sorted(others, key=lambda p: _key(p.to_bytes()) ^ target)[:20]
            found.append(len(set(got) & set(true20)))
        dt = time.perf_counter() - t
        result = {
            "nodes": n,
            "build_s": build,
            "lookups_per_s": lookups / dt,
            "median_rpcs": statistics.median(rpcs),
            "median_true_closest_found": statistics.median(found),
        }
        # Print now and leave without the teardown: closing hundreds of py-libp2p hosts takes
        # minutes and measures nothing.
        json.dump(result, sys.stdout)
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), int(sys.argv[2]))
