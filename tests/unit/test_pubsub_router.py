"""The sans-IO router: meshes, gossip, scoring and every GossipSub robustness rule."""

from __future__ import annotations

from pubsub_util import Node, frames_to, link, pump

from rapidp2p import _core
from rapidp2p.pubsub import (
    FLOODSUB,
    MESHSUB_V10,
    MESHSUB_V11,
    RPC,
    GossipSubParams,
    Message,
    PeerScoreParams,
    SignaturePolicy,
    TopicScoreParams,
    ValidationResult,
    decode_rpc,
)

T = "topic"


def star(n: int, params: GossipSubParams | None = None, **kw: object) -> tuple[Node, list[Node]]:
    """A hub linked to ``n`` leaves; every node subscribed to T, frames delivered."""
    hub = Node(params, **kw)  # type: ignore[arg-type]
    leaves = [Node(params, **kw) for _ in range(n)]  # type: ignore[arg-type]
    for leaf in leaves:
        link(leaf, hub)
    for node in [hub, *leaves]:
        node.router.join(T, 0.0)
    pump([hub, *leaves])
    for node in [*leaves, hub]:
        node.router.heartbeat(0.0)
    pump([hub, *leaves])
    return hub, leaves


# ---- mesh ----------------------------------------------------------------------------


def test_mesh_fills_to_d_and_is_trimmed_above_d_hi() -> None:
    hub, leaves = star(20)
    mesh = hub.router.mesh[T]
    # Every leaf GRAFTed the hub (its only peer); the hub PRUNEd those beyond D_hi.
    assert len(mesh) == hub.router.params.d_hi
    hub.router.heartbeat(1.0)
    assert len(hub.router.mesh[T]) <= hub.router.params.d_hi
    pump([hub, *leaves], 1.0)
    for leaf in leaves:  # pruned leaves are in backoff, the rest kept the hub
        in_mesh = hub.peer_id in leaf.router.mesh[T]
        assert in_mesh == (leaf.peer_id in hub.router.mesh[T])


def test_heartbeat_trims_oversized_mesh_keeping_outbound() -> None:
    p = GossipSubParams()
    hub = Node(p)
    leaves = [Node(p) for _ in range(16)]
    for i, leaf in enumerate(leaves):
        hub.router.add_peer(leaf.peer_id, MESHSUB_V11, 0.0, outbound=i < 3)
        leaf.router.add_peer(hub.peer_id, MESHSUB_V11, 0.0)
    pump([hub, *leaves])
    for leaf in leaves:
        hub.router.handle_rpc(leaf.peer_id, RPC(subscriptions=[(True, T)]), 0.0)
    hub.router.my_topics.add(T)
    hub.router.mesh[T] = {leaf.peer_id for leaf in leaves}  # 16 > D_hi
    hub.router.heartbeat(1.0)
    mesh = hub.router.mesh[T]
    assert len(mesh) == p.d
    assert sum(1 for q in mesh if hub.router.peers[q].outbound) >= p.d_out


def test_heartbeat_grafts_up_to_d_when_below_d_lo() -> None:
    hub, _leaves = star(8)
    hub.router.mesh[T].clear()
    hub.router.heartbeat(1.0)
    assert len(hub.router.mesh[T]) == hub.router.params.d


def test_every_subscriber_gets_a_message_exactly_once() -> None:
    nodes = [Node() for _ in range(12)]
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 : i + 4]:
            link(a, b)
    for n in nodes:
        n.router.join(T, 0.0)
    pump(nodes)
    for n in nodes:
        n.router.heartbeat(0.0)
    pump(nodes)
    msg = nodes[0].message(T, b"x")
    nodes[0].router.publish(msg, 0.0)
    pump(nodes)
    for n in nodes:
        got = [m for m in n.router.delivered if m.topic == T]
        assert len(got) == 1 and got[0].data == b"x"


def test_fanout_without_flood_publish() -> None:
    p = GossipSubParams(flood_publish=False)
    hub, leaves = star(10, p)
    outsider = Node(p)
    link(outsider, hub)
    pump([hub, outsider, *leaves])
    outsider.router.publish(outsider.message(T, b"f"), 0.0)
    assert outsider.router.fanout[T] == {hub.peer_id}
    pump([hub, outsider, *leaves])
    assert all(len(leaf.router.delivered) == 1 for leaf in leaves)
    outsider.router.heartbeat(1000.0)  # beyond the fanout TTL
    assert T not in outsider.router.fanout


def test_floodsub_peer_gets_everything() -> None:
    hub, leaves = star(3)
    flood = Node()
    hub.router.add_peer(flood.peer_id, FLOODSUB, 0.0)
    flood.router.add_peer(hub.peer_id, FLOODSUB, 0.0)
    flood.router.join(T, 0.0)
    pump([hub, flood, *leaves])
    assert flood.peer_id not in hub.router.mesh[T]
    leaves[0].router.publish(leaves[0].message(T, b"to all"), 0.0)
    pump([hub, flood, *leaves])
    assert [m.data for m in flood.router.delivered] == [b"to all"]


# ---- gossip --------------------------------------------------------------------------


def test_ihave_iwant_recovers_a_message() -> None:
    a, b = Node(), Node()
    link(a, b)
    a.router.join(T, 0.0)
    b.router.join(T, 0.0)
    pump([a, b])
    a.router.mesh[T].clear()  # only gossip connects them now (b in backoff at a)
    a.router.backoff[T] = {b.peer_id: 100.0}
    a.router.publish(a.message(T, b"g"), 0.0)
    a.router.take_outgoing()  # the flood-published copy is lost
    a.router.heartbeat(1.0)
    (rpc,) = frames_to(a, b)
    assert rpc.ihave and rpc.ihave[0][0] == T
    b.router.handle_rpc(a.peer_id, rpc, 1.0)
    (want,) = frames_to(b, a)
    assert want.iwant == rpc.ihave[0][1]
    a.router.handle_rpc(b.peer_id, want, 1.0)
    (reply,) = frames_to(a, b)
    (m,) = b.router.handle_rpc(a.peer_id, reply, 1.0)
    assert m.data == b"g"
    assert not b.router.promises  # promise kept: no penalty later


def test_ihave_over_10_per_heartbeat_ignored() -> None:
    hub, (spammer, *_) = star(2)
    for i in range(15):
        rpc = RPC(ihave=[(T, [bytes([i, j]) for j in range(3)])])
        hub.router.handle_rpc(spammer.peer_id, rpc, 0.0)
    (want,) = [r for r in frames_to(hub, spammer) if r.iwant]
    assert len(want.iwant) == 3 * hub.router.params.max_ihave_messages


def test_ihave_over_5000_ids_capped() -> None:
    hub, (spammer, *_) = star(2)
    ids = [i.to_bytes(4, "big") for i in range(4000)]
    hub.router.handle_rpc(spammer.peer_id, RPC(ihave=[(T, ids)]), 0.0)
    ids2 = [i.to_bytes(4, "big") for i in range(4000, 8000)]
    hub.router.handle_rpc(spammer.peer_id, RPC(ihave=[(T, ids2)]), 0.0)
    hub.router.handle_rpc(spammer.peer_id, RPC(ihave=[(T, [b"more"])]), 0.0)
    asked = [mid for r in frames_to(hub, spammer) for mid in r.iwant]
    assert len(asked) == 5000 and len(set(asked)) == 5000


def test_iwant_served_at_most_3_times() -> None:
    hub, (leaf, *_) = star(2)
    msg = hub.message(T, b"m")
    hub.router.publish(msg, 0.0)
    hub.router.take_outgoing()
    for _ in range(6):
        hub.router.handle_rpc(leaf.peer_id, RPC(iwant=[msg.id]), 0.0)
    served = [m for r in frames_to(hub, leaf) for m in r.messages]
    assert len(served) == hub.router.params.gossip_retransmission == 3


def test_ihave_spam_without_followup_penalised() -> None:
    hub, (spammer, *_) = star(2)
    for i in range(5):
        hub.router.handle_rpc(spammer.peer_id, RPC(ihave=[(T, [bytes([i])])]), 0.0)
        hub.router.heartbeat(0.1 * i)
    assert hub.router.score.snapshot(spammer.peer_id, 1.0)["behaviour_penalty"] == 0
    hub.router.heartbeat(10.0)  # past the IWANT follow-up time: promises broken
    snap = hub.router.score.snapshot(spammer.peer_id, 10.0)
    assert snap["behaviour_penalty"] > 4
    assert hub.router.peer_score(spammer.peer_id, 10.0) < 0


# ---- GRAFT / PRUNE -------------------------------------------------------------------


def test_prune_backoff_u64_max_clamped() -> None:
    hub, (leaf, *_) = star(2)
    hub.router.handle_rpc(leaf.peer_id, RPC(prune=[(T, [], 2**64 - 1)]), 0.0)
    until = hub.router.backoff[T][leaf.peer_id]
    assert until == hub.router.params.max_backoff == 3600.0
    assert leaf.peer_id not in hub.router.mesh[T]


def test_graft_unknown_topic_ignored() -> None:
    hub, (leaf, *_) = star(2)
    hub.router.handle_rpc(leaf.peer_id, RPC(graft=["nope"]), 0.0)
    assert "nope" not in hub.router.mesh
    assert not frames_to(hub, leaf)
    assert hub.router.score.snapshot(leaf.peer_id, 0.0)["behaviour_penalty"] == 0


def test_graft_during_backoff_penalised() -> None:
    hub, (leaf, *_) = star(2)
    hub.router.handle_rpc(leaf.peer_id, RPC(prune=[(T, [], 60)]), 0.0)
    hub.router.handle_rpc(leaf.peer_id, RPC(graft=[T]), 1.0)
    assert leaf.peer_id not in hub.router.mesh[T]
    snap = hub.router.score.snapshot(leaf.peer_id, 1.0)
    assert snap["behaviour_penalty"] == 2  # within the flood threshold: counted twice
    (reply,) = frames_to(hub, leaf)
    assert reply.prune and reply.prune[0][0] == T
    assert hub.router.peer_score(leaf.peer_id, 1.0) < 0


def test_graft_from_negative_score_peer_refused() -> None:
    hub, (leaf, *_) = star(2)
    hub.router.mesh[T].discard(leaf.peer_id)
    hub.router.score.add_penalty(leaf.peer_id, 5)
    hub.router.handle_rpc(leaf.peer_id, RPC(graft=[T]), 0.0)
    assert leaf.peer_id not in hub.router.mesh[T]


def test_prune_peer_exchange_needs_a_good_score() -> None:
    hub, (leaf, *_) = star(2)
    px = [(b"\x00\x01\x02", None)]
    hub.router.handle_rpc(leaf.peer_id, RPC(prune=[(T, px, 10)]), 0.0)
    assert hub.router.px_candidates == []  # score 0 < accept_px_threshold
    hub.router.score.params.app_specific_score = lambda peer: 100.0
    hub.router.handle_rpc(leaf.peer_id, RPC(prune=[(T, px, 10)]), 0.0)
    assert hub.router.px_candidates == px


def test_leave_prunes_with_unsubscribe_backoff() -> None:
    hub, leaves = star(3)
    hub.router.leave(T, 0.0)
    out = hub.router.take_outgoing()
    for leaf in leaves:
        rpcs = [decode_rpc(f, 1 << 20) for f in out[leaf.peer_id]]
        assert (False, T) in [s for r in rpcs for s in r.subscriptions]
        assert [p[2] for r in rpcs for p in r.prune] == [10]


# ---- messages ------------------------------------------------------------------------


def _msg_rpc(msg: Message) -> RPC:
    return RPC(
        messages=[Message(msg.topic, msg.data, msg.from_, msg.seqno, msg.signature, msg.key)]
    )


def test_bad_signature_dropped_penalised_not_forwarded() -> None:
    hub, (bad, other) = star(2)
    msg = bad.message(T, b"x")
    msg.data = b"y"
    assert hub.router.handle_rpc(bad.peer_id, _msg_rpc(msg), 0.0) == []
    snap = hub.router.score.snapshot(bad.peer_id, 0.0)
    assert snap["topics"][T]["invalid_message_deliveries"] == 1
    assert not [r for r in frames_to(hub, other) if r.messages]


def test_oversize_message_dropped_and_penalised() -> None:
    p = GossipSubParams(max_transmit_size=200)
    hub, (bad, other) = star(2, p)
    msg = bad.message(T, b"z" * 300)
    assert hub.router.handle_rpc(bad.peer_id, _msg_rpc(msg), 0.0) == []
    assert (
        hub.router.score.snapshot(bad.peer_id, 0.0)["topics"][T]["invalid_message_deliveries"] == 1
    )
    assert not [r for r in frames_to(hub, other) if r.messages]


def test_rejected_message_counts_for_every_forwarder() -> None:
    hub, (a, b, c) = star(3)
    msg = c.message(T, b"bad")
    (pending,) = hub.router.handle_rpc(a.peer_id, _msg_rpc(msg), 0.0)
    assert hub.router.handle_rpc(b.peer_id, _msg_rpc(msg), 0.0) == []  # duplicate
    hub.router.validation_done(pending, ValidationResult.REJECT, 0.0)
    for peer in (a, b):
        snap = hub.router.score.snapshot(peer.peer_id, 0.0)
        assert snap["topics"][T]["invalid_message_deliveries"] == 1
    assert not [r for r in frames_to(hub, c) if r.messages]


def test_ignored_message_not_penalised_not_forwarded() -> None:
    hub, (a, b) = star(2)
    (pending,) = hub.router.handle_rpc(a.peer_id, _msg_rpc(a.message(T, b"i")), 0.0)
    hub.router.validation_done(pending, ValidationResult.IGNORE, 0.0)
    assert hub.router.peer_score(a.peer_id, 0.0) >= 0
    assert not [r for r in frames_to(hub, b) if r.messages]


def test_first_delivery_raises_score() -> None:
    hub, (a, _b) = star(2)
    (pending,) = hub.router.handle_rpc(a.peer_id, _msg_rpc(a.message(T, b"ok")), 0.0)
    hub.router.validation_done(pending, ValidationResult.ACCEPT, 0.0)
    assert hub.router.peer_score(a.peer_id, 0.0) > 0


def test_strict_no_sign() -> None:
    hub, (a, _b) = star(2, signature_policy=SignaturePolicy.STRICT_NO_SIGN)
    signed = a.message(T, b"signed")
    assert hub.router.handle_rpc(a.peer_id, _msg_rpc(signed), 0.0) == []
    (m,) = hub.router.handle_rpc(a.peer_id, RPC(messages=[Message(T, b"anon")]), 0.0)
    assert m.id and m.data == b"anon"


def test_unsigned_rejected_under_strict_sign() -> None:
    hub, (a, _b) = star(2)
    assert hub.router.handle_rpc(a.peer_id, RPC(messages=[Message(T, b"anon")]), 0.0) == []
    assert hub.router.stats["rejected"] == 1


def test_graylisted_peer_ignored_entirely() -> None:
    hub, (a, _b) = star(2)
    hub.router.score.add_penalty(a.peer_id, 10)  # -1000 < graylist
    assert hub.router.handle_rpc(a.peer_id, _msg_rpc(a.message(T, b"x")), 0.0) == []
    assert hub.router.stats["ignored_rpcs"] == 1


def test_idontwant_sent_for_large_messages_and_honoured() -> None:
    p = GossipSubParams(idontwant_threshold=100)
    hub, (a, b, c) = star(3, p)
    hub.router.peers[c.peer_id].protocol = MESHSUB_V10  # v1.0 peers get no IDONTWANT
    big = a.message(T, b"B" * 200)
    (pending,) = hub.router.handle_rpc(a.peer_id, _msg_rpc(big), 0.0)
    out = hub.router.take_outgoing()
    rpcs_b = [decode_rpc(f, 1 << 20) for f in out.get(b.peer_id, [])]
    assert [mid for r in rpcs_b for mid in r.idontwant] == [pending.id]
    assert not out.get(c.peer_id)
    # b told us it has it: the forward skips b
    hub.router.handle_rpc(b.peer_id, RPC(idontwant=[pending.id]), 0.0)
    hub.router.validation_done(pending, ValidationResult.ACCEPT, 0.0)
    out = hub.router.take_outgoing()
    assert b.peer_id not in out and c.peer_id in out


def test_idontwant_encoded_once_per_flush() -> None:
    """Every mesh peer is told IDONTWANT for a new message in one flush: one encoding is
    shared by all of them, and each frame still decodes to that IDONTWANT alone."""
    p = GossipSubParams(idontwant_threshold=100)
    hub, (a, *rest) = star(4, p)
    big = a.message(T, b"B" * 200)
    (pending,) = hub.router.handle_rpc(a.peer_id, _msg_rpc(big), 0.0)
    out = hub.router.take_outgoing_parts()
    frames = [out[n.peer_id] for n in rest]
    assert all(len(f) == 1 and len(f[0]) == 1 for f in frames)  # one control-only piece each
    pieces = [f[0][0] for f in frames]
    assert all(piece is pieces[0] for piece in pieces)
    assert decode_rpc(pieces[0], 1 << 20).idontwant == [pending.id]


def test_score_retained_after_disconnect() -> None:
    hub, (a, _b) = star(2)
    hub.router.score.add_penalty(a.peer_id, 3)
    before = hub.router.peer_score(a.peer_id, 0.0)
    hub.router.remove_peer(a.peer_id, 0.0)
    assert a.peer_id not in hub.router.peers
    hub.router.add_peer(a.peer_id, MESHSUB_V11, 1.0)
    assert hub.router.peer_score(a.peer_id, 1.0) <= before < 0


def test_score_decays() -> None:
    hub, (a, _b) = star(2)
    hub.router.score.add_penalty(a.peer_id, 3)
    s0 = hub.router.peer_score(a.peer_id, 0.0)
    for t in range(1, 200):
        hub.router.score.refresh(float(t))
    assert s0 < hub.router.peer_score(a.peer_id, 200.0) <= 0


def test_time_in_mesh_and_topic_params() -> None:
    sp = PeerScoreParams(
        topics={T: TopicScoreParams(time_in_mesh_weight=1.0, first_message_deliveries_weight=0)},
        default_topic_params=None,
    )
    hub, (a, _b) = star(2, score_params=sp)
    assert hub.router.peer_score(a.peer_id, 10.0) == 10.0
    assert hub.router.peer_score(a.peer_id, 1000.0) == 100.0  # capped


def test_encoded_message_shared_across_peers() -> None:
    hub, _leaves = star(5)
    msg = hub.message(T, b"s")
    hub.router.publish(msg, 0.0)
    enc = msg.encoded
    out = hub.router.take_outgoing()
    assert len(out) == 5
    frame = _core.pubsub.encode_rpc(messages=[enc])
    assert all(frame in frames for frames in out.values())
