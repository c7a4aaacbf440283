"""Prometheus metrics: what a scrape shows after real traffic between hosts in one process,
the resource-manager hook, the ``/metrics`` endpoint, and running without prometheus_client."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from rapidp2p.host import Host, HostConfig  # noqa: E402
from rapidp2p.metrics import Metrics, names, serve_metrics  # noqa: E402
from rapidp2p.protocols.echo import PROTOCOL_ID as ECHO  # noqa: E402
from rapidp2p.protocols.echo import handle_echo  # noqa: E402


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.append((s.name, dict(s.labels), float(s.value)))
    return out


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for n, lab, v in samples(text):
        if n == name and all(lab.get(k) == want for k, want in labels.items()):
            total += v
    return total


def scrape(metrics: Any) -> str:
    return str(metrics.exposition().decode())


async def test_connections_streams_and_bytes_between_two_hosts() -> None:
    m = Metrics()
    payload = 3 * 1024 * 1024 + 17
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], metrics=m) as server:
        server.set_stream_handler(ECHO, handle_echo)
        async with Host(metrics=m) as client:
            await client.connect(server.full_addrs[0])
            st = await client.new_stream(server.peer_id, ECHO)
            st.write(b"a" * payload)
            got = 0
            while got < payload:
                got += len(await st.read(1 << 20))
            text = scrape(m)
            # The echo stream is open on both sides while we hold it.
            assert value(text, "libp2p_swarm_streams_open", protocol=ECHO, dir="outbound") == 1
            assert value(text, "libp2p_swarm_streams_open", protocol=ECHO, dir="inbound") == 1
            assert value(text, "libp2p_swarm_connections_open", transport="tcp") == 2
            await st.close()
            assert await st.read() == b""
            text = scrape(m)
            # Each side wrote and read the payload once (server: echo; client: request).
            pb = "libp2p_protocol_bytes_total"
            assert value(text, pb, protocol=ECHO, direction="outbound") == 2 * payload
            inbound = value(text, "libp2p_protocol_bytes_total", protocol=ECHO, direction="inbound")
            assert 2 * payload <= inbound <= 2 * payload + 64  # + the lazy multistream answer
            wire_in = value(text, "libp2p_bandwidth_bytes_total", direction="inbound")
            wire_out = value(text, "libp2p_bandwidth_bytes_total", direction="outbound")
            assert wire_in == wire_out  # both ends in this registry: every byte seen twice
            assert 2 * payload <= wire_in <= 2 * payload * 1.01 + 16384
            opened = "libp2p_swarm_connections_opened_total"
            assert value(text, opened, dir="inbound", transport="tcp", security="/noise") == 1
            assert value(text, opened, dir="outbound", transport="tcp", muxer="/yamux/1.0.0") == 1
            assert value(text, "libp2p_swarm_handshake_latency_seconds_count") == 2
            assert value(text, "libp2p_swarm_dial_latency_seconds_count", transport="tcp") == 1
            assert value(text, "libp2p_swarm_streams_opened_total", protocol=ECHO) == 2
            await client.disconnect(server.peer_id)
            for _ in range(200):
                text = scrape(m)
                if value(text, "libp2p_swarm_connections_closed_total") == 2:
                    break
                await asyncio.sleep(0.01)
            assert value(text, "libp2p_swarm_connections_closed_total") == 2
            assert value(text, "libp2p_swarm_connection_duration_seconds_count") == 2
            assert value(text, "libp2p_swarm_connections_open") == 0


async def test_quic_connections_and_bytes_are_labelled() -> None:
    m = Metrics()
    payload = 1 << 20
    async with await Host.create(listen=["/ip4/127.0.0.1/udp/0/quic-v1"], metrics=m) as server:
        server.set_stream_handler(ECHO, handle_echo)
        async with Host(metrics=m) as client:
            await client.connect(server.full_addrs[0])
            st = await client.new_stream(server.peer_id, ECHO)
            st.write(b"q" * payload)
            await st.close()
            assert len(await st.read()) == payload
            text = scrape(m)
            assert value(text, "libp2p_swarm_connections_open", transport="quic-v1") == 2
            opened = "libp2p_swarm_connections_opened_total"
            tls = "/tls/1.0.0"
            assert value(text, opened, transport="quic-v1", security=tls, muxer="quic") == 2
            wire_in = value(text, "libp2p_bandwidth_bytes_total", direction="inbound")
            assert wire_in >= 2 * payload


async def test_dial_errors_are_labelled() -> None:
    m = Metrics()
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with Host(metrics=m) as client:
        with pytest.raises(Exception):  # noqa: B017 - any dial failure; the label is the point
            await client.connect(f"/ip4/127.0.0.1/tcp/{port}")
    text = scrape(m)
    assert (
        value(text, "libp2p_swarm_dial_errors_total", transport="tcp", error="connection refused")
        == 1
    )


async def test_metrics_via_host_config_and_off_by_default() -> None:
    m = Metrics()
    async with Host(config=HostConfig(metrics=m)) as h, Host() as plain:
        assert h.metrics is m
        assert plain.metrics is None


class _FakeResourceManager:
    """The shape of ``ResourceManager.stat()`` / ``.blocked``."""

    blocked = {"transient/conns_inbound": 2, "peer/streams_inbound": 1}

    def stat(self) -> dict[str, Any]:
        return {
            "system": {"conns_inbound": 3, "conns_outbound": 2, "memory": 4096, "fd": 5},
            "transient": {"conns_inbound": 1, "streams_inbound": 7},
            "protocol:/echo/1.0.0": {"streams_inbound": 4, "memory": 1024},
            "service:kad": {"streams_outbound": 6},
            "peers": {"count": 2, "memory": 10, "streams": 3, "conns": 2},
        }


async def test_resource_manager_hook() -> None:
    m = Metrics()
    async with Host(metrics=m) as h:
        h.resource_manager = _FakeResourceManager()  # type: ignore[assignment]
        text = scrape(m)
    assert value(text, "libp2p_rcmgr_connections", dir="inbound", scope="system") == 3
    assert value(text, "libp2p_rcmgr_connections", dir="outbound", scope="system") == 2
    assert value(text, "libp2p_rcmgr_streams", scope="protocol", protocol="/echo/1.0.0") == 4
    assert value(text, "libp2p_rcmgr_streams", dir="inbound", scope="transient") == 7
    assert value(text, "libp2p_rcmgr_streams", dir="outbound", scope="service:kad") == 6
    assert value(text, "libp2p_rcmgr_memory", scope="system") == 4096
    assert value(text, "libp2p_rcmgr_memory", scope="peers") == 10
    assert value(text, "libp2p_rcmgr_fds", scope="system") == 5
    blocked = "libp2p_rcmgr_blocked_resources"
    assert value(text, blocked, scope="transient", resource="conns_inbound") == 2
    assert value(text, blocked, scope="peer", resource="streams_inbound") == 1


async def test_real_resource_manager_usage() -> None:
    """The host's own resource manager: a held connection and stream show in its scopes."""
    m = Metrics()
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], metrics=m) as server:
        server.set_stream_handler(ECHO, handle_echo)
        async with Host(metrics=m) as client:
            await client.connect(server.full_addrs[0])
            st = await client.new_stream(server.peer_id, ECHO)
            st.write(b"x")
            assert await st.readexactly(1) == b"x"
            text = scrape(m)
            conns = value(text, "libp2p_rcmgr_connections", dir="inbound")
            conns += value(text, "libp2p_rcmgr_connections", dir="outbound")
            assert conns >= 2  # each host counts its side (loopback: the allowlisted scopes)
            assert value(text, "libp2p_rcmgr_streams", scope="protocol", protocol=ECHO) >= 1
            await st.close()


async def test_kad_and_gossipsub_metrics() -> None:
    from test_kad_util import fast_config, kad_config

    from rapidp2p.kad import KadDHT, PermissiveValidator, default_validator
    from rapidp2p.pubsub import GossipSub, GossipSubParams

    m = Metrics()
    hosts = [
        await Host.create(listen=["/memory/0"], config=fast_config(), metrics=m) for _ in range(3)
    ]
    try:
        dhts = [
            KadDHT(h, kad_config(), validator=default_validator({"t": PermissiveValidator()}))
            for h in hosts
        ]
        for d in dhts:
            await d.start()
        subs = [
            await h.add_service(GossipSub(h, params=GossipSubParams(heartbeat_interval=0.05)))
            for h in hosts
        ]
        await hosts[1].connect(hosts[0].full_addrs[0])
        await hosts[2].connect(hosts[0].full_addrs[0])
        await dhts[1].bootstrap([str(hosts[0].full_addrs[0])])
        await dhts[2].get_closest_peers(b"some key")
        s1 = await subs[1].subscribe("topic")
        s2 = await subs[2].subscribe("topic")
        await subs[0].subscribe("topic")
        text = ""
        for _ in range(200):  # until the meshes formed
            text = scrape(m)
            if value(text, "libp2p_gossipsub_mesh_peer_counts", topic="topic") >= 4:
                break
            await asyncio.sleep(0.05)
        await subs[1].publish("topic", b"hello")
        await asyncio.wait_for(s2.get(), 10)
        await asyncio.wait_for(s1.get(), 10)
        for _ in range(100):
            text = scrape(m)
            if value(text, "libp2p_gossipsub_accepted_messages_per_topic_total") >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await asyncio.gather(*(h.close() for h in hosts), return_exceptions=True)
    assert value(text, "libp2p_gossipsub_mesh_peer_counts", topic="topic") >= 4
    assert value(text, "libp2p_gossipsub_topic_msg_published_total", topic="topic") == 1
    # Two receivers deliver it; received (deduplicated) + duplicates = everything received.
    assert value(text, "libp2p_gossipsub_accepted_messages_per_topic_total", topic="topic") == 2
    unfiltered = value(text, "libp2p_gossipsub_topic_msg_recv_counts_unfiltered_total")
    received = value(text, "libp2p_gossipsub_topic_msg_recv_counts_total")
    dup = value(text, "libp2p_gossipsub_duplicate_messages_per_topic_total")
    assert received == 2 and unfiltered == received + dup
    # Score buckets go negative, so the family has no _count/_sum: the +Inf bucket counts.
    assert value(text, "libp2p_gossipsub_score_per_mesh_bucket", topic="topic", le="+Inf") >= 4
    assert value(text, "libp2p_kad_query_result_duration_seconds_count") >= 2  # bootstrap + ours
    assert value(text, "libp2p_kad_query_result_num_requests_count", type="get_closest_peers") >= 2
    assert value(text, "libp2p_kad_inbound_requests_total", request="find_node") >= 2
    assert value(text, "libp2p_kad_routing_table_peers") >= 3


def test_every_exported_name_is_listed() -> None:
    """``names`` (what the dashboard test checks against) lists exactly the families a real
    scrape shows."""

    async def run() -> set[str]:
        m = Metrics()
        async with Host(metrics=m):
            text = scrape(m)
        # prometheus_client adds a ``<name>_created`` gauge per counter and histogram.
        return {
            fam.name
            for fam in text_string_to_metric_families(text)
            if not fam.name.endswith("_created")
        }

    families = asyncio.run(run())
    declared = {n.removesuffix("_total") for n in names.COUNTERS} | set(names.GAUGES)
    declared |= set(names.HISTOGRAMS)
    # Every family is present (empty until something happens), none is undeclared.
    assert families == declared, (families - declared, declared - families)


async def test_metrics_endpoint_serves_and_refuses() -> None:
    m = Metrics()
    async with Host(metrics=m), await serve_metrics(m, "127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.port}"

        def get(path: str) -> tuple[int, str, str]:
            try:
                with urllib.request.urlopen(url + path, timeout=10) as r:
                    return r.status, r.headers["Content-Type"], r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, "", ""

        status, ctype, body = await asyncio.to_thread(get, "/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
        assert "libp2p_swarm_connections_open" in body
        assert (await asyncio.to_thread(get, "/other"))[0] == 404
        # A scraper that never finishes its request does not block the next one.
        idle = await asyncio.open_connection("127.0.0.1", server.port)
        assert (await asyncio.to_thread(get, "/metrics"))[0] == 200
        idle[1].close()


def test_without_prometheus_client() -> None:
    """Metrics are unavailable (a clear error), hosts and the CLI still work."""
    code = r"""
import sys
sys.modules["prometheus_client"] = None  # as if it were not installed
import asyncio
from rapidp2p.host import Host
from rapidp2p.metrics import MetricsUnavailable, available
assert not available()
try:
    from rapidp2p.metrics import Metrics
except MetricsUnavailable as exc:
    print("unavailable:", exc)
else:
    raise SystemExit("Metrics imported without prometheus_client")
async def main():
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as a, Host() as b:
        await b.connect(a.full_addrs[0])
        print("rtt", len(await b.ping(a.peer_id, 1)))
asyncio.run(main())
from rapidp2p.cli.main import main as cli
print("cli", cli(["listen", "--metrics", "127.0.0.1:0"]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "unavailable: metrics need prometheus_client" in out.stdout
    assert "rtt 1" in out.stdout
    assert "cli 1" in out.stdout and "prometheus_client" in out.stderr
