"""Issue 13 point 8 against py-libp2p itself: a py-libp2p host that offers only
``/mplex/6.7.0`` (as its pubsub and floodsub demos do) is refused visibly in both directions:
when it dials us, our log says what it offered; when we dial it, our error says why."""

from __future__ import annotations

import asyncio
import logging

import pytest
from peers import PeerError, PeerProcess, dial_from_peer

from rapidp2p.exceptions import DialError
from rapidp2p.host import Host

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

WANT_LOG = "peer offered only /mplex/6.7.0 (rapidp2p speaks /yamux/1.0.0)"


async def test_mplex_only_py_dialer_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rapidp2p.upgrader")
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as host:
        with pytest.raises(PeerError):
            await dial_from_peer("py-peer", str(host.full_addrs[0]), ping=True,
                                 extra_args=["--mplex-only"], timeout=120)  # fmt: skip
        for _ in range(200):
            if any(r.getMessage() == WANT_LOG for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        assert any(r.getMessage() == WANT_LOG for r in caplog.records), [
            r.getMessage() for r in caplog.records
        ]
        assert not host.connections()


async def test_dialing_a_mplex_only_py_listener_says_why() -> None:
    async with PeerProcess("py-peer", extra_args=["--mplex-only"]) as peer, Host() as host:
        with pytest.raises(DialError) as info:
            await host.connect(peer.addr)
        text = str(info.value)
        assert "does not speak /yamux/1.0.0" in text and "/mplex/6.7.0" in text, text
