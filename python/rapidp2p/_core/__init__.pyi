"""Type stubs for the compiled extension ``rapidp2p._core`` (glue over the Rust crates).

One submodule per pure crate, each with its own stub; every submodule is importable both as
``from rapidp2p._core import kad`` and as ``import rapidp2p._core.kad``.
"""

__all__ = [
    "EV_DATA",
    "EV_FIN",
    "EV_GO_AWAY",
    "EV_MUXER",
    "EV_PING_RTT",
    "EV_RESET",
    "EV_STREAM_ACKED",
    "EV_STREAM_OPENED",
    "EV_WINDOW",
    "Connection",
    "NoiseHandshake",
    "NoiseTransport",
    "Protector",
    "TlsCertKey",
    "TlsHandshake",
    "TlsIdentity",
    "__version__",
    "conn",
    "decode_noise_payload",
    "encode_noise_payload",
    "kad",
    "peer_id",
    "proto",
    "pubsub",
    "tune_allocator",
    "wire",
]

from rapidp2p._core import conn as conn
from rapidp2p._core import kad as kad
from rapidp2p._core import peer_id as peer_id
from rapidp2p._core import proto as proto
from rapidp2p._core import pubsub as pubsub
from rapidp2p._core import wire as wire

# Transitional top-level names, read by the connection driver (rapidp2p._aio, the upgrader,
# security/noise.py, security/tls.py) until it imports them from ``_core.conn`` /
# ``_core.proto``; they are the same objects.
from rapidp2p._core.conn import EV_DATA as EV_DATA
from rapidp2p._core.conn import EV_FIN as EV_FIN
from rapidp2p._core.conn import EV_GO_AWAY as EV_GO_AWAY
from rapidp2p._core.conn import EV_MUXER as EV_MUXER
from rapidp2p._core.conn import EV_PING_RTT as EV_PING_RTT
from rapidp2p._core.conn import EV_RESET as EV_RESET
from rapidp2p._core.conn import EV_STREAM_ACKED as EV_STREAM_ACKED
from rapidp2p._core.conn import EV_STREAM_OPENED as EV_STREAM_OPENED
from rapidp2p._core.conn import EV_WINDOW as EV_WINDOW
from rapidp2p._core.conn import Connection as Connection
from rapidp2p._core.conn import NoiseHandshake as NoiseHandshake
from rapidp2p._core.conn import NoiseTransport as NoiseTransport
from rapidp2p._core.conn import Protector as Protector
from rapidp2p._core.conn import TlsCertKey as TlsCertKey
from rapidp2p._core.conn import TlsHandshake as TlsHandshake
from rapidp2p._core.conn import TlsIdentity as TlsIdentity
from rapidp2p._core.conn import tune_allocator as tune_allocator
from rapidp2p._core.proto import decode_noise_payload as decode_noise_payload
from rapidp2p._core.proto import encode_noise_payload as encode_noise_payload

__version__: str
