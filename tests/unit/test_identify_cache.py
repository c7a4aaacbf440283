"""Identify's signed peer record is sealed once per address set; opened records are cached
without ever accepting bytes that did not verify."""

from __future__ import annotations

import asyncio

import pytest
from test_identify import Config

from rapidp2p.crypto import PrivateKey, generate_keypair
from rapidp2p.exceptions import SignatureError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.peerstore import MemoryPeerStore
from rapidp2p.protocols.identify import IdentifyMessage, handle_identify, seal_peer_record
from rapidp2p.protocols.memory import memory_stream_pair
from rapidp2p.protocols.multistream import read_exactly
from rapidp2p.records import PeerRecord
from rapidp2p.records import peer_record as peer_record_module


class PlainHost:
    """A hashable host (the real Host is): identify caches its sealed record."""

    def __init__(self) -> None:
        self.key: PrivateKey = generate_keypair()
        self.addrs = [Multiaddr("/ip4/127.0.0.1/tcp/4001")]
        self.protocols = ["/ipfs/id/1.0.0"]
        self.config = Config()
        self.peerstore = MemoryPeerStore()

    @property
    def peer_id(self) -> PeerId:
        return PeerId.from_public_key(self.key.public_key())


async def _record_sent(host: PlainHost) -> PeerRecord:
    a, b = memory_stream_pair()
    await handle_identify(host, b, observed_addr=None)
    size = await read_exactly(a, 2)  # uvarint length: the message is > 127 bytes
    length = (size[0] & 0x7F) | (size[1] << 7)
    msg = IdentifyMessage.decode(await read_exactly(a, length))
    assert msg.signed_peer_record is not None
    return PeerRecord.open_envelope(msg.signed_peer_record)[1]


async def test_record_resealed_only_when_addresses_change() -> None:
    host = PlainHost()
    first = await _record_sent(host)
    again = await _record_sent(host)
    assert again.seq == first.seq  # same record: no new signature per connection
    host.addrs = [Multiaddr("/ip4/127.0.0.1/tcp/4002")]
    await asyncio.sleep(0)
    moved = await _record_sent(host)
    assert moved.seq > first.seq
    assert moved.addrs == (Multiaddr("/ip4/127.0.0.1/tcp/4002"),)
    host.key = generate_keypair()  # a new identity never reuses the old signature
    rekeyed = await _record_sent(host)
    assert rekeyed.peer_id == host.peer_id


def test_open_envelope_cache_returns_verified_objects_and_rejects_tampering() -> None:
    key = generate_keypair()
    raw = seal_peer_record(key, [Multiaddr("/ip4/1.2.3.4/tcp/1")])
    env1, rec1 = PeerRecord.open_envelope(raw)
    env2, rec2 = PeerRecord.open_envelope(raw)
    assert rec1 == rec2 and env1.raw == env2.raw == raw
    tampered = bytearray(raw)
    tampered[-1] ^= 1  # inside the signature
    with pytest.raises(SignatureError):
        PeerRecord.open_envelope(bytes(tampered))


def test_open_envelope_cache_is_bounded() -> None:
    key = generate_keypair()
    for i in range(peer_record_module.OPENED_CACHE_SIZE + 3):
        PeerRecord.open_envelope(seal_peer_record(key, [Multiaddr(f"/ip4/1.2.3.4/tcp/{i}")]))
    assert len(peer_record_module._opened) <= peer_record_module.OPENED_CACHE_SIZE
