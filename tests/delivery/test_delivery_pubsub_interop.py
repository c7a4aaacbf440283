"""Issue 19: a one-way pubsub message reported as sent must reach the peer, even when the
sending program exits right after, with both cores busy.

Each test runs 20 short-lived publishers one after the other against one long-running
subscriber built from another implementation (``run pubsub``, see
``tests/pubsub/test_pubsub_interop.py``), and checks that every message arrived.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from delivery_util import run_cli, run_python

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pubsub"))
from test_pubsub_interop import TOPIC, peer

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("busy_cores")]

RUNS = 20
PEERS = ["go-peer", "rust-peer", "js-peer"]
#: Peers whose pubsub closes its side of an inbound stream once it read our EOF.
READS_TO_EOF = {"go-peer", "rust-peer"}

#: A library program that publishes once and ends at once: ``async with`` closes the host,
#: whose linger must hold the connection until the subscriber read the message.
LIBRARY_PUBLISHER = """
import asyncio, sys
import rapidp2p
from rapidp2p.pubsub import GossipSub

async def main() -> None:
    addr, topic, text = sys.argv[1:4]
    async with rapidp2p.Host() as host:
        ps = await host.add_service(GossipSub(host))
        await host.connect(addr)
        while not ps.topic_peers(topic):
            await asyncio.sleep(0.01)
        await ps.publish(topic, text.encode())

rapidp2p.run(main())
"""


@pytest.mark.parametrize("name", PEERS)
async def test_cli_publishes_arrive(name: str) -> None:
    async with peer(name) as sub:
        sent = set()
        for i in range(RUNS):
            text = f"cli {i} to {name}"
            r = await run_cli("pubsub", "pub", TOPIC, text, "--connect", sub.addr, "--wait", "30")
            assert r.code == 0, f"run {i}: exit {r.code}: {r.err}"
            assert "delivered to 1 of 1 peer(s)" in r.err, r.err
            # go and rust close their side after reading to EOF: consumption is shown;
            # js-libp2p's gossipsub keeps the stream open: only receipt can be.
            assert ("1 read it" in r.err) == (name in READS_TO_EOF), r.err
            sent.add(text)
        await sub.received(sent, timeout=10)


@pytest.mark.parametrize("name", ["go-peer"])
async def test_library_publish_then_exit_arrives(name: str) -> None:
    async with peer(name) as sub:
        sent = set()
        for i in range(RUNS):
            text = f"library {i} to {name}"
            r = await run_python("-c", LIBRARY_PUBLISHER, sub.addr, TOPIC, text)
            assert r.code == 0, f"run {i}: exit {r.code}: {r.err}"
            sent.add(text)
        await sub.received(sent, timeout=10)
