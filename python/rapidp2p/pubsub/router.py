"""The sans-IO pubsub router: GossipSub v1.0-v1.2 with FloodSub peers, no sockets, no clock.

Every entry point takes ``now`` (monotonic seconds). Output accumulates in the router and is
collected by the asyncio service after each call: ``take_outgoing()`` (frames per peer),
``delivered`` (validated messages for local subscribers), ``px_candidates`` (peers to dial,
from PRUNE peer exchange). Incoming messages are checked (size, signature policy, seen cache,
graylist) by :meth:`Router.handle_rpc`, which returns the new ones; the service validates them
(user validators may be async) and reports back with :meth:`Router.validation_done`.
"""

from __future__ import annotations

import enum
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rapidp2p.pubsub._rpc import (
    RPC,
    Message,
    MessageIdFn,
    Outgoing,
    content_message_id,
    default_message_id,
    verify_message,
)
from rapidp2p.pubsub.caches import MessageCache, TimeCache
from rapidp2p.pubsub.params import (
    FLOODSUB,
    MESHSUB_V11,
    MESHSUB_V12,
    GossipSubParams,
    PeerScoreParams,
    PeerScoreThresholds,
    SignaturePolicy,
)
from rapidp2p.pubsub.score import PeerScore

if TYPE_CHECKING:
    from rapidp2p.crypto import PublicKey
    from rapidp2p.peer import PeerId

__all__ = ["PeerState", "Router", "ValidationResult"]

log = logging.getLogger("rapidp2p.pubsub")


class ValidationResult(enum.Enum):
    """What a validator says about a message (go-libp2p-pubsub's names)."""

    ACCEPT = "accept"
    REJECT = "reject"  # invalid: penalise the sender, never forward
    IGNORE = "ignore"  # drop quietly, no penalty


#: Topics with their own message counters; later ones share the ``"other"`` entry.
MAX_COUNTED_TOPICS = 256


class TopicCounts:
    """Message counters of one topic (read by metrics at scrape time)."""

    __slots__ = ("accepted", "duplicate", "published", "received", "rejected", "unfiltered")

    def __init__(self) -> None:
        #: Messages received, duplicates included.
        self.unfiltered = 0
        #: Messages received once (duplicates filtered), before validation.
        self.received = 0
        self.duplicate = 0
        #: Validated and delivered to local subscribers (and forwarded).
        self.accepted = 0
        self.rejected = 0
        self.published = 0


@dataclass
class PeerState:
    """What the router knows about one connected peer."""

    protocol: str
    outbound: bool = False
    topics: set[str] = field(default_factory=set)
    ihave_count: int = 0  # IHAVE messages this heartbeat
    iasked: int = 0  # message IDs we asked for (IWANT) this heartbeat
    dontsend: OrderedDict[bytes, int] = field(default_factory=OrderedDict)  # IDONTWANT -> tick

    @property
    def is_gossip(self) -> bool:
        return self.protocol != FLOODSUB

    @property
    def supports_px(self) -> bool:
        return self.protocol in (MESHSUB_V11, MESHSUB_V12)

    @property
    def supports_idontwant(self) -> bool:
        return self.protocol == MESHSUB_V12


class Router:
    """One node's pubsub state machine. ``local`` is our PeerId; ``peer`` keys are PeerIds."""

    def __init__(
        self,
        local: PeerId,
        params: GossipSubParams | None = None,
        *,
        score_params: PeerScoreParams | None = None,
        thresholds: PeerScoreThresholds | None = None,
        signature_policy: SignaturePolicy = SignaturePolicy.STRICT_SIGN,
        message_id_fn: MessageIdFn | None = None,
        flood_only: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.local = local
        self._local_bytes: bytes = local.to_bytes()
        self.params = params or GossipSubParams()
        self.params.check()
        self.thresholds = thresholds or PeerScoreThresholds()
        self.thresholds.check()
        self.score = PeerScore(score_params or PeerScoreParams())
        self.signature_policy = signature_policy
        if message_id_fn is None:
            message_id_fn = (
                content_message_id
                if signature_policy is SignaturePolicy.STRICT_NO_SIGN
                else default_message_id
            )
        self.message_id_fn: MessageIdFn = message_id_fn
        #: FloodSub mode: no meshes, no control messages, every message to every peer.
        self.flood_only = flood_only
        self.rng = rng or random.Random()
        p = self.params
        self.peers: dict[PeerId, PeerState] = {}
        self.topics: dict[str, set[PeerId]] = {}  # topic -> peers subscribed to it
        self.my_topics: set[str] = set()
        self.mesh: dict[str, set[PeerId]] = {}
        self.fanout: dict[str, set[PeerId]] = {}
        self.fanout_last_pub: dict[str, float] = {}
        self.backoff: dict[str, dict[PeerId, float]] = {}
        self.direct: set[PeerId] = set(p.direct_peers)
        self.seen = TimeCache(p.seen_ttl)
        self.mcache = MessageCache(p.mcache_len, p.mcache_gossip)
        self.promises: dict[PeerId, dict[bytes, float]] = {}
        self.heartbeat_ticks = 0
        self._out: dict[PeerId, Outgoing] = {}
        #: Validated messages for local subscribers (the service drains this list).
        self.delivered: list[Message] = []
        #: (peer_id bytes, signed peer record bytes | None) offered by PRUNE peer exchange.
        self.px_candidates: list[tuple[bytes, bytes | None]] = []
        #: Direct peers to (re)connect to, filled by the heartbeat.
        self.connect_requests: list[PeerId] = []
        #: Optional hook giving a signed peer record for PX (peer -> envelope bytes | None).
        self.signed_record_for: Callable[[PeerId], bytes | None] | None = None
        self.stats = {"rejected": 0, "duplicates": 0, "ignored_rpcs": 0}
        #: Per-topic message counters (subscribed and published topics, bounded).
        self.topic_counts: dict[str, TopicCounts] = {}
        self._author_keys: dict[bytes, PublicKey] = {}  # verify_message's key cache

    # ---- helpers -----------------------------------------------------------------------

    def _o(self, peer: PeerId) -> Outgoing:
        o = self._out.get(peer)
        if o is None:
            o = self._out[peer] = Outgoing()
        return o

    def take_outgoing(self) -> dict[PeerId, list[bytes]]:
        """Encoded frames to send, per peer (and forgets them)."""
        out, self._out = self._out, {}
        size = self.params.max_transmit_size
        return {peer: o.frames(size) for peer, o in out.items() if peer in self.peers}

    def take_outgoing_parts(self) -> dict[PeerId, list[list[bytes]]]:
        """Like :meth:`take_outgoing`, each frame as pieces (see ``Outgoing.frame_parts``)."""
        out, self._out = self._out, {}
        size = self.params.max_transmit_size
        cache: dict[tuple[bytes, ...], bytes] = {}
        peers = self.peers
        return {peer: o.frame_parts(size, cache) for peer, o in out.items() if peer in peers}

    def _counts(self, topic: str) -> TopicCounts:
        tc = self.topic_counts.get(topic)
        if tc is None:
            if len(self.topic_counts) >= MAX_COUNTED_TOPICS:
                topic = "other"
                tc = self.topic_counts.get(topic)
            if tc is None:
                tc = self.topic_counts[topic] = TopicCounts()
        return tc

    def peer_score(self, peer: PeerId, now: float) -> float:
        return self.score.score(peer, now)

    def _in_backoff(self, topic: str, peer: PeerId, now: float) -> bool:
        b = self.backoff.get(topic)
        return b is not None and b.get(peer, 0.0) > now

    def _add_backoff(self, topic: str, peer: PeerId, seconds: float, now: float) -> None:
        b = self.backoff.setdefault(topic, {})
        until = now + seconds
        if b.get(peer, 0.0) < until:
            b[peer] = until

    def _prune_entry(
        self, peer: PeerId, topic: str, now: float, *, px: bool, backoff: float | None = None
    ) -> tuple[str, list[tuple[bytes | None, bytes | None]], int | None]:
        """A PRUNE for ``peer``; v1.1 peers get a backoff and (optionally) peer exchange."""
        st = self.peers.get(peer)
        secs = self.params.prune_backoff if backoff is None else backoff
        self._add_backoff(topic, peer, secs, now)
        if st is None or not st.supports_px:
            return (topic, [], None)
        peers: list[tuple[bytes | None, bytes | None]] = []
        if px and self.params.do_px:
            cands = [
                q for q in self.topics.get(topic, ()) if q != peer and self.score.score(q, now) >= 0
            ]
            self.rng.shuffle(cands)
            for q in cands[: self.params.prune_peers]:
                rec = self.signed_record_for(q) if self.signed_record_for else None
                peers.append((q.to_bytes(), rec))
        return (topic, peers, int(secs))

    # ---- peers -------------------------------------------------------------------------

    def add_peer(
        self,
        peer: PeerId,
        protocol: str,
        now: float,
        *,
        outbound: bool = False,
        ip: str | None = None,
    ) -> None:
        """A peer opened a pubsub stream with ``protocol``; greets it with our topics."""
        if peer in self.peers:
            self.peers[peer].protocol = protocol
            return
        self.peers[peer] = PeerState(protocol, outbound)
        self.score.add_peer(peer, (ip,) if ip else ())
        if self.my_topics:
            self._o(peer).subscriptions.extend((True, t) for t in sorted(self.my_topics))

    def remove_peer(self, peer: PeerId, now: float) -> None:
        st = self.peers.pop(peer, None)
        if st is None:
            return
        for t in st.topics:
            s = self.topics.get(t)
            if s is not None:
                s.discard(peer)
        for m in self.mesh.values():
            m.discard(peer)
        for f in self.fanout.values():
            f.discard(peer)
        self.promises.pop(peer, None)
        self._out.pop(peer, None)
        self.score.remove_peer(peer, now)

    # ---- local subscriptions -----------------------------------------------------------

    def join(self, topic: str, now: float) -> None:
        """Subscribes: announces the topic and builds a mesh (fanout peers first)."""
        if topic in self.my_topics:
            return
        self.my_topics.add(topic)
        for peer in self.peers:
            self._o(peer).subscriptions.append((True, topic))
        if self.flood_only:
            return
        mesh = self.mesh.setdefault(topic, set())
        fanout = self.fanout.pop(topic, set())
        self.fanout_last_pub.pop(topic, None)
        for peer in fanout:
            if len(mesh) >= self.params.d:
                break
            if self.score.score(peer, now) >= 0 and peer not in self.direct:
                mesh.add(peer)
        if len(mesh) < self.params.d:
            for peer in self._candidates(topic, now, self.params.d - len(mesh), exclude=mesh):
                mesh.add(peer)
        for peer in mesh:
            self._graft(peer, topic, now)

    def leave(self, topic: str, now: float) -> None:
        """Unsubscribes: announces it and prunes the mesh (with the unsubscribe backoff)."""
        if topic not in self.my_topics:
            return
        self.my_topics.discard(topic)
        for peer in self.peers:
            self._o(peer).subscriptions.append((False, topic))
        for peer in self.mesh.pop(topic, set()):
            self.score.prune(peer, topic)
            self._o(peer).prune.append(
                self._prune_entry(
                    peer, topic, now, px=True, backoff=self.params.unsubscribe_backoff
                )
            )

    def _graft(self, peer: PeerId, topic: str, now: float) -> None:
        self.score.graft(peer, topic, now)
        self._o(peer).graft.append(topic)

    def _candidates(
        self, topic: str, now: float, n: int, *, exclude: Iterable[PeerId] = ()
    ) -> list[PeerId]:
        """Up to ``n`` random gossip peers in ``topic`` fit for a mesh (score >= 0, no backoff)."""
        if n <= 0:
            return []
        ex = set(exclude)
        cands = [
            q
            for q in self.topics.get(topic, ())
            if q not in ex
            and q not in self.direct
            and self.peers[q].is_gossip
            and not self._in_backoff(topic, q, now)
            and self.score.score(q, now) >= 0
        ]
        self.rng.shuffle(cands)
        return cands[:n]

    # ---- publishing --------------------------------------------------------------------

    def publish(self, msg: Message, now: float) -> set[PeerId]:
        """Sends a locally authored (signed, validated) message; returns the peers sent to."""
        mid = self.message_id_fn(msg)
        msg.id = mid
        self.seen.add(mid, now)
        self.mcache.put(mid, msg)
        topic = msg.topic
        tpeers = self.topics.get(topic, set())
        if self.flood_only or self.params.flood_publish:
            thr = self.thresholds.publish_threshold
            cached = self.score.cached
            targets = {q for q in tpeers if q in self.direct or cached(q, now) >= thr}
        else:
            targets = {q for q in tpeers if q in self.direct or not self.peers[q].is_gossip}
            if topic in self.mesh:
                targets |= self.mesh[topic]
            else:
                fan = self.fanout.get(topic)
                if not fan:
                    fan = self.fanout[topic] = set(
                        self._fanout_candidates(topic, now, self.params.d, set())
                    )
                targets |= fan
                self.fanout_last_pub[topic] = now
        enc = msg.encoded
        for q in targets:
            self._o(q).messages.append(enc)
        if topic in self.my_topics:
            self.delivered.append(msg)
        self._counts(topic).published += 1
        return targets

    def _fanout_candidates(
        self, topic: str, now: float, n: int, exclude: set[PeerId]
    ) -> list[PeerId]:
        thr = self.thresholds.publish_threshold
        cands = [
            q
            for q in self.topics.get(topic, ())
            if q not in exclude
            and q not in self.direct
            and self.peers[q].is_gossip
            and self.score.score(q, now) >= thr
        ]
        self.rng.shuffle(cands)
        return cands[:n]

    def _forward(self, msg: Message, now: float) -> None:
        """Sends a validated message on: mesh (or every peer for FloodSub), direct, floodsub."""
        topic = msg.topic
        source = msg.received_from
        author = msg.from_
        tpeers = self.topics.get(topic, ())
        thr = self.thresholds.publish_threshold
        targets: set[PeerId] = set()
        flood = self.flood_only
        direct = self.direct
        peers = self.peers
        cached = self.score.cached
        for q in tpeers:
            # Direct peers always; FloodSub peers (or everyone, for FloodSub) above the
            # publish threshold; GossipSub peers only through the mesh (below).
            if q in direct or ((flood or peers[q].protocol == FLOODSUB) and cached(q, now) >= thr):
                targets.add(q)
        if not flood:
            targets |= self.mesh.get(topic, set())
        mid = msg.id
        enc = msg.encoded
        source_bytes = None if source is None else source.to_bytes()
        out = self._out
        for q in targets:
            qb = q.to_bytes()
            if qb in (source_bytes, author):  # never back to the sender or the author
                continue
            qst = peers.get(q)
            if qst is None or mid in qst.dontsend:
                continue
            o = out.get(q)
            if o is None:
                o = out[q] = Outgoing()
            o.messages.append(enc)

    # ---- incoming ----------------------------------------------------------------------

    def handle_rpc(self, peer: PeerId, rpc: RPC, now: float) -> list[Message]:
        """Applies one frame from ``peer``; returns new messages awaiting validation."""
        st = self.peers.get(peer)
        if st is None:
            return []
        if rpc.subscriptions:
            self._handle_subscriptions(peer, st, rpc.subscriptions)
        if self.score.cached(peer, now) < self.thresholds.graylist_threshold:
            self.stats["ignored_rpcs"] += 1
            return []
        new = self._handle_messages(peer, st, rpc.messages, now) if rpc.messages else []
        if st.is_gossip and not self.flood_only:
            if rpc.ihave:
                self._handle_ihave(peer, st, rpc.ihave, now)
            if rpc.iwant:
                self._handle_iwant(peer, rpc.iwant, now)
            if rpc.graft:
                self._handle_graft(peer, st, rpc.graft, now)
            if rpc.prune:
                self._handle_prune(peer, rpc.prune, now)
            if rpc.idontwant and st.supports_idontwant:
                self._handle_idontwant(st, rpc.idontwant)
        return new

    def _handle_subscriptions(
        self, peer: PeerId, st: PeerState, subs: list[tuple[bool, str]]
    ) -> None:
        for subscribe, topic in subs[: self.params.max_subscriptions_per_rpc]:
            if subscribe:
                if topic in st.topics or len(st.topics) >= self.params.max_topics_per_peer:
                    continue
                st.topics.add(topic)
                self.topics.setdefault(topic, set()).add(peer)
            else:
                if topic not in st.topics:
                    continue
                st.topics.discard(topic)
                s = self.topics.get(topic)
                if s is not None:
                    s.discard(peer)
                    if not s:
                        del self.topics[topic]
                m = self.mesh.get(topic)
                if m is not None and peer in m:
                    m.discard(peer)
                    self.score.prune(peer, topic)
                f = self.fanout.get(topic)
                if f is not None:
                    f.discard(peer)

    def _reject(
        self, peer: PeerId | None, msg: Message, mid: bytes | None, why: str, now: float
    ) -> None:
        log.debug("rejecting message from %s: %s", peer, why)
        self.stats["rejected"] += 1
        if msg.topic in self.my_topics:
            self._counts(msg.topic).rejected += 1
        self.score.reject_message(peer, mid, msg.topic, now)

    def _handle_messages(
        self, peer: PeerId, st: PeerState, msgs: list[Message], now: float
    ) -> list[Message]:
        p = self.params
        new: list[Message] = []
        strict = self.signature_policy is SignaturePolicy.STRICT_SIGN
        for msg in msgs:
            if msg.topic not in self.my_topics:
                continue  # not ours: neither delivered nor forwarded
            tc = self._counts(msg.topic)
            tc.unfiltered += 1
            if strict:
                if msg.signature is None or msg.from_ is None or msg.seqno is None:
                    self._reject(peer, msg, None, "unsigned message under strict-sign", now)
                    continue
            elif (
                msg.signature is not None
                or msg.from_ is not None
                or msg.seqno is not None
                or msg.key is not None
            ):
                self._reject(peer, msg, None, "signed fields under strict-no-sign", now)
                continue
            try:
                mid = self.message_id_fn(msg)
            except Exception:
                self._reject(peer, msg, None, "message ID function failed", now)
                continue
            msg.id = mid
            msg.received_from = peer
            self._promise_kept(mid)
            if mid in self.seen:
                self.stats["duplicates"] += 1
                tc.duplicate += 1
                self.score.duplicate_message(peer, mid, msg.topic, now)
                continue
            # After the seen check: sizing encodes the message, which duplicates never need.
            if msg.size > p.max_transmit_size:
                self._reject(peer, msg, None, "over the max transmit size", now)
                continue
            if strict:
                why = verify_message(msg, self._author_keys)
                if why is not None:
                    self._reject(peer, msg, None, why, now)
                    continue
                if msg.from_ == self._local_bytes:
                    continue  # our own message echoed back under a new ID: never accept
            self.seen.add(mid, now)
            tc.received += 1
            self.score.validate_message(mid, now)
            if msg.size >= p.idontwant_threshold and not self.flood_only:
                for q in self.mesh.get(msg.topic, ()):
                    if q != peer and self.peers[q].supports_idontwant:
                        self._o(q).idontwant.append(mid)
            new.append(msg)
        return new

    def validation_done(self, msg: Message, result: ValidationResult, now: float) -> None:
        """The verdict on a message returned by :meth:`handle_rpc`."""
        source = msg.received_from
        if result is ValidationResult.ACCEPT:
            self.score.deliver_message(source, msg.id, msg.topic, now)
            self.mcache.put(msg.id, msg)
            if msg.topic in self.my_topics:
                self.delivered.append(msg)
                self._counts(msg.topic).accepted += 1
            self._forward(msg, now)
        elif result is ValidationResult.REJECT:
            self._reject(source, msg, msg.id, "validator rejected", now)
        else:
            self.score.ignore_message(msg.id, now)

    # ---- control -----------------------------------------------------------------------

    def _promise_kept(self, mid: bytes) -> None:
        if not self.promises:
            return
        for peer in list(self.promises):
            pr = self.promises[peer]
            if pr.pop(mid, None) is not None and not pr:
                del self.promises[peer]

    def _handle_ihave(
        self, peer: PeerId, st: PeerState, ihave: list[tuple[str, list[bytes]]], now: float
    ) -> None:
        p = self.params
        if self.score.cached(peer, now) < self.thresholds.gossip_threshold:
            return
        st.ihave_count += 1
        if st.ihave_count > p.max_ihave_messages or st.iasked >= p.max_ihave_length:
            return
        want: dict[bytes, None] = {}
        for topic, ids in ihave:
            if topic not in self.mesh:
                continue
            for mid in ids:
                if mid not in self.seen:
                    want[mid] = None
        if not want:
            return
        ids = list(want)
        room = p.max_ihave_length - st.iasked
        if len(ids) > room:
            self.rng.shuffle(ids)
            ids = ids[:room]
        st.iasked += len(ids)
        self._o(peer).iwant.extend(ids)
        # Promise tracking: one random ID per IWANT must arrive within the follow-up time.
        pr = self.promises.setdefault(peer, {})
        pick = self.rng.choice(ids)
        pr.setdefault(pick, now + p.iwant_followup_time)

    def _handle_iwant(self, peer: PeerId, ids: list[bytes], now: float) -> None:
        if self.score.cached(peer, now) < self.thresholds.gossip_threshold:
            return
        limit = self.params.gossip_retransmission
        o = None
        for mid in ids:
            msg, count = self.mcache.get_for_peer(mid, peer)
            if msg is None or count > limit:
                continue
            if o is None:
                o = self._o(peer)
            o.messages.append(msg.encoded)

    def _handle_graft(self, peer: PeerId, st: PeerState, topics: list[str], now: float) -> None:
        p = self.params
        score = self.score.score(peer, now)
        for topic in topics:
            mesh = self.mesh.get(topic)
            if mesh is None:
                continue  # unknown topic (or one we left): ignore (ROBUSTNESS 32)
            if peer in mesh:
                continue
            if peer in self.direct:
                self._o(peer).prune.append(self._prune_entry(peer, topic, now, px=False))
                continue
            b = self.backoff.get(topic, {}).get(peer)
            if b is not None and b > now:
                # GRAFT during backoff: penalise, twice if it came right after the PRUNE.
                self.score.add_penalty(peer, 1)
                if now < b - p.prune_backoff + p.graft_flood_threshold:
                    self.score.add_penalty(peer, 1)
                self._o(peer).prune.append(self._prune_entry(peer, topic, now, px=False))
                continue
            if score < 0:
                self._o(peer).prune.append(self._prune_entry(peer, topic, now, px=False))
                continue
            if len(mesh) >= p.d_hi and not st.outbound:
                self._o(peer).prune.append(self._prune_entry(peer, topic, now, px=True))
                continue
            mesh.add(peer)
            self.score.graft(peer, topic, now)

    def _handle_prune(
        self,
        peer: PeerId,
        prunes: list[tuple[str, list[tuple[bytes | None, bytes | None]], int | None]],
        now: float,
    ) -> None:
        p = self.params
        score = self.score.score(peer, now)
        for topic, px, backoff in prunes:
            mesh = self.mesh.get(topic)
            if mesh is not None and peer in mesh:
                mesh.discard(peer)
                self.score.prune(peer, topic)
            secs = p.prune_backoff if backoff is None else min(float(backoff), p.max_backoff)
            self._add_backoff(topic, peer, secs, now)
            if px and score >= self.thresholds.accept_px_threshold:
                for pid, rec in px[: p.prune_peers]:
                    if pid:
                        self.px_candidates.append((pid, rec))

    def _handle_idontwant(self, st: PeerState, ids: list[bytes]) -> None:
        cap = self.params.max_idontwant_ids
        d = st.dontsend
        tick = self.heartbeat_ticks
        for mid in ids:
            d[mid] = tick
        while len(d) > cap:
            d.popitem(last=False)

    # ---- heartbeat ---------------------------------------------------------------------

    def heartbeat(self, now: float) -> None:
        """Mesh and fanout maintenance, gossip emission, cache shifts, score decay."""
        self.heartbeat_ticks += 1
        self.score.refresh(now)
        self._apply_broken_promises(now)
        for st in self.peers.values():
            st.ihave_count = 0
            st.iasked = 0
            d = st.dontsend
            while d and next(iter(d.values())) < self.heartbeat_ticks - 3:
                d.popitem(last=False)
        self._clear_backoff(now)
        if not self.flood_only:
            for topic in list(self.mesh):
                self._maintain_mesh(topic, now)
            self._maintain_fanout(now)
            self._emit_gossip(now)
        if self.direct and self.heartbeat_ticks % self.params.direct_connect_ticks == 1:
            self.connect_requests.extend(q for q in self.direct if q not in self.peers)
        self.mcache.shift()
        self.seen.sweep(now)

    def _apply_broken_promises(self, now: float) -> None:
        for peer in list(self.promises):
            pr = self.promises[peer]
            broken = [m for m, t in pr.items() if t <= now]
            for m in broken:
                del pr[m]
            if broken:
                self.score.add_penalty(peer, len(broken))
            if not pr:
                del self.promises[peer]

    def _clear_backoff(self, now: float) -> None:
        # Entries live one heartbeat beyond expiry, so a GRAFT racing it is not penalised.
        slack = 2 * self.params.heartbeat_interval
        for topic in list(self.backoff):
            b = self.backoff[topic]
            for peer in [q for q, t in b.items() if t + slack < now]:
                del b[peer]
            if not b:
                del self.backoff[topic]

    def _maintain_mesh(self, topic: str, now: float) -> None:
        p = self.params
        mesh = self.mesh[topic]
        scores = {q: self.score.score(q, now) for q in mesh}
        for q, s in scores.items():
            if s < 0:
                mesh.discard(q)
                self.score.prune(q, topic)
                self._o(q).prune.append(self._prune_entry(q, topic, now, px=False))
        if len(mesh) < p.d_lo:
            for q in self._candidates(topic, now, p.d - len(mesh), exclude=mesh):
                mesh.add(q)
                self._graft(q, topic, now)
        elif len(mesh) > p.d_hi:
            peers = list(mesh)
            self.rng.shuffle(peers)
            peers.sort(key=lambda q: scores.get(q, 0.0), reverse=True)
            keep = peers[: p.d_score]
            rest = peers[p.d_score :]
            self.rng.shuffle(rest)
            keep += rest[: p.d - p.d_score]
            rest = rest[p.d - p.d_score :]
            outbound = [q for q in keep if self.peers[q].outbound]
            if len(outbound) < p.d_out:
                extra = [q for q in rest if self.peers[q].outbound][: p.d_out - len(outbound)]
                for q in extra:
                    victim = next((v for v in reversed(keep) if not self.peers[v].outbound), None)
                    if victim is None:
                        break
                    keep.remove(victim)
                    rest.append(victim)
                    keep.append(q)
                    rest.remove(q)
            for q in rest:
                mesh.discard(q)
                self.score.prune(q, topic)
                self._o(q).prune.append(self._prune_entry(q, topic, now, px=True))
        if len(mesh) >= p.d_lo:
            n_out = sum(1 for q in mesh if self.peers[q].outbound)
            if n_out < p.d_out:
                cands = [
                    q
                    for q in self._candidates(topic, now, len(self.peers), exclude=mesh)
                    if self.peers[q].outbound
                ]
                for q in cands[: p.d_out - n_out]:
                    mesh.add(q)
                    self._graft(q, topic, now)
        if (
            p.opportunistic_graft_ticks
            and self.heartbeat_ticks % p.opportunistic_graft_ticks == 0
            and len(mesh) > 1
        ):
            ranked = sorted(self.score.score(q, now) for q in mesh)
            median = ranked[len(ranked) // 2]
            if median < self.thresholds.opportunistic_graft_threshold:
                cands = [
                    q
                    for q in self._candidates(topic, now, len(self.peers), exclude=mesh)
                    if self.score.score(q, now) > median
                ]
                for q in cands[: p.opportunistic_graft_peers]:
                    mesh.add(q)
                    self._graft(q, topic, now)

    def _maintain_fanout(self, now: float) -> None:
        p = self.params
        for topic in list(self.fanout):
            last = self.fanout_last_pub.get(topic, 0.0)
            if last + p.fanout_ttl < now:
                del self.fanout[topic]
                self.fanout_last_pub.pop(topic, None)
                continue
            fan = self.fanout[topic]
            tpeers = self.topics.get(topic, set())
            thr = self.thresholds.publish_threshold
            for q in [q for q in fan if q not in tpeers or self.score.score(q, now) < thr]:
                fan.discard(q)
            if len(fan) < p.d:
                fan.update(self._fanout_candidates(topic, now, p.d - len(fan), fan))

    def _emit_gossip(self, now: float) -> None:
        p = self.params
        thr = self.thresholds.gossip_threshold
        for topic, group in [*self.mesh.items(), *self.fanout.items()]:
            ids = self.mcache.gossip_ids(topic)
            if not ids:
                continue
            cands = [
                q
                for q in self.topics.get(topic, ())
                if q not in group
                and q not in self.direct
                and self.peers[q].is_gossip
                and self.score.score(q, now) >= thr
            ]
            n = max(p.d_lazy, int(p.gossip_factor * len(cands)))
            self.rng.shuffle(cands)
            for q in cands[:n]:
                sel = ids
                if len(sel) > p.max_ihave_length:
                    sel = self.rng.sample(ids, p.max_ihave_length)
                self._o(q).ihave.append((topic, list(sel)))
