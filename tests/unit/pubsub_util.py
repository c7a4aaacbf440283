"""Helpers for the pubsub tests: routers wired in memory, keys, signed messages. No tests."""

from __future__ import annotations

import itertools
import random
from typing import Any

from rapidp2p.crypto import PrivateKey, generate_keypair
from rapidp2p.peer import PeerId
from rapidp2p.pubsub import (
    MESHSUB_V12,
    GossipSubParams,
    Message,
    Router,
    ValidationResult,
    decode_rpc,
    sign_message,
)

_seq = itertools.count(1)


class Node:
    """A router plus its key: the sans-IO half of a pubsub node."""

    def __init__(self, params: GossipSubParams | None = None, **kw: Any) -> None:
        self.key: PrivateKey = generate_keypair()
        self.peer_id = PeerId.from_public_key(self.key.public_key())
        self.router = Router(self.peer_id, params or GossipSubParams(), rng=random.Random(1), **kw)

    def message(self, topic: str, data: bytes) -> Message:
        msg = Message(topic, data, self.peer_id.to_bytes(), next(_seq).to_bytes(8, "big"))
        sign_message(self.key, msg)
        return msg


def link(a: Node, b: Node, now: float = 0.0, proto: str = MESHSUB_V12) -> None:
    """Both routers learn of each other (a dialled b)."""
    a.router.add_peer(b.peer_id, proto, now, outbound=True)
    b.router.add_peer(a.peer_id, proto, now, outbound=False)


def pump(nodes: list[Node], now: float = 0.0, rounds: int = 50) -> int:
    """Delivers queued frames until quiet, accepting every message; returns frames moved."""
    by_id = {n.peer_id: n for n in nodes}
    moved = 0
    for _ in range(rounds):
        batch = [(n, n.router.take_outgoing()) for n in nodes]
        if not any(out for _, out in batch):
            return moved
        for src, out in batch:
            for dst_id, frames in out.items():
                dst = by_id.get(dst_id)
                if dst is None:
                    continue
                for f in frames:
                    moved += 1
                    rpc = decode_rpc(f, dst.router.params.max_transmit_size)
                    for m in dst.router.handle_rpc(src.peer_id, rpc, now):
                        dst.router.validation_done(m, ValidationResult.ACCEPT, now)
    raise AssertionError("network did not go quiet")


def frames_to(node: Node, peer: Node) -> list[Any]:
    """Decoded RPCs queued by ``node`` for ``peer`` (drains all of node's output)."""
    out = node.router.take_outgoing()
    return [decode_rpc(f, 1 << 22) for f in out.get(peer.peer_id, [])]
