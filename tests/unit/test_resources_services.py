"""Services account their streams in the resource manager's ``service:<name>`` scope (issue
10): ping, identify, kad, pubsub, rendezvous and a user's own service; a service limit refuses
streams in both directions and the refusal names the scope, at the caller and in the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from rapidp2p.discovery.rendezvous import RendezvousClient, RendezvousServer
from rapidp2p.exceptions import Libp2pError, ResourceLimitExceeded
from rapidp2p.host import Host, HostConfig
from rapidp2p.host.service import ServiceBase, service_name
from rapidp2p.kad import KadConfig, KadDHT
from rapidp2p.protocols.ping import PROTOCOL_ID as PING
from rapidp2p.pubsub import GossipSub, GossipSubParams
from rapidp2p.resources.limits import autoscale

TCP = "/ip4/127.0.0.1/tcp/0"


def config(**scopes: dict[str, object]) -> HostConfig:
    base = autoscale(memory=1 << 30, fd_limit=4096)
    return HostConfig(resource_limits=base.apply(scopes))


async def _until(cond: Callable[[], bool], what: str) -> None:
    for _ in range(600):  # 30 s: generous for a loaded machine
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _svc(host: Host, name: str) -> dict[str, int]:
    return host.resource_manager.stat().get(f"service:{name}", {})


async def test_ping_service_limit_refuses_inbound_streams(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = config(services={"libp2p.ping": {"streams_inbound": 2}})
    async with (
        await Host.create(listen=[TCP], config=cfg) as server,
        await Host.create() as client,
    ):
        addr = server.full_addrs[0]
        held = [await client.new_stream(addr, PING, lazy=False) for _ in range(2)]
        for s in held:  # each answered: served, and counted in the service scope
            s.write(b"x" * 32)
            assert await asyncio.wait_for(s.readexactly(32), 30) == b"x" * 32
        assert _svc(server, "libp2p.ping")["streams_inbound"] == 2
        with (
            caplog.at_level(logging.WARNING, logger="rapidp2p.resources"),
            pytest.raises((Libp2pError, asyncio.IncompleteReadError)),
        ):
            # reset by the server after negotiation: at open or at the first read
            third = await client.new_stream(addr, PING, lazy=False)
            third.write(b"y" * 32)
            await asyncio.wait_for(third.readexactly(32), 30)
        rm = server.resource_manager
        assert rm.blocked.get("service/streams_inbound") == 1
        assert any("service:libp2p.ping" in r.getMessage() for r in caplog.records)
        assert _svc(server, "libp2p.ping")["streams_inbound"] == 2
        for s in held:
            await s.close()
        await _until(lambda: _svc(server, "libp2p.ping")["streams_inbound"] == 0, "release")
        assert len(await client.ping(addr)) == 1  # freed slots serve again


async def test_kad_and_rendezvous_outbound_limits_name_the_service_scope() -> None:
    cfg = config(
        services={"libp2p.kad": {"streams_outbound": 0}, "libp2p.rendezvous": {"streams": 0}}
    )
    async with (
        await Host.create(listen=[TCP]) as server,
        await Host.create(config=cfg) as client,
    ):
        sdht = await server.add_service(KadDHT(server, KadConfig(mode="server")))
        cdht = await client.add_service(KadDHT(client, KadConfig(mode="client")))
        await server.add_service(RendezvousServer())
        rv = RendezvousClient()
        await rv.start(client)
        addr = server.full_addrs[0]
        with pytest.raises(ResourceLimitExceeded) as err:
            await client.new_stream(addr, sdht.protocol)
        assert err.value.scope == "service:libp2p.kad"
        assert err.value.limit == "streams_outbound"
        assert cdht.protocol == sdht.protocol
        with pytest.raises(ResourceLimitExceeded) as err:
            await rv.register(addr, "ns")
        assert err.value.scope == "service:libp2p.rendezvous"
        blocked = client.resource_manager.blocked
        assert blocked.get("service/streams_outbound") == 1
        assert blocked.get("service/streams") == 1
        # ping is not limited: the connection and other services are untouched
        assert len(await client.ping(addr)) == 1


async def test_gossipsub_streams_in_the_pubsub_scope_and_its_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = config(services={"libp2p.pubsub": {"streams_inbound": 1}})
    async with (
        await Host.create(listen=[TCP], config=cfg) as hub,
        await Host.create() as a,
        await Host.create() as b,
    ):
        gs = [
            await h.add_service(GossipSub(h, params=GossipSubParams(heartbeat_interval=0.1)))
            for h in (hub, a, b)
        ]
        assert gs[0].service_name == "libp2p.pubsub"
        await a.connect(hub.full_addrs[0])
        # one long-lived stream each way: both counted in the hub's pubsub service scope
        await _until(
            lambda: (
                _svc(hub, "libp2p.pubsub").get("streams_inbound") == 1
                and _svc(hub, "libp2p.pubsub").get("streams_outbound") == 1
            ),
            "a's pubsub streams",
        )
        with caplog.at_level(logging.WARNING, logger="rapidp2p.resources"):
            await b.connect(hub.full_addrs[0])
            await _until(
                lambda: hub.resource_manager.blocked.get("service/streams_inbound", 0) >= 1,
                "b's inbound pubsub stream refused",
            )
        assert _svc(hub, "libp2p.pubsub")["streams_inbound"] == 1
        assert any("service:libp2p.pubsub" in r.getMessage() for r in caplog.records)
        # identify ran on both connections, accounted in its own service scope
        assert "service:libp2p.identify" in hub.resource_manager.stat()


class _Echo(ServiceBase):
    protocols = ("/test/svc-echo/1.0.0",)

    def __init__(self, host: Host) -> None:
        self.host = host

    async def _start(self) -> None:
        async def echo(stream: object) -> None:
            data = await stream.read()  # type: ignore[attr-defined]
            stream.write(data)  # type: ignore[attr-defined]
            await stream.close()  # type: ignore[attr-defined]

        self.host.set_stream_handler(self.protocols[0], echo)  # type: ignore[arg-type]


async def test_a_users_service_is_scoped_by_its_class_name() -> None:
    cfg = config(services={"_Echo": {"streams_inbound": 0}})
    async with (
        await Host.create(listen=[TCP], config=cfg) as server,
        await Host.create() as client,
    ):
        svc = await server.add_service(_Echo(server))
        assert service_name(svc) == "_Echo"
        assert server.services.scope_of("/test/svc-echo/1.0.0") == "_Echo"
        with pytest.raises((Libp2pError, asyncio.IncompleteReadError)):
            s = await client.new_stream(server.full_addrs[0], "/test/svc-echo/1.0.0", lazy=False)
            s.write(b"hi")
            await s.close()
            data = await asyncio.wait_for(s.read(), 30)
            assert data  # an empty read also means refused
            raise AssertionError("served past a zero service limit")
        assert server.resource_manager.blocked.get("service/streams_inbound") == 1
