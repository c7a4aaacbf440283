"""rapidp2p: libp2p for Python, with the data plane in Rust.

The names most programs need are re-exported here::

    import rapidp2p

    async def main() -> None:
        async with await rapidp2p.Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as host:
            print(host.full_addrs)

    rapidp2p.run(main())  # asyncio.run on uvloop when it is installed
"""

from __future__ import annotations

from rapidp2p import exceptions
from rapidp2p._aio.runner import run
from rapidp2p._aio.stream import Stream
from rapidp2p._core import __version__
from rapidp2p.crypto import KeyType, PrivateKey, PublicKey, generate_keypair
from rapidp2p.host import Host, HostConfig, Limits
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo

__all__ = [
    "Host",
    "HostConfig",
    "KeyType",
    "Limits",
    "Multiaddr",
    "PeerId",
    "PeerInfo",
    "PrivateKey",
    "PublicKey",
    "Stream",
    "__version__",
    "exceptions",
    "generate_keypair",
    "run",
]
