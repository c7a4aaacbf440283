"""Issue 10's first two defects: loopback is allowlisted (a local test network is never
throttled), and a refused dialer learns why while the listener logs it, rate-limited."""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_host_util import host_pair, server_info

from rapidp2p.exceptions import ConnectionRefusedByPeer, DialError
from rapidp2p.host import Host, HostConfig, Limits
from rapidp2p.resources import Allowlist


def test_allowlist_entries() -> None:
    al = Allowlist()
    assert al.allows("127.0.0.1") and al.allows("127.8.9.10") and al.allows("::1")
    assert al.allows("::ffff:127.0.0.1")  # IPv4-mapped
    assert not al.allows("10.0.0.1") and not al.allows("::2") and not al.allows(None)
    assert not al.allows("not an ip")
    al = Allowlist(["/ip4/10.1.0.0/ipcidr/16", "/ip6/fe80::1", "192.168.1.0/24"])
    assert al.allows("10.1.2.3") and not al.allows("10.2.0.1")
    assert al.allows("fe80::1%eth0") and al.allows("192.168.1.7")
    assert not al.allows("127.0.0.1")
    with pytest.raises(ValueError):
        Allowlist(["/dns4/example.com"])


async def test_thirty_concurrent_pings_on_loopback_all_succeed() -> None:
    """More dialers at once than the per-IP cap (16) and burst: loopback is exempt."""
    limits = Limits()
    assert limits.max_connections_per_ip < 30
    async with host_pair("tcp") as (_client, server):
        clients = [await Host.create() for _ in range(30)]
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(c.ping(server_info(server), 1) for c in clients)), 60
            )
            assert len(results) == 30 and all(len(r) == 1 for r in results)
            assert server.limiter.allowlisted_connections == 30
            assert server.limiter.blocked == {}
        finally:
            await asyncio.gather(*(c.close() for c in clients))


async def test_refused_dialer_learns_why_and_listener_logs_it_rate_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = HostConfig(allowlist=[], limits=Limits(max_connections_per_ip=1))
    async with host_pair("tcp", server_config=config) as (client, server):
        await client.connect(server_info(server))
        others = [Host() for _ in range(4)]
        try:
            with caplog.at_level(logging.WARNING, logger="rapidp2p.resources"):
                for h in others:
                    with pytest.raises(DialError) as info:
                        await h.connect(server_info(server))
                    text = str(info.value)
                    assert "the listener refused the connection" in text, text
                    assert "limit reached: ip:127.0.0.1 scope, conns" in text, text
                    assert "multistream negotiation" not in text
                    (err,) = info.value.errors.values()
                    assert isinstance(err, ConnectionRefusedByPeer)
            lines = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()]
            assert len(lines) == 1, lines  # four refusals, one line (rate-limited)
            assert "ip:127.0.0.1 scope, conns" in lines[0]
            assert server.limiter.blocked == {"ip/conns": 4}
        finally:
            for h in others:
                await h.close()
