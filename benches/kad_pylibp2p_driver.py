"""py-libp2p's Kademlia routing table, timed: run with the py-libp2p virtualenv's python (it
cannot be imported next to rapidp2p), by ``benches/test_bench_kad.py``.

stdin: one JSON object ``{"local": hex, "peers": [hex, ...], "target": hex preimage,
"bucket_size": int | null, "calls": int, "batches": int}``. The peers are inserted into a
``libp2p.kad_dht.routing_table.RoutingTable`` (liveness pings answer "alive", so a full bucket
keeps its peers, as rapidp2p's table does without a check callback); then
``find_local_closest_peers(target, 20)`` is timed. stdout: ``{"size": peers held,
"per_call_s": median seconds per call over the batches, "closest": [hex, ...]}``.
"""

# Runs in the py-libp2p virtualenv: its packages are not importable (nor typed) here.
# mypy: disable-error-code="import-not-found,import-untyped,unused-ignore"

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

import trio
from libp2p.kad_dht import routing_table as rt_mod
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr


async def _alive(self: Any, peer_id: ID) -> bool:
    return True


async def _fill(table: Any, peers: list[bytes]) -> None:
    addr = [Multiaddr("/ip4/127.0.0.1/tcp/4001")]
    for raw in peers:
        await table.add_peer(PeerInfo(ID(raw), addr), skip_server_mode_check=True)


def main() -> None:
    job = json.load(sys.stdin)
    if job.get("bucket_size"):
        rt_mod.BUCKET_SIZE = int(job["bucket_size"])  # one bucket holding every candidate
    rt_mod.KBucket._ping_peer = _alive  # type: ignore[method-assign]
    table = rt_mod.RoutingTable(ID(bytes.fromhex(job["local"])), None)  # type: ignore[arg-type]
    trio.run(_fill, table, [bytes.fromhex(p) for p in job["peers"]])
    target = bytes.fromhex(job["target"])
    closest = table.find_local_closest_peers(target, 20)
    per_call = []
    for _ in range(int(job["batches"])):
        calls = int(job["calls"])
        t0 = time.perf_counter()
        for _ in range(calls):
            table.find_local_closest_peers(target, 20)
        per_call.append((time.perf_counter() - t0) / calls)
    json.dump(
        {
            "size": table.size(),
            "per_call_s": statistics.median(per_call),
            "closest": [p.to_bytes().hex() for p in closest],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
