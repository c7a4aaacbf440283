"""Issue 9: one service shape. ``host.add_service`` starts a service once, hands it every
connection (existing and new), closes it with the host; the per-protocol inbound-stream cap
lives in the host; pubsub and the DHT start only through that lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from rapidp2p import Stream
from rapidp2p.exceptions import HostClosedError, LocalProtocolError, StreamResetError
from rapidp2p.host import Host, HostConfig, ServiceBase
from rapidp2p.host.services import PingService
from rapidp2p.kad import KadConfig, KadDHT
from rapidp2p.protocols.memory import memory_stream_pair
from rapidp2p.protocols.streams import close_quietly, half_close
from rapidp2p.pubsub import GossipSub
from rapidp2p.transport.contracts import Connection

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
PROTO = "/test/svc/1.0.0"


class Recorder(ServiceBase):
    """Records every call the host makes."""

    def __init__(self, host: Host, log: list[str], *, fail_start: bool = False) -> None:
        self.host = host
        self.log = log
        self.fail_start = fail_start
        self.conns: list[Connection] = []
        self.protocols: Sequence[str] = (PROTO,)

    async def _start(self) -> None:
        self.log.append("start")
        if self.fail_start:
            raise RuntimeError("cannot start")
        self.host.set_stream_handler(PROTO, self._handle)

    def on_connection(self, conn: Connection) -> None:
        self.conns.append(conn)

    async def close(self) -> None:
        self.log.append(f"close {id(self)}")
        await super().close()

    async def _handle(self, stream: Stream) -> None:
        await stream.close()


async def test_add_service_lifecycle() -> None:
    async with await Host.create(listen=[LOOPBACK]) as server, Host() as client:
        await client.connect(server.full_addrs[0])
        for _ in range(500):  # the server registers its side a moment later
            if server.is_connected(client.peer_id):
                break
            await asyncio.sleep(0.01)
        log: list[str] = []
        svc = Recorder(server, log)
        assert await server.add_service(svc) is svc
        assert log == ["start"] and PROTO in server.protocols
        assert len(svc.conns) == 1  # the connection that already existed
        await server.add_service(svc)  # twice: nothing more
        await svc.start()  # idempotent too
        assert log == ["start"]
        assert server.services.find(Recorder) is svc
        assert server.services.find(PingService) is not None  # defaults come first
        async with Host() as third:
            await third.connect(server.full_addrs[0])
            for _ in range(500):
                if len(svc.conns) == 2:  # a new connection reaches the service
                    break
                await asyncio.sleep(0.01)
            assert len(svc.conns) == 2
        other = Recorder(server, log)
        await other.start()  # start() registers through the host
        assert server.services.is_registered(other)
    assert log == ["start", "start", f"close {id(svc)}", f"close {id(other)}"]  # in order
    with pytest.raises(HostClosedError):
        await server.add_service(Recorder(server, []))
    with pytest.raises(LocalProtocolError):
        await svc.start()  # closed


async def test_add_service_starts_the_host_and_drops_a_failing_service() -> None:
    host = Host()
    try:
        failing = Recorder(host, [], fail_start=True)
        with pytest.raises(RuntimeError):
            await host.add_service(failing)
        assert not host.services.is_registered(failing)
        assert host.services.find(PingService) is not None  # the host was started
        ok = await host.add_service(Recorder(host, []))
        assert host.services.is_registered(ok)
    finally:
        await host.close()


async def test_service_of_another_host_is_refused() -> None:
    async with Host() as a, Host() as b:
        with pytest.raises(ValueError):
            await Recorder(a, []).start(b)


async def test_per_protocol_inbound_cap_in_the_host() -> None:
    release = asyncio.Event()
    entered = 0

    async def hold(stream: Stream) -> None:
        nonlocal entered
        entered += 1
        await stream.read(1)
        await release.wait()
        await stream.close()

    default_cap = HostConfig().limits.max_inbound_streams_per_protocol
    async with await Host.create(listen=[LOOPBACK]) as server, Host() as client:
        server.set_stream_handler(PROTO, hold, max_inbound_streams=2)
        assert server.inbound_stream_cap(PROTO) == 2
        assert server.inbound_stream_cap("/other") == default_cap
        streams = [await client.new_stream(server.full_addrs[0], PROTO) for _ in range(4)]
        for s in streams:
            s.write(b"x")
            await s.drain()

        async def outcome(s: Stream) -> str:
            try:
                return "served" if await s.read(1) == b"" else "data"
            except StreamResetError:
                return "reset"

        reads = [asyncio.ensure_future(outcome(s)) for s in streams]
        # The two streams over the cap are reset while the handler holds the other two.
        done, pending = set(), set(reads)
        while len(done) < 2 and pending:
            finished, pending = await asyncio.wait(
                pending, timeout=10, return_when=asyncio.FIRST_COMPLETED
            )
            assert finished, "no stream was reset"
            done |= finished
        assert sorted(t.result() for t in done) == ["reset", "reset"]
        assert entered == 2
        release.set()
        results = await asyncio.wait_for(asyncio.gather(*reads), 10)
        assert sorted(results) == ["reset", "reset", "served", "served"]
        server.set_stream_handler(PROTO, hold)  # re-registered without a cap: the default
        assert server.inbound_stream_cap(PROTO) == default_cap
        with pytest.raises(ValueError):
            server.set_stream_handler(PROTO, hold, max_inbound_streams=0)


async def test_pubsub_starts_only_through_the_host() -> None:
    async with Host() as host:
        ps = GossipSub(host)
        assert "/meshsub/1.1.0" not in host.protocols  # the constructor registers nothing
        with pytest.raises(LocalProtocolError, match="not started"):
            await ps.subscribe("t")
        await ps.start()
        assert host.services.is_registered(ps) and "/meshsub/1.1.0" in host.protocols
        await ps.subscribe("t")
    assert ps._closed  # closed with the host


async def test_dht_registers_with_the_host_and_its_cap() -> None:
    async with await Host.create(listen=[LOOPBACK]) as host:
        dht = KadDHT(host, KadConfig(mode="server", max_inbound_streams_per_connection=7))
        await dht.start()  # the old entry point: now registered with the host
        assert host.services.find(KadDHT) is dht
        assert host.inbound_stream_cap(dht.protocol) == 7
    assert dht.is_closed  # the host closed it


async def test_one_close_helper_for_sync_and_async_streams() -> None:
    a, b = memory_stream_pair()
    await half_close(a)  # a sync close
    assert await b.read(1) == b""
    async with await Host.create(listen=[LOOPBACK]) as server, Host() as client:
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def read_all(stream: Stream) -> None:
            got.set_result(await stream.read(100))
            stream.reset()

        server.set_stream_handler(PROTO, read_all)
        s = await client.new_stream(server.full_addrs[0], PROTO)
        s.write(b"hi")
        await half_close(s)  # an async close
        assert await asyncio.wait_for(got, 10) == b"hi"
        await close_quietly(s)  # the peer reset it: quietly ignored
