"""Kademlia and GossipSub between rapidp2p and go-libp2p over QUIC v1 (issue 11: "once"),
with the connections checked to be QUIC ones; and go-libp2p over IPv6 loopback (``::1``)
both ways (ping, identify).

The go peer's CLI is the one the TCP tests use (``run listen --dht server``, ``run dht``,
``run pubsub``), given QUIC listen and bootstrap addresses.
"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from peers import PeerProcess, _peer_env, build_peer, dial_from_peer, find_result

from rapidp2p.host import Host, PeerConnected
from rapidp2p.kad import KadConfig, KadDHT, PermissiveValidator, default_validator
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.pubsub import GossipSub
from rapidp2p.transport.quic import is_quic_addr

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

QUIC = "/ip4/127.0.0.1/udp/0/quic-v1"
QUIC6 = "/ip6/::1/udp/0/quic-v1"
TOPIC = "rapidp2p-quic-interop"


async def _go_dht(*args: str) -> tuple[int, str, str]:
    """``go-peer dht ...`` as a fresh client process: (exit code, stdout, stderr)."""
    directory = build_peer("go-peer")
    proc = await asyncio.create_subprocess_exec(
        str(directory / "run"),
        "dht",
        *args,
        cwd=directory,
        env=_peer_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_kademlia_with_go_over_quic() -> None:
    async with (
        PeerProcess("go-peer", QUIC, extra_args=["--dht", "server"]) as go,
        await Host.create(listen=[QUIC]) as host,
    ):
        assert is_quic_addr(Multiaddr(go.addr)), go.addr
        connected = host.events.subscribe(PeerConnected)
        dht = KadDHT(
            host,
            KadConfig(mode="server", request_timeout=10.0, query_timeout=30.0),
            validator=default_validator({"test": PermissiveValidator()}),
        )
        await dht.start()
        try:
            # rapidp2p dials go over QUIC and stores a record through it.
            await dht.bootstrap([go.addr])
            go_id = PeerId.from_string(go.peer_id)
            assert go_id in dht.routing
            assert all(c.muxer == "quic" for c in host.connections(go_id))
            assert await dht.put_value(b"/test/over-quic", b"kad-over-quic") >= 1
            # A go client dials us over QUIC (our only address) and finds the record.
            ours = next(a for a in host.full_addrs if is_quic_addr(a))
            code, out, err = await _go_dht("get", "/test/over-quic", "--bootstrap", str(ours))
            assert code == 0 and out.strip() == "kad-over-quic", err
            while True:  # the go client's connection to us, among the events
                ev = await connected.get(timeout=30)
                if isinstance(ev, PeerConnected) and ev.peer_id != go_id:
                    break
            assert ev.conn is not None and ev.conn.muxer == "quic"
            assert ev.conn.direction == "inbound"
        finally:
            await dht.close()


async def test_gossipsub_with_go_over_quic() -> None:
    extra = ["--topic", TOPIC, "--publish", "go->rapid"]
    async with (
        PeerProcess("go-peer", QUIC, command="pubsub", extra_args=extra) as go,
        await Host.create(listen=[QUIC]) as host,
    ):
        ps = await host.add_service(GossipSub(host))
        sub = await ps.subscribe(TOPIC)
        conn = await host.connect(go.addr)
        assert conn.muxer == "quic" and conn.security == "/tls/1.0.0"
        msg = await sub.get(timeout=30)
        assert msg.data == b"go->rapid"
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while not ps.topic_peers(TOPIC):
            assert loop.time() < end, "go never subscribed"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # a heartbeat: go's mesh includes us
        await ps.publish(TOPIC, b"rapid->go")
        while True:
            line = await go.next_line(30)
            if line.startswith("RECEIVED ") and line.split(" ", 1)[1] == "rapid->go":
                break


def _need_ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"IPv6 loopback unavailable under CI: {exc}")
        pytest.skip(f"IPv6 loopback (::1) unavailable: {exc}")


async def test_rapidp2p_dials_go_over_ipv6_quic() -> None:
    _need_ipv6_loopback()
    async with PeerProcess("go-peer", QUIC6) as go, Host() as host:
        assert go.addr.startswith("/ip6/::1/udp/") and is_quic_addr(Multiaddr(go.addr)), go.addr
        conn = await host.connect(go.addr)
        assert conn.muxer == "quic" and str(conn.remote_addr).startswith("/ip6/::1/")
        go_id = PeerId.from_string(go.peer_id)
        assert len(await host.ping(go_id, 2)) == 2
        ident = host.identify
        assert ident is not None
        info = await ident.identify_peer(conn)
        assert any(str(a).startswith("/ip6/::1/udp/") for a in info.listen_addrs)
        assert info.observed_addr is not None
        assert str(info.observed_addr).startswith("/ip6/::1/udp/"), info.observed_addr


async def test_go_dials_rapidp2p_over_ipv6_quic() -> None:
    _need_ipv6_loopback()
    async with await Host.create(listen=[QUIC6]) as host:
        connected = host.events.subscribe(PeerConnected)
        (addr,) = [a for a in host.full_addrs if is_quic_addr(a)]
        assert str(addr).startswith("/ip6/::1/udp/")
        results = await dial_from_peer("go-peer", str(addr), ping=True, identify=True)
        assert find_result(results, "ping_rtt_ms")["ping_rtt_ms"] > 0
        ident = find_result(results, "identify")["identify"]
        assert any(a.startswith("/ip6/::1/udp/") for a in ident.get("listen_addrs", [])), ident
        event = await connected.get(timeout=30)
        assert isinstance(event, PeerConnected)
        assert event.conn is not None and event.conn.muxer == "quic"
        assert str(event.conn.remote_addr).startswith("/ip6/::1/")
