"""Issue 19: ``provide`` counts a peer as told only once it consumed ADD_PROVIDER, so 20
short-lived providers in a row, with both cores busy, are all found by the go-libp2p node
(go-libp2p-kad-dht, the DHT of kubo)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from delivery_util import raw_cid, run_cli, run_python

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kad"))
from test_kad_interop import dht_peer, peer_dht

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("busy_cores")]

RUNS = 20

#: A library program that provides once and ends right after the call.
LIBRARY_PROVIDER = """
import sys
import rapidp2p
from rapidp2p.kad import KadConfig, KadDHT

async def main() -> None:
    boot, cid = sys.argv[1:3]
    async with await rapidp2p.Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as host:
        async with KadDHT(host, KadConfig(mode="client")) as dht:
            await dht.bootstrap([boot])
            print(await dht.provide(cid))

rapidp2p.run(main())
"""


async def _found_by_go(boot: str, cid: str) -> list[str]:
    code, out, err = await peer_dht("go-peer", "find-providers", cid, "--bootstrap", boot)
    assert code == 0, f"go find-providers {cid}: {err}"
    return out.split()


async def test_cli_provides_are_found_by_go() -> None:
    async with dht_peer("go-peer") as go:
        cids = [raw_cid(f"cli provide {i}".encode()) for i in range(RUNS)]
        for i, cid in enumerate(cids):
            r = await run_cli(
                "dht", "provide", cid, "--bootstrap", go.addr,
                "--listen", "/ip4/127.0.0.1/tcp/0", "--json",
            )  # fmt: skip
            assert r.code == 0, f"run {i}: exit {r.code}: {r.err}"
            # One peer (the go node) consumed it.
            assert json.loads(r.out)["announced_to"] == 1, r.out
        missing = [cid for cid in cids if not await _found_by_go(go.addr, cid)]
        assert not missing, f"{len(missing)} of {RUNS} provider records lost"


async def test_library_provides_are_found_by_go() -> None:
    async with dht_peer("go-peer") as go:
        cids = [raw_cid(f"library provide {i}".encode()) for i in range(RUNS)]
        for i, cid in enumerate(cids):
            r = await run_python("-c", LIBRARY_PROVIDER, go.addr, cid)
            assert r.code == 0, f"run {i}: exit {r.code}: {r.err}"
            assert r.out.split()[-1] == "1", r.out
        missing = [cid for cid in cids if not await _found_by_go(go.addr, cid)]
        assert not missing, f"{len(missing)} of {RUNS} provider records lost"
