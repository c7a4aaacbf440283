"""A small geographic latency model: regions, their round-trip times, node placement.

Why: Kademlia's lookup latency is dominated by how far apart the peers it asks are. The
round-trip times between regions are rounded figures of the kind public inter-datacenter
ping tables publish (e.g. Virginia-Ireland ~70 ms, Virginia-Tokyo ~145 ms, Singapore-Sao
Paulo ~320 ms); a node adds its own last-mile delay on top. The region weights roughly follow
where IPFS DHT servers were measured (North America, Europe and East Asia dominate).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["REGIONS", "REGION_WEIGHTS", "RTT_MS", "Placement", "one_way_base", "place"]

REGIONS: tuple[str, ...] = (
    "us-east",
    "us-west",
    "eu-west",
    "eu-central",
    "ap-northeast",
    "ap-southeast",
    "sa-east",
)

#: Share of nodes placed in each region (sums to 1).
REGION_WEIGHTS: dict[str, float] = {
    "us-east": 0.20,
    "us-west": 0.12,
    "eu-west": 0.15,
    "eu-central": 0.20,
    "ap-northeast": 0.15,
    "ap-southeast": 0.10,
    "sa-east": 0.08,
}

_PAIRS: dict[tuple[str, str], float] = {
    ("us-east", "us-west"): 65,
    ("us-east", "eu-west"): 70,
    ("us-east", "eu-central"): 90,
    ("us-east", "ap-northeast"): 145,
    ("us-east", "ap-southeast"): 215,
    ("us-east", "sa-east"): 115,
    ("us-west", "eu-west"): 125,
    ("us-west", "eu-central"): 145,
    ("us-west", "ap-northeast"): 100,
    ("us-west", "ap-southeast"): 165,
    ("us-west", "sa-east"): 175,
    ("eu-west", "eu-central"): 25,
    ("eu-west", "ap-northeast"): 210,
    ("eu-west", "ap-southeast"): 170,
    ("eu-west", "sa-east"): 180,
    ("eu-central", "ap-northeast"): 225,
    ("eu-central", "ap-southeast"): 160,
    ("eu-central", "sa-east"): 200,
    ("ap-northeast", "ap-southeast"): 70,
    ("ap-northeast", "sa-east"): 255,
    ("ap-southeast", "sa-east"): 320,
}

#: Round-trip time in milliseconds between two regions (within a region: 4 ms).
RTT_MS: dict[tuple[str, str], float] = {}
for (_a, _b), _rtt in _PAIRS.items():
    RTT_MS[(_a, _b)] = RTT_MS[(_b, _a)] = _rtt
for _r in REGIONS:
    RTT_MS[(_r, _r)] = 4.0


def one_way_base(a: str, b: str) -> float:
    """One-way delay in seconds between two regions' backbones (half the RTT)."""
    return RTT_MS[(a, b)] / 2000.0


@dataclass(frozen=True)
class Placement:
    """Where a node sits and what its access link is like."""

    region: str
    #: One-way last-mile delay (seconds), added to every packet to or from the node.
    access_delay: float
    up_bps: float
    down_bps: float


#: (share, uplink, downlink) in bit/s: home broadband, office, datacenter.
BANDWIDTH_CLASSES: tuple[tuple[float, float, float], ...] = (
    (0.4, 20e6, 100e6),
    (0.3, 100e6, 100e6),
    (0.3, 1e9, 1e9),
)


def place(rng: random.Random) -> Placement:
    """Draws a region (by weight), a last-mile delay (1-10 ms) and a bandwidth class."""
    region = rng.choices(REGIONS, weights=[REGION_WEIGHTS[r] for r in REGIONS])[0]
    access = rng.uniform(0.001, 0.010)
    shares = [c[0] for c in BANDWIDTH_CLASSES]
    _, up, down = rng.choices(BANDWIDTH_CLASSES, weights=shares)[0]
    return Placement(region, access, up, down)
