"""Type stubs for the compiled extension ``rapidp2p._core`` (glue over the Rust crates).

One submodule per pure crate, each with its own stub; every submodule is importable both as
``from rapidp2p._core import kad`` and as ``import rapidp2p._core.kad``.
"""

__all__ = [
    "__version__",
    "conn",
    "crypto",
    "kad",
    "peer_id",
    "proto",
    "pubsub",
    "quic",
    "webrtc",
    "wire",
]

from rapidp2p._core import conn as conn
from rapidp2p._core import crypto as crypto
from rapidp2p._core import kad as kad
from rapidp2p._core import peer_id as peer_id
from rapidp2p._core import proto as proto
from rapidp2p._core import pubsub as pubsub
from rapidp2p._core import quic as quic
from rapidp2p._core import webrtc as webrtc
from rapidp2p._core import wire as wire

__version__: str
