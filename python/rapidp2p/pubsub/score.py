"""Peer scoring for GossipSub v1.1 (P1-P7), sans-IO: every call takes ``now``.

The score is a weighted sum: per topic (capped) time in mesh (P1), first deliveries (P2),
mesh delivery deficit (P3) and its sticky penalty (P3b), invalid messages (P4, squared);
then the application's score (P5), IP colocation (P6, squared surplus) and behaviour
penalties (P7, squared excess). Counters decay every ``decay_interval``; a disconnected peer's
stats are kept for ``retain_score`` so reconnecting does not launder a bad score.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rapidp2p.pubsub.params import PeerScoreParams, TopicScoreParams

if TYPE_CHECKING:
    from rapidp2p.peer import PeerId

__all__ = ["DeliveryStatus", "PeerScore"]


class DeliveryStatus(enum.Enum):
    UNKNOWN = 0  # in validation
    VALID = 1
    INVALID = 2
    IGNORED = 3


@dataclass
class _TopicStats:
    in_mesh: bool = False
    graft_time: float = 0.0
    mesh_time: float = 0.0
    first_message_deliveries: float = 0.0
    mesh_message_deliveries: float = 0.0
    mesh_message_deliveries_active: bool = False
    mesh_failure_penalty: float = 0.0
    invalid_message_deliveries: float = 0.0


@dataclass
class _PeerStats:
    connected: bool = True
    expire: float = 0.0
    topics: dict[str, _TopicStats] = field(default_factory=dict)
    ips: tuple[str, ...] = ()
    behaviour_penalty: float = 0.0


@dataclass
class _Delivery:
    first_seen: float
    status: DeliveryStatus = DeliveryStatus.UNKNOWN
    validated: float = 0.0
    peers: set[PeerId] = field(default_factory=set)


class PeerScore:
    """Score bookkeeping for one router."""

    #: Delivery records are kept this long (duplicates arriving later are not scored).
    DELIVERY_TTL = 120.0

    def __init__(self, params: PeerScoreParams) -> None:
        self.params = params
        self._peers: dict[PeerId, _PeerStats] = {}
        self._ips: dict[str, set[PeerId]] = {}
        self._deliveries: dict[bytes, _Delivery] = {}
        self._next_decay = 0.0
        #: Scores for the per-frame threshold checks: dropped for a peer whenever one of its
        #: counters changes and for everyone at each refresh (heartbeat), so between those
        #: only the time-in-mesh term (P1) can lag, by at most one heartbeat (as go's).
        self._cache: dict[PeerId, float] = {}

    # ---- inspection --------------------------------------------------------------------

    def cached(self, peer: PeerId, now: float) -> float:
        """The score for hot-path threshold checks (see ``_cache``)."""
        s = self._cache.get(peer)
        if s is None:
            s = self._cache[peer] = self.score(peer, now)
        return s

    def invalidate(self, peer: PeerId | None = None) -> None:
        """Forgets cached scores (one peer's, or all when ``peer`` is None)."""
        if peer is None:
            self._cache.clear()
        else:
            self._cache.pop(peer, None)

    def score(self, peer: PeerId, now: float) -> float:
        st = self._peers.get(peer)
        if st is None:
            return 0.0
        p = self.params
        total = 0.0
        for topic, ts in st.topics.items():
            tp = p.topic(topic)
            if tp is None:
                continue
            total += self._topic_score(ts, tp, now) * tp.topic_weight
        if p.topic_score_cap > 0 and total > p.topic_score_cap:
            total = p.topic_score_cap
        if p.app_specific_score is not None:
            total += p.app_specific_score(peer) * p.app_specific_weight
        for ip in st.ips:
            if ip in p.ip_colocation_factor_whitelist:
                continue
            surplus = len(self._ips.get(ip, ())) - p.ip_colocation_factor_threshold
            if surplus > 0:
                total += surplus * surplus * p.ip_colocation_factor_weight
        excess = st.behaviour_penalty - p.behaviour_penalty_threshold
        if excess > 0:
            total += excess * excess * p.behaviour_penalty_weight
        return total

    def _topic_score(self, ts: _TopicStats, tp: TopicScoreParams, now: float) -> float:
        s = 0.0
        if ts.in_mesh:
            p1 = min(max(now - ts.graft_time, 0.0) / tp.time_in_mesh_quantum, tp.time_in_mesh_cap)
            s += p1 * tp.time_in_mesh_weight
        s += ts.first_message_deliveries * tp.first_message_deliveries_weight
        if ts.mesh_message_deliveries_active:
            deficit = tp.mesh_message_deliveries_threshold - ts.mesh_message_deliveries
            if deficit > 0:
                s += deficit * deficit * tp.mesh_message_deliveries_weight
        s += ts.mesh_failure_penalty * tp.mesh_failure_penalty_weight
        s += ts.invalid_message_deliveries**2 * tp.invalid_message_deliveries_weight
        return s

    def snapshot(self, peer: PeerId, now: float) -> dict[str, object]:
        """The counters behind a peer's score (for inspection and tests)."""
        st = self._peers.get(peer)
        if st is None:
            return {"score": 0.0, "topics": {}, "behaviour_penalty": 0.0, "connected": False}
        return {
            "score": self.score(peer, now),
            "connected": st.connected,
            "behaviour_penalty": st.behaviour_penalty,
            "ips": st.ips,
            "topics": {
                t: {
                    "in_mesh": ts.in_mesh,
                    "first_message_deliveries": ts.first_message_deliveries,
                    "mesh_message_deliveries": ts.mesh_message_deliveries,
                    "mesh_failure_penalty": ts.mesh_failure_penalty,
                    "invalid_message_deliveries": ts.invalid_message_deliveries,
                }
                for t, ts in st.topics.items()
            },
        }

    # ---- peers -------------------------------------------------------------------------

    def add_peer(self, peer: PeerId, ips: tuple[str, ...] = ()) -> None:
        st = self._peers.get(peer)
        if st is None:
            st = self._peers[peer] = _PeerStats()
        st.connected = True
        self.set_ips(peer, ips)
        self._cache.pop(peer, None)

    def remove_peer(self, peer: PeerId, now: float) -> None:
        self._cache.pop(peer, None)
        st = self._peers.get(peer)
        if st is None:
            return
        self.set_ips(peer, ())
        if self.score(peer, now) > 0:  # nothing bad to remember
            del self._peers[peer]
            return
        st.connected = False
        st.expire = now + self.params.retain_score
        for topic, ts in st.topics.items():  # leaving the mesh by disconnecting is a failure
            tp = self.params.topic(topic)
            if ts.in_mesh and tp is not None:
                self._apply_mesh_failure(ts, tp)
            ts.in_mesh = False
            ts.first_message_deliveries = 0.0

    def set_ips(self, peer: PeerId, ips: tuple[str, ...]) -> None:
        st = self._peers.get(peer)
        if st is None:
            return
        for ip in st.ips:
            peers = self._ips.get(ip)
            if peers is not None:
                peers.discard(peer)
                if not peers:
                    del self._ips[ip]
        st.ips = ips
        self._cache.clear()  # colocation (P6) changes for every peer sharing these IPs
        for ip in ips:
            self._ips.setdefault(ip, set()).add(peer)

    def add_penalty(self, peer: PeerId, count: float = 1.0) -> None:
        """P7: protocol misbehaviour (broken IWANT promise, GRAFT during backoff, ...)."""
        st = self._peers.get(peer)
        if st is not None:
            st.behaviour_penalty += count
            self._cache.pop(peer, None)

    def _topic(self, peer: PeerId, topic: str) -> _TopicStats | None:
        st = self._peers.get(peer)
        if st is None or self.params.topic(topic) is None:
            return None
        ts = st.topics.get(topic)
        if ts is None:
            ts = st.topics[topic] = _TopicStats()
        return ts

    def graft(self, peer: PeerId, topic: str, now: float) -> None:
        ts = self._topic(peer, topic)
        self._cache.pop(peer, None)
        if ts is not None:
            ts.in_mesh = True
            ts.graft_time = now
            ts.mesh_message_deliveries_active = False

    def prune(self, peer: PeerId, topic: str) -> None:
        ts = self._topic(peer, topic)
        tp = self.params.topic(topic)
        self._cache.pop(peer, None)
        if ts is None or tp is None:
            return
        self._apply_mesh_failure(ts, tp)
        ts.in_mesh = False

    @staticmethod
    def _apply_mesh_failure(ts: _TopicStats, tp: TopicScoreParams) -> None:
        if ts.mesh_message_deliveries_active:
            deficit = tp.mesh_message_deliveries_threshold - ts.mesh_message_deliveries
            if deficit > 0:
                ts.mesh_failure_penalty += deficit * deficit

    # ---- messages ----------------------------------------------------------------------

    def validate_message(self, mid: bytes, now: float) -> None:
        """A new message entered validation: open its delivery record."""
        if mid not in self._deliveries:
            self._deliveries[mid] = _Delivery(first_seen=now)

    def deliver_message(self, source: PeerId | None, mid: bytes, topic: str, now: float) -> None:
        """The message validated: credit the first deliverer and the near-first mesh peers."""
        rec = self._deliveries.setdefault(mid, _Delivery(first_seen=now))
        if rec.status is not DeliveryStatus.UNKNOWN:
            return
        rec.status = DeliveryStatus.VALID
        rec.validated = now
        self._mark_first_delivery(source, topic)
        for p in rec.peers:
            if p != source:
                self._mark_mesh_delivery(p, topic)

    def reject_message(
        self, source: PeerId | None, mid: bytes | None, topic: str, now: float
    ) -> None:
        """The message is invalid: P4 for its source and for everyone who forwarded it."""
        self._mark_invalid(source, topic)
        if mid is None:
            return
        rec = self._deliveries.setdefault(mid, _Delivery(first_seen=now))
        if rec.status is not DeliveryStatus.UNKNOWN:
            return
        rec.status = DeliveryStatus.INVALID
        for p in rec.peers:
            self._mark_invalid(p, topic)
        rec.peers.clear()

    def ignore_message(self, mid: bytes, now: float) -> None:
        rec = self._deliveries.setdefault(mid, _Delivery(first_seen=now))
        rec.status = DeliveryStatus.IGNORED
        rec.peers.clear()

    def duplicate_message(self, peer: PeerId, mid: bytes, topic: str, now: float) -> None:
        rec = self._deliveries.get(mid)
        if rec is None or peer in rec.peers:
            return
        if rec.status is DeliveryStatus.UNKNOWN:
            rec.peers.add(peer)  # judged when validation ends
        elif rec.status is DeliveryStatus.VALID:
            rec.peers.add(peer)
            tp = self.params.topic(topic)
            if tp is not None and now - rec.validated <= tp.mesh_message_deliveries_window:
                self._mark_mesh_delivery(peer, topic)
        elif rec.status is DeliveryStatus.INVALID:
            self._mark_invalid(peer, topic)

    def _mark_first_delivery(self, peer: PeerId | None, topic: str) -> None:
        if peer is None:  # published here: nobody to credit or blame
            return
        ts = self._topic(peer, topic)
        tp = self.params.topic(topic)
        if ts is None or tp is None:
            return
        old = ts.first_message_deliveries
        ts.first_message_deliveries = min(old + 1, tp.first_message_deliveries_cap)
        if ts.first_message_deliveries != old and tp.first_message_deliveries_weight:
            self._cache.pop(peer, None)
        if ts.in_mesh:
            self._add_mesh_delivery(peer, ts, tp)

    def _mark_mesh_delivery(self, peer: PeerId, topic: str) -> None:
        ts = self._topic(peer, topic)
        tp = self.params.topic(topic)
        if ts is None or tp is None or not ts.in_mesh:
            return
        self._add_mesh_delivery(peer, ts, tp)

    def _add_mesh_delivery(self, peer: PeerId, ts: _TopicStats, tp: TopicScoreParams) -> None:
        old = ts.mesh_message_deliveries
        ts.mesh_message_deliveries = min(old + 1, tp.mesh_message_deliveries_cap)
        # P3 counts only once active and only with a weight; the count feeds P3b at PRUNE
        # time, which drops the cache itself.
        if (
            ts.mesh_message_deliveries != old
            and ts.mesh_message_deliveries_active
            and tp.mesh_message_deliveries_weight
        ):
            self._cache.pop(peer, None)

    def _mark_invalid(self, peer: PeerId | None, topic: str) -> None:
        if peer is None:  # published here: nobody to credit or blame
            return
        ts = self._topic(peer, topic)
        self._cache.pop(peer, None)
        if ts is not None:
            ts.invalid_message_deliveries += 1

    # ---- time --------------------------------------------------------------------------

    def refresh(self, now: float) -> None:
        """Decays counters (once per ``decay_interval``) and forgets expired peers/records."""
        self._cache.clear()
        if now < self._next_decay:
            return
        p = self.params
        self._next_decay = now + p.decay_interval
        zero = p.decay_to_zero

        def decay(v: float, f: float) -> float:
            v *= f
            return 0.0 if abs(v) < zero else v

        for peer in list(self._peers):
            st = self._peers[peer]
            if not st.connected and now >= st.expire:
                del self._peers[peer]
                continue
            for topic, ts in st.topics.items():
                tp = p.topic(topic)
                if tp is None:
                    continue
                ts.first_message_deliveries = decay(
                    ts.first_message_deliveries, tp.first_message_deliveries_decay
                )
                ts.mesh_message_deliveries = decay(
                    ts.mesh_message_deliveries, tp.mesh_message_deliveries_decay
                )
                ts.mesh_failure_penalty = decay(
                    ts.mesh_failure_penalty, tp.mesh_failure_penalty_decay
                )
                ts.invalid_message_deliveries = decay(
                    ts.invalid_message_deliveries, tp.invalid_message_deliveries_decay
                )
                if ts.in_mesh:
                    ts.mesh_time = now - ts.graft_time
                    if ts.mesh_time > tp.mesh_message_deliveries_activation:
                        ts.mesh_message_deliveries_active = True
            st.behaviour_penalty = decay(st.behaviour_penalty, p.behaviour_penalty_decay)
        horizon = now - self.DELIVERY_TTL
        stale = [m for m, r in self._deliveries.items() if r.first_seen < horizon]
        for m in stale:
            del self._deliveries[m]
