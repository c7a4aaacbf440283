"""GossipSub parameters: mesh sizes and timings (v1.0/v1.1), scoring (v1.1), thresholds.

Defaults follow the specs and go-libp2p-pubsub; tests shrink the heartbeat to milliseconds.
Every field is plain data so the sans-IO router can be built and inspected without a loop.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rapidp2p.peer import PeerId

__all__ = [
    "FLOODSUB",
    "MESHSUB_V10",
    "MESHSUB_V11",
    "MESHSUB_V12",
    "GossipSubParams",
    "PeerScoreParams",
    "PeerScoreThresholds",
    "SignaturePolicy",
    "TopicScoreParams",
]

FLOODSUB = "/floodsub/1.0.0"
MESHSUB_V10 = "/meshsub/1.0.0"
MESHSUB_V11 = "/meshsub/1.1.0"
MESHSUB_V12 = "/meshsub/1.2.0"


class SignaturePolicy(enum.Enum):
    """How messages are authored and which ones are accepted."""

    #: Every message carries ``from``, ``seqno`` and a signature; unsigned ones are rejected.
    STRICT_SIGN = "strict-sign"
    #: No ``from``/``seqno``/``signature``/``key`` at all; messages carrying them are rejected.
    STRICT_NO_SIGN = "strict-no-sign"


@dataclass
class GossipSubParams:
    """Mesh and gossip parameters (gossipsub-v1.0.md / v1.1.md "Parameters")."""

    d: int = 6
    d_lo: int = 4
    d_hi: int = 12
    d_lazy: int = 6
    d_score: int = 4
    d_out: int = 2
    heartbeat_interval: float = 1.0
    fanout_ttl: float = 60.0
    mcache_len: int = 5
    mcache_gossip: int = 3
    seen_ttl: float = 120.0
    gossip_factor: float = 0.25
    prune_peers: int = 16
    prune_backoff: float = 60.0
    unsubscribe_backoff: float = 10.0
    #: PRUNE backoffs a peer asks for are clamped to this (ROBUSTNESS 30).
    max_backoff: float = 3600.0
    graft_flood_threshold: float = 10.0
    opportunistic_graft_ticks: int = 60
    opportunistic_graft_peers: int = 2
    max_ihave_length: int = 5000
    max_ihave_messages: int = 10
    iwant_followup_time: float = 3.0
    gossip_retransmission: int = 3
    flood_publish: bool = True
    do_px: bool = False
    #: v1.2: announce IDONTWANT for received messages at least this large (bytes).
    idontwant_threshold: int = 1024
    #: IDONTWANT IDs remembered per peer (oldest forgotten first).
    max_idontwant_ids: int = 5000
    #: Largest RPC frame sent or accepted (bytes).
    max_transmit_size: int = 1 << 20
    #: Subscription changes honoured per RPC (the rest ignored; ROBUSTNESS 31).
    max_subscriptions_per_rpc: int = 100
    #: Topics a peer may be subscribed to at once (we stop tracking beyond that).
    max_topics_per_peer: int = 1000
    #: Frames queued per peer before messages to it are dropped (a slow peer never blocks).
    peer_outbound_queue: int = 256
    #: Peers always forwarded to and never in a mesh (both sides should configure this).
    direct_peers: list[PeerId] = field(default_factory=list)
    direct_connect_ticks: int = 300

    def check(self) -> None:
        """Raises ValueError when the parameters contradict each other."""
        if not (0 <= self.d_lo <= self.d <= self.d_hi):
            raise ValueError("need 0 <= d_lo <= d <= d_hi")
        if not (0 <= self.d_out < self.d_lo or self.d_lo == 0) or self.d_out > self.d // 2:
            raise ValueError("need d_out < d_lo and d_out <= d / 2")
        if self.d_score > self.d:
            raise ValueError("d_score must not exceed d")
        if not (0 < self.mcache_gossip <= self.mcache_len):
            raise ValueError("need 0 < mcache_gossip <= mcache_len")
        if self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")


@dataclass
class TopicScoreParams:
    """Per-topic score parameters P1-P4 (gossipsub-v1.1.md "Topic Parameter Calculation")."""

    topic_weight: float = 1.0
    # P1: time in mesh
    time_in_mesh_weight: float = 0.01
    time_in_mesh_quantum: float = 1.0
    time_in_mesh_cap: float = 100.0
    # P2: first message deliveries
    first_message_deliveries_weight: float = 1.0
    first_message_deliveries_decay: float = 0.5
    first_message_deliveries_cap: float = 100.0
    # P3: mesh message delivery rate (weight <= 0; 0 disables)
    mesh_message_deliveries_weight: float = 0.0
    mesh_message_deliveries_decay: float = 0.5
    mesh_message_deliveries_cap: float = 100.0
    mesh_message_deliveries_threshold: float = 1.0
    mesh_message_deliveries_window: float = 0.01
    mesh_message_deliveries_activation: float = 5.0
    # P3b: mesh failure penalty (weight <= 0)
    mesh_failure_penalty_weight: float = 0.0
    mesh_failure_penalty_decay: float = 0.5
    # P4: invalid messages (weight <= 0)
    invalid_message_deliveries_weight: float = -10.0
    invalid_message_deliveries_decay: float = 0.99


@dataclass
class PeerScoreParams:
    """Peer score parameters (P5-P7, caps, decay) and the per-topic ones."""

    topics: dict[str, TopicScoreParams] = field(default_factory=dict)
    #: Used for topics missing from ``topics`` (None: such topics do not count).
    default_topic_params: TopicScoreParams | None = field(default_factory=TopicScoreParams)
    topic_score_cap: float = 3600.0
    app_specific_score: Callable[[PeerId], float] | None = None
    app_specific_weight: float = 1.0
    ip_colocation_factor_weight: float = 0.0
    ip_colocation_factor_threshold: int = 10
    ip_colocation_factor_whitelist: frozenset[str] = frozenset()
    behaviour_penalty_weight: float = -10.0
    behaviour_penalty_threshold: float = 0.0
    behaviour_penalty_decay: float = 0.99
    decay_interval: float = 1.0
    decay_to_zero: float = 0.01
    #: How long a disconnected peer's score is remembered (so reconnecting does not reset it).
    retain_score: float = 3600.0

    def topic(self, topic: str) -> TopicScoreParams | None:
        return self.topics.get(topic, self.default_topic_params)


@dataclass
class PeerScoreThresholds:
    """Score thresholds (gossipsub-v1.1.md "Score Thresholds")."""

    gossip_threshold: float = -10.0
    publish_threshold: float = -50.0
    graylist_threshold: float = -80.0
    accept_px_threshold: float = 10.0
    opportunistic_graft_threshold: float = 20.0

    def check(self) -> None:
        if not (self.graylist_threshold <= self.publish_threshold <= self.gossip_threshold <= 0):
            raise ValueError("need graylist <= publish <= gossip <= 0")
        if self.accept_px_threshold < 0 or self.opportunistic_graft_threshold < 0:
            raise ValueError("accept_px and opportunistic_graft thresholds must be >= 0")
