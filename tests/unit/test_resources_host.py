"""The resource manager inside a host (issue 10; ROBUSTNESS 17, 21): floods stay within their
scopes, every refusal names its scope, honest peers keep being served."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from test_host_util import ECHO, echo_handler

from rapidp2p.crypto import generate_keypair
from rapidp2p.exceptions import DialError, Libp2pError
from rapidp2p.host import Host, HostConfig, Limits
from rapidp2p.resources.limits import MiB, autoscale
from rapidp2p.transport.tcp import TcpTransport


def config(**scopes: dict[str, object]) -> HostConfig:
    base = autoscale(memory=1 << 30, fd_limit=4096)
    return HostConfig(resource_limits=base.apply(scopes))


async def _until(cond: object, what: str) -> None:
    for _ in range(4000):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def _echo_once(client: Host, server: Host, data: bytes = b"honest") -> bytes:
    s = await client.new_stream(server.full_addrs[0], ECHO)
    s.write(data)
    await s.close()
    return await asyncio.wait_for(s.read(), 30)


async def test_stream_flood_stays_within_the_peer_scope(caplog: pytest.LogCaptureFixture) -> None:
    """10,000 stream opens from one peer: at most the peer scope's 64 live at once, the rest
    reset with the peer scope named; another peer is still served."""
    cfg = config(peer={"streams_inbound": 64}, system={"streams_inbound": 1000})
    server = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=cfg)
    server.set_stream_handler(ECHO, echo_handler)
    attacker, honest = await Host.create(), await Host.create()
    try:
        conn = await attacker.connect(server.full_addrs[0])
        peak = 0
        rm = server.resource_manager

        def sample() -> int:
            nonlocal peak
            st = rm.stat_peer(attacker.peer_id)
            now = 0 if st is None else st["streams_inbound"]
            peak = max(peak, now)
            return now

        with caplog.at_level(logging.WARNING, logger="rapidp2p.resources"):
            streams = []
            for i in range(10_000):
                streams.append(await conn.open_stream())  # a SYN, never a byte
                if i % 500 == 0:
                    sample()
                    await asyncio.sleep(0)
            await _until(
                lambda: (
                    rm.blocked.get("peer/streams_inbound", 0) >= 10_000 - 64 - 4
                    and rm.blocked["peer/streams_inbound"] == sum(1 for s in streams if s.is_reset)
                ),
                "every refusal reached the client",
            )
        sample()
        assert peak == 64  # the limit is reached, never passed (identify's stream counts too)
        blocked = rm.blocked["peer/streams_inbound"]
        live = sum(1 for s in streams if not s.is_reset)
        assert live + blocked == 10_000 and live <= 64
        assert set(rm.blocked) == {"peer/streams_inbound"}
        logged = [r.getMessage() for r in caplog.records if "inbound stream" in r.getMessage()]
        assert logged and all(
            f"peer:{attacker.peer_id} scope, streams_inbound" in m for m in logged
        )
        # The node keeps serving another peer, and the attacker's own connection still works.
        assert await _echo_once(honest, server) == b"honest"
        for s in streams:
            s.reset()
        await _until(lambda: sample() == 0, "the flood's streams given back")
        assert await _echo_once(attacker, server, b"still") == b"still"
    finally:
        for h in (attacker, honest, server):
            await h.close()
    stat = server.resource_manager.stat()
    assert stat["system"]["streams_inbound"] == 0 and stat["peers"]["count"] == 0


async def test_per_ip_limit_from_several_addresses_names_the_scope(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = HostConfig(allowlist=[], limits=Limits(max_connections_per_ip=2))
    server = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=cfg)
    ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    clients = [
        await Host.create(transports=[TcpTransport(local_ip=ip)]) for ip in ips for _ in range(3)
    ]
    try:
        results = await asyncio.gather(
            *(c.connect(server.full_addrs[0]) for c in clients), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 3  # one per address: the third of each
        for ip in ips:
            assert any(f"ip:{ip} scope, conns" in str(e) for e in errors), (ip, errors)
        assert all("the listener refused the connection" in str(e) for e in errors)
        assert server.limiter.per_ip == {ip: 2 for ip in ips}
        assert server.limiter.blocked == {"ip/conns": 3}
    finally:
        for h in [*clients, server]:
            await h.close()


async def test_per_peer_connection_limit_names_the_peer_scope(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three hosts with one identity each open a connection: the peer scope keeps two."""
    server = await Host.create(
        listen=["/ip4/127.0.0.1/tcp/0"], config=config(peer={"conns_inbound": 2})
    )
    key = generate_keypair()
    twins = [await Host.create(key) for _ in range(3)]
    try:
        with caplog.at_level(logging.WARNING, logger="rapidp2p.resources"):
            for t in twins:
                with contextlib.suppress(DialError, Libp2pError):
                    await t.connect(server.full_addrs[0])
            rm = server.resource_manager
            await _until(lambda: rm.blocked.get("peer/conns_inbound") == 1, "third refused")
        await _until(lambda: len(server.connections(twins[0].peer_id)) == 2, "two kept")
        st = rm.stat_peer(twins[0].peer_id)
        assert st is not None and st["conns_inbound"] == 2
        assert any(
            f"peer:{twins[0].peer_id} scope, conns_inbound" in r.getMessage()
            for r in caplog.records
        )
    finally:
        for h in [*twins, server]:
            await h.close()
    assert server.resource_manager.system.is_idle


async def test_window_growth_is_reserved_as_it_happens_and_given_back() -> None:
    data = b"x" * (24 * MiB)
    initial = 256 * 1024

    async def transfer(cfg: HostConfig) -> tuple[int, int, int]:
        server = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=cfg)
        server.set_stream_handler(ECHO, echo_handler)
        client = await Host.create()
        try:
            s = await client.new_stream(server.full_addrs[0], ECHO)
            ((mux, cs),) = server._conn_scopes.items()
            peak_grant = peak_growth = 0
            assert cs.grant == 0  # nothing reserved up front

            async def reader() -> int:
                nonlocal peak_grant, peak_growth
                n = 0
                while chunk := await s.read(1 << 20):
                    n += len(chunk)
                    growth = mux.receive_window_total - initial * mux.num_streams
                    assert growth <= cs.grant <= cs.memory  # every grown byte is reserved
                    peak_grant = max(peak_grant, cs.grant)
                    peak_growth = max(peak_growth, growth)
                return n

            task = asyncio.ensure_future(reader())
            s.write(data)
            await s.drain()
            await s.close()
            got = await asyncio.wait_for(task, 120)
            # The stream ended both ways: its growth is given back, the connection idles free.
            await _until(lambda: mux.num_streams == 0 and cs.memory == 0, "growth given back")
            assert server.resource_manager.stat_peer(client.peer_id) is not None
            return got, peak_grant, peak_growth
        finally:
            await client.close()
            await server.close()

    got, peak_grant, peak_growth = await transfer(HostConfig())
    assert got == len(data) and peak_growth <= peak_grant <= 16 * MiB
    # A conn scope of 1 MiB: growth stops there (the window grows by what is granted), the
    # data still flows.
    got, peak_grant, peak_growth = await transfer(config(conn={"memory": "1 MiB"}))
    assert got == len(data) and peak_growth <= peak_grant <= 1 * MiB


async def test_limits_file_and_flat_limits_reach_the_host(tmp_path: object) -> None:
    import json
    from pathlib import Path

    path = Path(str(tmp_path)) / "limits.json"
    path.write_text(json.dumps({"system": {"conns_inbound": 77}, "peer": {"streams": 9}}))
    async with Host(config=HostConfig(limits_file=str(path))) as host:
        lim = host.resource_manager.limits
        assert lim.system.conns_inbound == 77 and lim.peer.streams == 9
    # A raised flat cap is never undone by a scoped default.
    async with Host(config=HostConfig(limits=Limits(max_streams_per_connection=4096))) as host:
        lim = host.resource_manager.limits
        assert lim.peer.streams_inbound >= 4096 and lim.system.streams_inbound >= 4096
