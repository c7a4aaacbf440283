"""Identify and identify-push over in-memory streams (ROBUSTNESS 27)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from rapidp2p import _core
from rapidp2p.crypto import PrivateKey, generate_keypair
from rapidp2p.exceptions import FrameTooLarge, PeerIdMismatch, RemoteProtocolError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.peerstore import MemoryPeerStore, PeerStore
from rapidp2p.protocols.framing import encode_delimited
from rapidp2p.protocols.identify import (
    MAX_LISTEN_ADDRS,
    MAX_MESSAGE_SIZE,
    IdentifyMessage,
    build_identify,
    handle_identify,
    handle_identify_push,
    identify,
    push_identify,
    read_identify,
    record_identify,
    validate_identify,
)
from rapidp2p.protocols.memory import memory_stream_pair
from rapidp2p.records import Envelope, PeerRecord


@dataclass
class Config:
    agent_version: str = "rapidp2p/test"
    protocol_version: str = "ipfs/0.1.0"


@dataclass
class FakeHost:
    key: PrivateKey = field(default_factory=generate_keypair)
    addrs: list[Multiaddr] = field(
        default_factory=lambda: [
            Multiaddr("/ip4/127.0.0.1/tcp/4001"),
            Multiaddr("/ip4/10.0.0.1/tcp/4001"),
        ]
    )
    protocols: list[str] = field(default_factory=lambda: ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"])
    config: Config = field(default_factory=Config)
    peerstore: PeerStore = field(default_factory=MemoryPeerStore)

    @property
    def peer_id(self) -> PeerId:
        return PeerId.from_public_key(self.key.public_key())


OBSERVED = Multiaddr("/ip4/10.0.0.7/tcp/50000")


async def test_identify_roundtrip_fills_peerstore() -> None:
    server, client = FakeHost(), FakeHost()
    a, b = memory_stream_pair()
    _, info = await asyncio.gather(
        handle_identify(server, b, observed_addr=OBSERVED),
        identify(client, a, server.peer_id),
    )
    assert info.peer_id == server.peer_id
    assert info.public_key == server.key.public_key()
    assert info.protocols == ("/ipfs/id/1.0.0", "/ipfs/ping/1.0.0")
    # The remote is on a private network: no loopback address for it (go-libp2p's rule).
    assert info.listen_addrs == (Multiaddr("/ip4/10.0.0.1/tcp/4001"),)
    assert info.observed_addr == OBSERVED
    assert info.agent_version == "rapidp2p/test"
    assert info.peer_record is not None and info.record_error is None
    assert info.peer_record.addrs == info.listen_addrs
    ps = client.peerstore
    assert ps.get_protocols(server.peer_id) == ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"]
    assert ps.addrs(server.peer_id) == [Multiaddr("/ip4/10.0.0.1/tcp/4001")]
    assert ps.get(server.peer_id, "AgentVersion") == "rapidp2p/test"
    assert ps.get_peer_record(server.peer_id) is not None


async def test_identify_wrong_public_key_is_peer_id_mismatch() -> None:
    server, client = FakeHost(), FakeHost()
    someone_else = PeerId.from_public_key(generate_keypair().public_key())
    a, b = memory_stream_pair()
    await handle_identify(server, b)
    with pytest.raises(PeerIdMismatch):
        await identify(client, a, someone_else)
    assert client.peerstore.get_protocols(someone_else) == []


def test_signed_record_for_another_peer_discarded() -> None:
    me, other = generate_keypair(), generate_keypair()
    me_id = PeerId.from_public_key(me.public_key())
    other_id = PeerId.from_public_key(other.public_key())
    forged = Envelope.seal(other, PeerRecord(other_id, 1, (OBSERVED,))).raw
    msg = IdentifyMessage(
        public_key=me.public_key().to_protobuf(),
        listen_addrs=[Multiaddr("/ip4/1.1.1.1/tcp/1").to_bytes()],
        protocols=["/a"],
        signed_peer_record=forged,
    )
    info = validate_identify(msg, me_id)
    assert info.peer_record is None and info.envelope is None
    assert info.record_error is not None and "PeerIdMismatch" in info.record_error
    assert info.protocols == ("/a",)  # the rest of the message is still used
    ps = MemoryPeerStore()
    record_identify(ps, info)
    assert ps.get_peer_record(me_id) is None
    assert ps.addrs(me_id) == [Multiaddr("/ip4/1.1.1.1/tcp/1")]


def test_tampered_signed_record_discarded() -> None:
    me = generate_keypair()
    me_id = PeerId.from_public_key(me.public_key())
    env = Envelope.seal(me, PeerRecord(me_id, 1, (OBSERVED,)))
    bad = _core.proto.encode_envelope(
        env.public_key.to_protobuf(), env.payload_type, env.payload, b"x" * 64
    )
    info = validate_identify(IdentifyMessage(signed_peer_record=bad), me_id)
    assert info.peer_record is None
    assert info.record_error is not None and "SignatureError" in info.record_error


def test_listen_addrs_truncated_and_bad_addrs_skipped() -> None:
    me = generate_keypair()
    me_id = PeerId.from_public_key(me.public_key())
    addrs = [Multiaddr(f"/ip4/10.0.0.1/tcp/{p}").to_bytes() for p in range(1, 101)]
    info = validate_identify(IdentifyMessage(listen_addrs=[b"\xff\xff", *addrs]), me_id)
    assert len(info.listen_addrs) == MAX_LISTEN_ADDRS - 1
    assert info.listen_addrs[0] == Multiaddr("/ip4/10.0.0.1/tcp/1")


def test_build_identify_fits_in_8_kib() -> None:
    key = generate_keypair()
    addrs = [Multiaddr(f"/dns4/{'x' * 60}.example.com/tcp/{p}") for p in range(200)]
    protos = [f"/very/long/protocol/name/{i}/{'y' * 40}" for i in range(300)]
    data = build_identify(
        private_key=key,
        listen_addrs=addrs,
        protocols=protos,
        observed_addr=None,
        protocol_version="ipfs/0.1.0",
        agent_version="a",
    )
    assert len(data) <= MAX_MESSAGE_SIZE
    msg = IdentifyMessage.decode(data)
    assert msg.agent_version == "a"
    assert len(msg.listen_addrs) <= MAX_LISTEN_ADDRS


async def test_oversized_message_rejected_before_reading_body() -> None:
    a, b = memory_stream_pair()
    b.write(b"\x81\x40")  # length 8193
    b.close()
    with pytest.raises(FrameTooLarge):
        await read_identify(a, PeerId.from_public_key(generate_keypair().public_key()))


async def test_empty_response_and_too_many_parts() -> None:
    pid = PeerId.from_public_key(generate_keypair().public_key())
    a, b = memory_stream_pair()
    b.close()
    with pytest.raises(RemoteProtocolError, match="without a message"):
        await read_identify(a, pid)
    a, b = memory_stream_pair()
    b.write(encode_delimited(b"") * 11)
    b.close()
    with pytest.raises(RemoteProtocolError, match="over 10"):
        await read_identify(a, pid)


async def test_split_response_is_merged() -> None:
    me = generate_keypair()
    me_id = PeerId.from_public_key(me.public_key())
    part1 = IdentifyMessage(public_key=me.public_key().to_protobuf(), protocols=["/a"]).encode()
    part2 = IdentifyMessage(protocols=["/b"], agent_version="go-libp2p").encode()
    a, b = memory_stream_pair()
    b.write(encode_delimited(part1) + encode_delimited(part2))
    b.close()
    info = await read_identify(a, me_id)
    assert info.protocols == ("/a", "/b")
    assert info.agent_version == "go-libp2p"


async def test_push_updates_only_present_fields() -> None:
    server, client = FakeHost(), FakeHost()
    client.peerstore.set_protocols(server.peer_id, ["/old"])
    server.protocols = ["/new/1", "/new/2"]
    a, b = memory_stream_pair()
    _, info = await asyncio.gather(
        push_identify(server, a), handle_identify_push(client, b, server.peer_id)
    )
    assert info.observed_addr is None
    assert client.peerstore.get_protocols(server.peer_id) == ["/new/1", "/new/2"]
    # A push carrying no protocols field leaves the stored protocols alone.
    a, b = memory_stream_pair()
    a.write(encode_delimited(IdentifyMessage(agent_version="v2").encode()))
    a.close()
    await handle_identify_push(client, b, server.peer_id)
    assert client.peerstore.get_protocols(server.peer_id) == ["/new/1", "/new/2"]
    assert client.peerstore.get(server.peer_id, "AgentVersion") == "v2"
