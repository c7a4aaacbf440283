"""rapidp2p: libp2p for Python, with the data plane in Rust.

The names most programs need are re-exported here::

    import rapidp2p

    async def main() -> None:
        async with await rapidp2p.Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as host:
            print(host.full_addrs)

    rapidp2p.run(main())  # asyncio.run on uvloop when it is installed
"""

from __future__ import annotations

# Not ``from typing import TYPE_CHECKING``: a bare ``import rapidp2p`` loads nothing at all.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from rapidp2p import exceptions
    from rapidp2p._aio.runner import run
    from rapidp2p._aio.stream import Stream
    from rapidp2p._core import __version__
    from rapidp2p.crypto import KeyType, PrivateKey, PublicKey, generate_keypair
    from rapidp2p.host import Host, HostConfig, Limits
    from rapidp2p.peer import Multiaddr, PeerId, PeerInfo

#: Each name is imported on first use: ``import rapidp2p`` itself loads nothing, so a command
#: line or a program pays only for what it touches (issue 16: start-up time and idle RSS).
_LAZY = {
    "Host": "rapidp2p.host",
    "HostConfig": "rapidp2p.host",
    "KeyType": "rapidp2p.crypto",
    "Limits": "rapidp2p.host",
    "Multiaddr": "rapidp2p.peer",
    "PeerId": "rapidp2p.peer",
    "PeerInfo": "rapidp2p.peer",
    "PrivateKey": "rapidp2p.crypto",
    "PublicKey": "rapidp2p.crypto",
    "Stream": "rapidp2p._aio.stream",
    "__version__": "rapidp2p._core",
    "generate_keypair": "rapidp2p.crypto",
    "run": "rapidp2p._aio.runner",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "exceptions":
        return importlib.import_module("rapidp2p.exceptions")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
