"""A Sybil's GossipSub router: the production router with an attacker's choices.

Why a router subclass rather than a separate attacker: the Sybil then speaks the protocol
byte for byte as an honest node does (same framing, same control messages, same muxer), so
whatever the honest nodes see of it is what a real attacker could send. The behaviour follows
the "bad boy" of the GossipSub v1.1 evaluation (Vyzovitis et al. 2020), rewritten here:

- it GRAFTs every peer that subscribes to the topic, keeps everyone in its own mesh, accepts
  every GRAFT, and re-GRAFTs a peer that pruned it as soon as the backoff the peer asked for
  is over (never during it: that would cost a behaviour penalty);
- while :attr:`SybilRouter.attacking`, it forwards no message, answers no IWANT and sends no
  real gossip; with :attr:`SybilRouter.spam` it advertises that many made-up message IDs per
  heartbeat to every peer (IHAVEs it will never honour);
- before that (the covert flash attack's build-up), it is an honest router that grafts
  eagerly.
"""

from __future__ import annotations

from typing import Any

from rapidp2p.pubsub._rpc import RPC, Message
from rapidp2p.pubsub.router import Router

__all__ = ["SybilRouter"]


class SybilRouter(Router):
    """See the module docstring; flip :attr:`attacking` to defect."""

    #: Dropping everything (True) or behaving (False, the covert phase).
    attacking = True
    #: Made-up message IDs advertised per heartbeat to each peer while attacking.
    spam = 0

    def _graft_all(self, topic: str, now: float) -> None:
        mesh = self.mesh.get(topic)
        if mesh is None:
            return
        for q in self.topics.get(topic, ()):
            if q not in mesh and not self._in_backoff(topic, q, now):
                mesh.add(q)
                self._o(q).graft.append(topic)

    def handle_rpc(self, peer: Any, rpc: RPC, now: float) -> list[Message]:
        new = super().handle_rpc(peer, rpc, now)
        if rpc.subscriptions:
            for topic in self.my_topics:
                self._graft_all(topic, now)
        return new

    def _handle_graft(self, peer: Any, st: Any, topics: list[str], now: float) -> None:
        for topic in topics:
            mesh = self.mesh.get(topic)
            if mesh is not None:
                mesh.add(peer)

    def _maintain_mesh(self, topic: str, now: float) -> None:
        self._graft_all(topic, now)

    def _forward(self, msg: Message, now: float) -> None:
        if not self.attacking:
            super()._forward(msg, now)

    def _handle_iwant(self, peer: Any, ids: list[bytes], now: float) -> None:
        if not self.attacking:
            super()._handle_iwant(peer, ids, now)

    def _emit_gossip(self, now: float) -> None:
        if not self.attacking:
            super()._emit_gossip(now)
            return
        if not self.spam:
            return
        for topic in self.my_topics:
            for q in self.topics.get(topic, ()):
                fake = [self.rng.randbytes(20) for _ in range(self.spam)]
                self._o(q).ihave.append((topic, fake))
