"""ROBUSTNESS 21: the per-IP limits also count peers whose address has no multiaddr form.

An IPv6 link-local peer arrives with a zone (``fe80::1%eth0``) that ``/ip6`` cannot carry; it
must still be counted against its IP, not slip past the per-IP cap uncounted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rapidp2p._aio.connection import MuxedConnection
from rapidp2p.host import Host, HostConfig, Limits

ZONED = ("fe80::1%eth0", 4001, 0, 2)


class FakeSocket(asyncio.Transport):
    """An accepted connection that never sends anything."""

    def __init__(self, peername: tuple[Any, ...]) -> None:
        super().__init__()
        self.peername = peername
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peername if name == "peername" else default

    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return self.aborted

    def close(self) -> None:
        self.aborted = True

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _accept(host: Host, peername: tuple[Any, ...]) -> FakeSocket:
    sock = FakeSocket(peername)
    mux = MuxedConnection()
    mux.connection_made(sock)
    host._on_inbound(mux)
    return sock


async def test_zoned_ipv6_peer_is_counted_and_capped() -> None:
    limits = Limits(max_connections_per_ip=2, max_pending_handshakes=100)
    async with Host(config=HostConfig(limits=limits)) as host:
        first, second = _accept(host, ZONED), _accept(host, ZONED)
        assert host.limiter.per_ip.get(ZONED[0]) == 2
        assert not first.aborted and not second.aborted
        third = _accept(host, ZONED)
        assert third.aborted, "over the per-IP cap: refused at once"
        assert host.limiter.pending == 2
        other = _accept(host, ("fe80::2%eth0", 4001, 0, 2))
        assert not other.aborted
    # Closing the host cancels the pending upgrades and gives every counter back.
    assert host.limiter.pending == 0
    assert not host.limiter.per_ip.get(ZONED[0])
