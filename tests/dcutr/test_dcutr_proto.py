"""DCUtR's HolePunch message and address rules, without sockets: encoding against the
spec's schema, bad input (ROBUSTNESS_COVERAGE rows H1-H4) and the address filter."""

from __future__ import annotations

import pytest

from rapidp2p.peer import Multiaddr
from rapidp2p.protocols._protobuf import field_bytes, field_varint
from rapidp2p.protocols.dcutr import (
    MAX_ADDRS,
    MAX_MESSAGE_SIZE,
    HolePunch,
    HolePunchType,
    MalformedHolePunch,
    punchable_addrs,
)

PEER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def test_connect_encodes_as_the_spec_schema() -> None:
    a = Multiaddr("/ip4/11.0.0.2/tcp/4001")
    msg = HolePunch(HolePunchType.CONNECT, (a,))
    raw = msg.encode()
    # type = 100 (field 1, varint), then ObsAddrs (field 2, bytes)
    assert raw == b"\x08\x64" + b"\x12" + bytes([len(a.to_bytes())]) + a.to_bytes()
    assert HolePunch.decode(raw) == msg


def test_sync_round_trip() -> None:
    raw = HolePunch(HolePunchType.SYNC).encode()
    assert raw == b"\x08\xac\x02"  # 300 as a varint
    assert HolePunch.decode(raw) == HolePunch(HolePunchType.SYNC, ())


def test_undecodable_address_is_skipped() -> None:
    good = Multiaddr("/ip4/11.0.0.2/udp/4001/quic-v1")
    raw = field_varint(1, 100) + field_bytes(2, b"\xff\xff\xff") + field_bytes(2, good.to_bytes())
    assert HolePunch.decode(raw).addrs == (good,)


def test_addresses_capped() -> None:
    a = Multiaddr("/ip4/11.0.0.2/tcp/4001").to_bytes()
    raw = field_varint(1, 100) + field_bytes(2, a) * (MAX_ADDRS + 10)
    assert len(HolePunch.decode(raw).addrs) == MAX_ADDRS


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "without a type"),
        (field_bytes(2, b"x"), "without a type"),
        (field_varint(1, 200), "unknown type 200"),
        (b"\x08", "undecodable"),  # varint cut short
        (b"\x12\x05ab", "undecodable"),  # length past the end
        (b"\x0b", "undecodable"),  # wire type 3 (group)
        (b"\x08\x64" + b"\x12\x01a" * 300, "undecodable"),  # over 256 fields
        (b"\x08\x64" + b"\x00" * (MAX_MESSAGE_SIZE + 1), "cap"),
    ],
)
def test_bad_messages_are_typed_errors(raw: bytes, why: str) -> None:
    with pytest.raises(MalformedHolePunch, match=why):
        HolePunch.decode(raw)


def test_punchable_addrs_filter() -> None:
    addrs = [
        Multiaddr(x)
        for x in (
            "/ip4/11.0.0.2/tcp/4001",
            f"/ip4/11.0.0.3/udp/4001/quic-v1/p2p/{PEER}",  # rust-libp2p adds /p2p
            "/ip4/192.168.1.2/tcp/4001",  # private
            "/ip4/127.0.0.1/tcp/4001",  # loopback
            "/ip4/0.0.0.0/tcp/4001",  # unspecified
            f"/ip4/11.0.0.9/tcp/4001/p2p/{PEER}/p2p-circuit",  # relayed
            "/ip4/11.0.0.2/tcp/4001/ws",  # not TCP or QUIC v1
            "/ip4/11.0.0.2/udp/4001/quic",  # draft QUIC
            "/ip4/11.0.0.2/tcp/0",
            "/dns4/example.com/tcp/4001",
            "/ip4/11.0.0.2/tcp/4001",  # duplicate
        )
    ]
    assert [str(a) for a in punchable_addrs(addrs)] == [
        "/ip4/11.0.0.2/tcp/4001",
        "/ip4/11.0.0.3/udp/4001/quic-v1",
    ]
    private = [str(a) for a in punchable_addrs(addrs, allow_private=True)]
    assert "/ip4/192.168.1.2/tcp/4001" in private and "/ip4/127.0.0.1/tcp/4001" in private
    assert "/ip4/0.0.0.0/tcp/4001" not in private
