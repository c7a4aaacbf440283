"""mDNS in sans-IO form: our query and response as DNS messages, what responses from go-,
js- and rust-libp2p-shaped packets yield, size caps, and bad datagrams."""

from __future__ import annotations

import contextlib

import pytest
from dnslib import PTR, QTYPE, RR, TXT, DNSHeader, DNSQuestion, DNSRecord
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p.crypto import generate_keypair
from rapidp2p.discovery.mdns import SERVICE_NAME, MdnsCore, MdnsError
from rapidp2p.discovery.mdns._proto import MAX_RESPONSE_SIZE, random_instance_name
from rapidp2p.peer import Multiaddr, PeerId


def _pid() -> PeerId:
    return PeerId.from_public_key(generate_keypair().public_key())


def test_instance_names_are_random_and_long() -> None:
    names = {random_instance_name() for _ in range(20)}
    assert len(names) == 20
    assert all(32 <= len(n) <= 63 and n.isalnum() for n in names)


def test_query_is_a_ptr_question_answered_by_a_peer() -> None:
    a, b = MdnsCore(_pid()), MdnsCore(_pid())
    query = a.build_query()
    parsed = DNSRecord.parse(query)
    assert parsed.header.qr == 0
    assert str(parsed.q.qname).rstrip(".") == SERVICE_NAME and parsed.q.qtype == QTYPE.PTR
    assert b.parse(query).is_query
    addrs = [Multiaddr("/ip4/10.0.0.2/tcp/4001"), Multiaddr("/ip6/fd00::2/tcp/4001")]
    response = b.build_response(addrs)
    assert response is not None
    got = a.parse(response)
    assert not got.is_query
    assert len(got.peers) == 1
    assert got.peers[0].peer_id == b.peer_id and got.peers[0].addrs == addrs
    # our own answer (our own query echoed back by multicast loop) is not a find
    assert b.parse(response).peers == []


def test_response_records_match_what_zeroconf_needs() -> None:
    core = MdnsCore(_pid())
    packet = core.build_response([Multiaddr("/ip4/10.0.0.2/tcp/4001")])
    assert packet is not None
    msg = DNSRecord.parse(packet)
    assert msg.header.qr == 1 and msg.header.aa == 1
    assert [QTYPE[rr.rtype] for rr in msg.rr] == ["PTR"]
    assert str(msg.rr[0].rdata.label).rstrip(".") == core.instance_fqdn
    kinds = sorted(QTYPE[rr.rtype] for rr in msg.ar)
    assert kinds == ["A", "SRV", "TXT"]
    srv = next(rr for rr in msg.ar if rr.rtype == QTYPE.SRV)
    assert str(srv.rdata.target).rstrip(".") == core.host_name and srv.rdata.port == 4001
    txt = next(rr for rr in msg.ar if rr.rtype == QTYPE.TXT)
    assert txt.rdata.data == [f"dnsaddr=/ip4/10.0.0.2/tcp/4001/p2p/{core.peer_id}".encode()]


def test_unsuitable_addresses_not_announced_and_size_capped() -> None:
    core = MdnsCore(_pid())
    assert core.build_response([Multiaddr("/dns4/example.com/tcp/1")]) is None
    many = [Multiaddr(f"/ip4/10.0.{i // 250}.{i % 250}/tcp/{4000 + i}") for i in range(100)]
    packet = core.build_response(many)
    assert packet is not None and len(packet) <= MAX_RESPONSE_SIZE
    found = MdnsCore(_pid()).parse(packet).peers
    assert 0 < len(found[0].addrs) < 100


def _foreign_response(instance: str, txts: list[str], *, in_answers: bool) -> bytes:
    msg = DNSRecord(DNSHeader(id=0, qr=1, aa=1))
    msg.add_answer(RR(SERVICE_NAME, QTYPE.PTR, rdata=PTR(f"{instance}.{SERVICE_NAME}"), ttl=120))
    rr = RR(f"{instance}.{SERVICE_NAME}", QTYPE.TXT, rdata=TXT(txts), ttl=120)
    if in_answers:
        msg.add_answer(rr)  # rust-libp2p and js-libp2p put TXT records in the answers
    else:
        msg.add_ar(rr)
    return bytes(msg.pack())


@pytest.mark.parametrize("in_answers", [True, False])
def test_foreign_responses(in_answers: bool) -> None:
    other = _pid()
    packet = _foreign_response(
        "peer1",
        [
            f"dnsaddr=/ip4/10.0.0.7/tcp/4001/p2p/{other}",
            "dnsaddr=/ip4/10.0.0.8/tcp/4001",  # no peer id: skipped
            "dnsaddr=not a multiaddr",
            "something=else",
            f"dnsaddr=/ip4/10.0.0.9/udp/4001/quic-v1/p2p/{other}",
        ],
        in_answers=in_answers,
    )
    found = MdnsCore(_pid()).parse(packet).peers
    assert len(found) == 1 and found[0].peer_id == other
    assert [str(a) for a in found[0].addrs] == [
        "/ip4/10.0.0.7/tcp/4001",
        "/ip4/10.0.0.9/udp/4001/quic-v1",
    ]


def test_txt_for_an_instance_not_in_a_ptr_is_ignored() -> None:
    msg = DNSRecord(DNSHeader(id=0, qr=1))
    msg.add_answer(
        RR(
            "stray._p2p._udp.local",
            QTYPE.TXT,
            rdata=TXT([f"dnsaddr=/ip4/1.2.3.4/tcp/1/p2p/{_pid()}"]),
        )
    )
    assert MdnsCore(_pid()).parse(bytes(msg.pack())).peers == []


def test_other_services_ignored() -> None:
    q = DNSRecord(DNSHeader(id=0), q=DNSQuestion("_http._tcp.local", QTYPE.PTR))
    assert not MdnsCore(_pid()).parse(bytes(q.pack())).is_query


@pytest.mark.parametrize("data", [b"", b"\x00" * 5, b"\xff" * 40, b"\x00\x00\x84\x00\x00\x01"])
def test_bad_datagrams(data: bytes) -> None:
    with pytest.raises(MdnsError):
        MdnsCore(_pid()).parse(data)


def test_oversized_datagram() -> None:
    with pytest.raises(MdnsError):
        MdnsCore(_pid()).parse(b"\x00" * 9001)


@given(st.binary(max_size=600))
def test_arbitrary_datagrams_raise_only_mdns_error(data: bytes) -> None:
    core = MdnsCore(PeerId.from_string("12D3KooWGzBkUvuVgBd2Dt8ANd8C3MXbKrHLhTdRjNbqX2ouUPVp"))
    with contextlib.suppress(MdnsError):
        core.parse(data)


def test_peers_per_packet_capped() -> None:
    msg = DNSRecord(DNSHeader(id=0, qr=1))
    for i in range(50):
        inst = f"p{i}"
        msg.add_answer(RR(SERVICE_NAME, QTYPE.PTR, rdata=PTR(f"{inst}.{SERVICE_NAME}")))
        msg.add_ar(
            RR(
                f"{inst}.{SERVICE_NAME}",
                QTYPE.TXT,
                rdata=TXT([f"dnsaddr=/ip4/10.0.0.1/tcp/{i + 1}/p2p/{_pid()}"]),
            )
        )
    assert len(MdnsCore(_pid()).parse(bytes(msg.pack())).peers) == 32


async def test_service_feeds_finds_once_per_interval_and_counts_bad_datagrams() -> None:
    from rapidp2p.discovery import PeerDiscovered
    from rapidp2p.discovery.mdns import MdnsService
    from rapidp2p.host import Host

    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as host:
        service = MdnsService(query_interval=3600)
        # the datagram path without sockets: the core and the feed, as start() sets them up
        service.core = MdnsCore(host.peer_id)
        service.feed.attach(host)
        events = host.events.subscribe(PeerDiscovered)
        other = MdnsCore(_pid())
        packet = other.build_response([Multiaddr("/ip4/10.0.0.5/tcp/4001")])
        assert packet is not None
        service._on_datagram(packet)
        service._on_datagram(packet)  # the same answer again (another interface): no new find
        service._on_datagram(b"\x01\x02")
        ev = await events.get(timeout=5)
        assert isinstance(ev, PeerDiscovered) and ev.peer_id == other.peer_id
        assert ev.source == "mdns" and [str(a) for a in ev.addrs] == ["/ip4/10.0.0.5/tcp/4001"]
        assert service.feed.found_count == 1 and service.bad_datagrams == 1
        assert host.peerstore.addrs(other.peer_id) == [Multiaddr("/ip4/10.0.0.5/tcp/4001")]
        await service.close()
