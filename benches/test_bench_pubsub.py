"""Pubsub hot paths: RPC decode/encode in Rust, and one signed message through a router
(verify, seen cache, score, forward to a mesh). The 20-node mesh figures come from
``benches/pubsub_mesh.py``."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from rapidp2p import _core
from rapidp2p.pubsub import RPC, Message, ValidationResult, decode_rpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from pubsub_util import Node, link

T = "bench"


def _frame(size: int) -> bytes:
    msg = _core.pubsub.encode_message(
        b"\x00" * 38, random.randbytes(size), b"\x00" * 8, T, b"s" * 64
    )
    return _core.pubsub.encode_rpc(messages=[msg])


def test_decode_rpc_1k(benchmark: Any) -> None:
    frame = _frame(1024)
    rpc = benchmark(decode_rpc, frame, 1 << 20)
    assert len(rpc.messages) == 1


def test_encode_rpc_ihave_5000(benchmark: Any) -> None:
    ids = [i.to_bytes(40, "big") for i in range(5000)]
    out = benchmark(lambda: _core.pubsub.encode_rpc(ihave=[(T, ids)]))
    assert decode_rpc(out, 1 << 20).ihave[0][1] == ids


def test_router_receive_signed_message(benchmark: Any) -> None:
    hub = Node()
    leaves = [Node() for _ in range(8)]
    for leaf in leaves:
        link(leaf, hub)
        leaf.router.join(T, 0.0)
    hub.router.join(T, 0.0)
    for leaf in leaves:
        hub.router.handle_rpc(leaf.peer_id, RPC(subscriptions=[(True, T)]), 0.0)
    hub.router.heartbeat(0.0)
    src = leaves[0]
    msgs = [src.message(T, b"x" * 1024) for _ in range(20000)]
    it = iter(msgs)

    def one() -> None:
        m = next(it)
        rpc = RPC(messages=[Message(T, m.data, m.from_, m.seqno, m.signature)])
        for new in hub.router.handle_rpc(src.peer_id, rpc, 0.0):
            hub.router.validation_done(new, ValidationResult.ACCEPT, 0.0)
        hub.router.take_outgoing()

    benchmark.pedantic(one, rounds=2000, iterations=1)
