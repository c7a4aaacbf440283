"""/dnsaddr resolution against a stub DNS server on loopback (recursion, peer-ID filter, caps)
and a bootstrap source that resolves and connects."""

from __future__ import annotations

import asyncio

import pytest
from dnsstub import DnsStub

from rapidp2p.crypto import generate_keypair
from rapidp2p.discovery import PeerDiscovered
from rapidp2p.discovery.bootstrap import BootstrapSource, group_by_peer
from rapidp2p.discovery.dnsaddr import DnsaddrError, DnsaddrResolver
from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr, PeerId

TCP = "/ip4/127.0.0.1/tcp/0"
A = str(PeerId.from_public_key(generate_keypair().public_key()))
B = str(PeerId.from_public_key(generate_keypair().public_key()))


async def test_recursive_resolution_and_peer_filter() -> None:
    table = {
        "_dnsaddr.boot.test": [
            "dnsaddr=/dnsaddr/a.boot.test/p2p/" + A,
            "dnsaddr=/dnsaddr/b.boot.test/p2p/" + B,
            "v=spf1 -all",  # not a dnsaddr entry: ignored
            "dnsaddr=/not/a/multiaddr",  # bad: skipped
        ],
        "_dnsaddr.a.boot.test": [
            f"dnsaddr=/ip4/10.0.0.1/tcp/4001/p2p/{A}",
            f"dnsaddr=/ip6/fd00::1/tcp/4001/p2p/{A}",
        ],
        "_dnsaddr.b.boot.test": [f"dnsaddr=/ip4/10.0.0.2/tcp/4001/p2p/{B}"],
    }
    async with DnsStub(table) as dns:
        resolver = DnsaddrResolver([dns.address], timeout=2)
        every = await resolver.resolve("/dnsaddr/boot.test")
        assert [str(a) for a in every] == [
            f"/ip4/10.0.0.1/tcp/4001/p2p/{A}",
            f"/ip6/fd00::1/tcp/4001/p2p/{A}",
            f"/ip4/10.0.0.2/tcp/4001/p2p/{B}",
        ]
        only_b = await resolver.resolve(f"/dnsaddr/boot.test/p2p/{B}")
        assert [str(a) for a in only_b] == [f"/ip4/10.0.0.2/tcp/4001/p2p/{B}"]
        # the filter prunes the other branch before it is looked up
        assert "_dnsaddr.a.boot.test" not in dns.queries[-2:]
        assert await resolver.resolve("/dnsaddr/missing.test") == []
        plain = Multiaddr("/ip4/127.0.0.1/tcp/1")
        assert await resolver.resolve(plain) == [plain]


async def test_loops_and_depth_are_capped() -> None:
    table = {
        "_dnsaddr.loop.test": ["dnsaddr=/dnsaddr/loop.test"],
        "_dnsaddr.d0.test": ["dnsaddr=/dnsaddr/d1.test"],
        "_dnsaddr.d1.test": ["dnsaddr=/dnsaddr/d2.test"],
        "_dnsaddr.d2.test": [f"dnsaddr=/ip4/10.0.0.3/tcp/1/p2p/{A}"],
    }
    async with DnsStub(table) as dns:
        with pytest.raises(DnsaddrError):
            await DnsaddrResolver([dns.address], timeout=2).resolve("/dnsaddr/loop.test")
        assert len(dns.queries) <= 5  # max_depth 4: five levels at most
        shallow = DnsaddrResolver([dns.address], timeout=2, max_depth=1)
        with pytest.raises(DnsaddrError):
            await shallow.resolve("/dnsaddr/d0.test")
        few = DnsaddrResolver([dns.address], timeout=2, max_lookups=2)
        with pytest.raises(DnsaddrError):
            await few.resolve("/dnsaddr/d0.test")
        assert len(await DnsaddrResolver([dns.address], timeout=2).resolve("/dnsaddr/d0.test")) == 1


async def test_many_entries_capped() -> None:
    table = {"_dnsaddr.big.test": [f"dnsaddr=/ip4/10.1.0.{i}/tcp/1/p2p/{A}" for i in range(60)]}
    async with DnsStub(table) as dns:
        got = await DnsaddrResolver([dns.address], timeout=2, max_results=10).resolve(
            "/dnsaddr/big.test"
        )
        assert len(got) == 10


async def test_truncated_udp_answer_is_retried_over_tcp() -> None:
    # 40 entries of ~70 bytes do not fit in a 512-byte datagram: the stub answers UDP with TC
    # set and no records, the resolver asks again over TCP on the same port and gets them all
    table = {"_dnsaddr.big.test": [f"dnsaddr=/ip4/10.2.0.{i}/tcp/4001/p2p/{A}" for i in range(40)]}
    async with DnsStub(table, udp_limit=512) as dns:
        got = await DnsaddrResolver([dns.address], timeout=2).resolve("/dnsaddr/big.test")
        assert [str(a) for a in got] == [f"/ip4/10.2.0.{i}/tcp/4001/p2p/{A}" for i in range(40)]
        assert dns.truncated == 1
        assert dns.tcp_queries == ["_dnsaddr.big.test"]
        # a small answer fits in UDP: no TCP retry
        dns.txt["_dnsaddr.small.test"] = [f"dnsaddr=/ip4/10.2.1.1/tcp/1/p2p/{A}"]
        assert (
            len(await DnsaddrResolver([dns.address], timeout=2).resolve("/dnsaddr/small.test")) == 1
        )
        assert dns.tcp_queries == ["_dnsaddr.big.test"]


async def test_truncated_answer_without_tcp_is_a_typed_error() -> None:
    table = {"_dnsaddr.big.test": [f"dnsaddr=/ip4/10.2.0.{i}/tcp/4001/p2p/{A}" for i in range(40)]}
    async with DnsStub(table, udp_limit=512, tcp=False) as dns:
        resolver = DnsaddrResolver([dns.address], timeout=1, attempts=1)
        with pytest.raises(DnsaddrError, match="TCP retry failed"):
            await resolver.resolve("/dnsaddr/big.test")


@pytest.mark.parametrize(
    "answer",
    [
        b"",  # closed before the length prefix
        b"\x00\x40" + b"short",  # closed mid-answer
        b"\x00\x05" + b"\xff" * 5,  # not DNS
        "mismatched",  # DNS, but another query id
    ],
)
async def test_bad_tcp_answers_are_typed_errors(answer: bytes | str) -> None:
    """A truncated UDP answer from the stub, then a TCP server on the same port that answers
    badly: every case is a DnsaddrError, never another exception."""
    from dnslib import DNSRecord

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = int.from_bytes(await reader.readexactly(2), "big")
        query = DNSRecord.parse(await reader.readexactly(size))
        if answer == "mismatched":
            reply = query.reply()
            reply.header.id = (query.header.id + 1) & 0xFFFF
            packed = bytes(reply.pack())
            writer.write(len(packed).to_bytes(2, "big") + packed)
        else:
            assert isinstance(answer, bytes)
            writer.write(answer)
        await writer.drain()
        writer.close()

    table = {"_dnsaddr.big.test": [f"dnsaddr=/ip4/10.2.0.{i}/tcp/4001/p2p/{A}" for i in range(40)]}
    async with DnsStub(table, udp_limit=512, tcp=False) as dns:
        server = await asyncio.start_server(serve, *dns.address)
        try:
            resolver = DnsaddrResolver([dns.address], timeout=2, attempts=1)
            with pytest.raises(DnsaddrError, match="TCP retry failed"):
                await resolver.resolve("/dnsaddr/big.test")
        finally:
            server.close()
            await server.wait_closed()


async def test_no_server_answers() -> None:
    # a port nobody listens on: the query times out (or is refused) and raises a typed error
    resolver = DnsaddrResolver([("127.0.0.1", 9)], timeout=0.3, attempts=1)
    with pytest.raises(DnsaddrError):
        await resolver.resolve("/dnsaddr/x.test")


def test_group_by_peer() -> None:
    infos = group_by_peer(
        [
            Multiaddr(f"/ip4/10.0.0.1/tcp/1/p2p/{A}"),
            Multiaddr(f"/ip4/10.0.0.2/tcp/1/p2p/{A}"),
            Multiaddr("/ip4/10.0.0.9/tcp/1"),  # no peer id: skipped
            Multiaddr(f"/ip4/10.0.0.3/tcp/1/p2p/{B}"),
        ]
    )
    assert [(str(i.peer_id), len(i.addrs)) for i in infos] == [(A, 2), (B, 1)]


async def test_bootstrap_resolves_dnsaddr_and_connects() -> None:
    async with (
        await Host.create(listen=[TCP]) as target,
        await Host.create(listen=[TCP]) as node,
    ):
        full = str(target.full_addrs[0])
        table = {"_dnsaddr.boot.test": [f"dnsaddr={full}"]}
        async with DnsStub(table) as dns:
            source = BootstrapSource(
                [f"/dnsaddr/boot.test/p2p/{target.peer_id}"],
                resolver=DnsaddrResolver([dns.address], timeout=2),
                check_interval=3600,
            )
            events = node.events.subscribe(PeerDiscovered)
            await source.start(node)
            event = await events.get(timeout=10)
            assert isinstance(event, PeerDiscovered)
            assert event.peer_id == target.peer_id and event.source == "bootstrap"
            assert await source.bootstrap_once() == 1
            assert node.is_connected(target.peer_id)
            assert source.connected == {target.peer_id}
            await source.close()
