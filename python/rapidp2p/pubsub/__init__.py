"""Publish/subscribe: GossipSub v1.0-v1.2 and FloodSub (libp2p/specs ``pubsub/``).

The sans-IO router (:mod:`rapidp2p.pubsub.router`) holds meshes, gossip, scores and caches;
:class:`GossipSub` / :class:`FloodSub` run it on a :class:`~rapidp2p.host.Host`.
"""

from rapidp2p.pubsub._rpc import (
    RPC,
    Message,
    content_message_id,
    decode_rpc,
    default_message_id,
    sign_message,
    verify_message,
)
from rapidp2p.pubsub.params import (
    FLOODSUB,
    MESHSUB_V10,
    MESHSUB_V11,
    MESHSUB_V12,
    GossipSubParams,
    PeerScoreParams,
    PeerScoreThresholds,
    SignaturePolicy,
    TopicScoreParams,
)
from rapidp2p.pubsub.router import Router, ValidationResult
from rapidp2p.pubsub.score import PeerScore
from rapidp2p.pubsub.service import FloodSub, GossipSub, PubSub, Subscription, Validator

__all__ = [
    "FLOODSUB",
    "MESHSUB_V10",
    "MESHSUB_V11",
    "MESHSUB_V12",
    "RPC",
    "FloodSub",
    "GossipSub",
    "GossipSubParams",
    "Message",
    "PeerScore",
    "PeerScoreParams",
    "PeerScoreThresholds",
    "PubSub",
    "Router",
    "SignaturePolicy",
    "Subscription",
    "TopicScoreParams",
    "ValidationResult",
    "Validator",
    "content_message_id",
    "decode_rpc",
    "default_message_id",
    "sign_message",
    "verify_message",
]
