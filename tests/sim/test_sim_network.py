"""The simulated network: delays from the model, ordering, NAT, partitions, determinism,
and the unchanged Host running over it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rapidp2p.crypto.ed25519 import Ed25519PrivateKey
from rapidp2p.exceptions import Libp2pError, TransportError
from rapidp2p.host import Host
from rapidp2p.sim.clock import run
from rapidp2p.sim.geo import Placement
from rapidp2p.sim.kad import host_config
from rapidp2p.sim.network import NetConfig, SimNetwork, SimNode

EU = Placement("eu-west", 0.005, 20e6, 100e6)
ASIA = Placement("ap-northeast", 0.002, 1e9, 1e9)


class Recorder(asyncio.Protocol):
    """A raw protocol: logs (virtual time, bytes) of each arrival."""

    def __init__(self) -> None:
        self.got: list[tuple[float, bytes]] = []
        self.lost: list[BaseException | None] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got.append((asyncio.get_running_loop().time(), data))

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)


async def pair(net: SimNetwork, a: SimNode, b: SimNode) -> tuple[Recorder, Recorder, float]:
    """Dials b from a with raw recorders; returns both and the dial's duration."""
    servers: list[Recorder] = []
    tb = net.transport(b)

    def accept(proto: Any) -> None:
        servers.append(proto)

    await tb.listen(None, Recorder, accept)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    client = await net.connect(a, b.port, Recorder)  # type: ignore[arg-type, return-value]
    return client, servers[0], loop.time() - t0  # type: ignore[return-value]


def test_dial_costs_a_round_trip_and_bytes_arrive_in_order_after_the_latency() -> None:
    async def main() -> None:
        net = SimNetwork(1, NetConfig(jitter=0.1))
        a, b = net.add_node(placement=EU), net.add_node(placement=ASIA)
        client, server, dial = await pair(net, a, b)
        one_way = net.latency(a, b)
        assert one_way == pytest.approx(0.105 + 0.005 + 0.002)
        assert dial == pytest.approx(2 * one_way)
        t0 = asyncio.get_running_loop().time()
        for i in range(50):
            client.transport.write(bytes([i]) * 10)
        await asyncio.sleep(1.0)
        data = b"".join(d for _, d in server.got)
        assert data == b"".join(bytes([i]) * 10 for i in range(50))
        first = server.got[0][0] - t0
        assert one_way <= first <= one_way * 1.1 + 0.001

    run(main())


def test_uplink_bandwidth_serialises_a_large_write() -> None:
    async def main() -> None:
        net = SimNetwork(1, NetConfig(jitter=0.0))
        a, b = net.add_node(placement=EU), net.add_node(placement=ASIA)
        client, server, _ = await pair(net, a, b)
        t0 = asyncio.get_running_loop().time()
        client.transport.write(b"x" * 500_000)  # 4 Mbit on a 20 Mbit/s uplink: 0.2 s
        await asyncio.sleep(2.0)
        took = server.got[-1][0] - t0
        assert took == pytest.approx(net.latency(a, b) + 0.2 + 4e6 / 1e9)

    run(main())


def test_loss_delays_by_retransmission_timeouts_but_loses_nothing() -> None:
    async def main() -> tuple[float, bytes]:
        net = SimNetwork(3, NetConfig(jitter=0.0, loss=0.3))
        a, b = net.add_node(placement=EU), net.add_node(placement=EU)
        client, server, _ = await pair(net, a, b)
        t0 = asyncio.get_running_loop().time()
        payload = bytes(range(256)) * 40
        for i in range(0, len(payload), 1000):
            client.transport.write(payload[i : i + 1000])
        await asyncio.sleep(30.0)
        assert b"".join(d for _, d in server.got) == payload
        return server.got[-1][0] - t0, payload

    took, _ = run(main())
    assert took >= 0.2  # at least one minimum RTO: some of the 11 writes lost a segment


def test_nat_node_cannot_be_dialled_but_dials_out() -> None:
    async def main() -> None:
        net = SimNetwork(1, NetConfig(connect_timeout=7.0))
        open_node, natted = net.add_node(placement=EU), net.add_node(placement=EU, nat=True)
        await net.transport(natted).listen(None, Recorder, lambda p: None)  # type: ignore[arg-type]
        await net.transport(open_node).listen(None, Recorder, lambda p: None)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(TransportError, match="timed out"):
            await net.connect(open_node, natted.port, Recorder)  # type: ignore[arg-type]
        assert loop.time() - t0 == pytest.approx(7.0 + net.latency(open_node, natted))
        await net.connect(natted, open_node.port, Recorder)  # type: ignore[arg-type]

    run(main())


def test_partition_blackholes_open_connections_and_blocks_new_dials() -> None:
    async def main() -> None:
        net = SimNetwork(1, NetConfig(broken_timeout=20.0, connect_timeout=5.0))
        a, b = net.add_node(placement=EU), net.add_node(placement=ASIA)
        client, server, _ = await pair(net, a, b)
        loop = asyncio.get_running_loop()
        net.partition([[a], [b]])
        t0 = loop.time()
        client.transport.write(b"lost")
        await asyncio.sleep(10)
        assert server.got == [] and client.lost == []
        await asyncio.sleep(11)
        assert len(client.lost) == 1 and isinstance(client.lost[0], TimeoutError)
        assert len(server.lost) == 1
        assert loop.time() - t0 >= 20.0
        with pytest.raises(TransportError):
            await net.connect(a, b.port, Recorder)  # type: ignore[arg-type]
        net.heal()
        await net.connect(a, b.port, Recorder)  # type: ignore[arg-type]

    run(main())


def _host_trace(seed: int, security: str) -> tuple[str, float, str]:
    async def main() -> tuple[str, float, str]:
        net = SimNetwork(seed, NetConfig(loss=0.01))
        hosts = []
        for i in range(3):
            node = net.add_node()
            h = Host(
                Ed25519PrivateKey.from_seed(bytes([i + 1]) * 32),
                host_config(security),
                transports=[net.transport(node)],
            )
            await h.start()
            await h.listen("/memory/0")
            hosts.append(h)
        loop = asyncio.get_running_loop()
        conn = await hosts[0].connect(hosts[1].full_addrs[0])
        await hosts[2].connect(hosts[1].full_addrs[0])
        await asyncio.sleep(5)
        took = loop.time()
        sec = str(conn.security)
        for h in hosts:
            await h.close()
        return net.trace_digest, took, sec

    return run(main())


@pytest.mark.parametrize("security", ["noise", "plaintext"])
def test_hosts_connect_over_the_simulated_network_deterministically(security: str) -> None:
    digest, _, sec = _host_trace(5, security)
    assert sec == ("/noise" if security == "noise" else "/plaintext/2.0.0")
    assert _host_trace(5, security)[0] == digest
    assert _host_trace(6, security)[0] != digest


def test_a_dial_across_a_partition_fails_through_the_host() -> None:
    async def main() -> None:
        net = SimNetwork(1, NetConfig(connect_timeout=3.0))
        hosts = []
        for i in range(2):
            node = net.add_node()
            h = Host(
                Ed25519PrivateKey.from_seed(bytes([i + 1]) * 32),
                host_config("noise"),
                transports=[net.transport(node)],
            )
            await h.start()
            await h.listen("/memory/0")
            hosts.append(h)
        net.partition([[net.nodes[0]], [net.nodes[1]]])
        with pytest.raises(Libp2pError):
            await hosts[0].connect(hosts[1].full_addrs[0])
        for h in hosts:
            await h.close()

    run(main())
