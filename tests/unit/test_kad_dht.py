"""The DHT service on a handful of in-memory hosts: operations, modes and bad input
(ROBUSTNESS 28-29)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from test_kad_util import close_all, fast_config, kad_config, make_node, network

from rapidp2p.crypto import generate_keypair
from rapidp2p.exceptions import (
    InvalidRecordError,
    KadNotFoundError,
    StreamResetError,
)
from rapidp2p.host import Host
from rapidp2p.kad import (
    KadMessage,
    KadPeer,
    KadRecord,
    MessageType,
    PermissiveValidator,
    ProviderEntry,
    SqliteProviderStore,
    SqliteRecordStore,
    default_validator,
    provider_key,
)
from rapidp2p.kad.dht import KadDHT, is_public_addr
from rapidp2p.peer import Multiaddr
from rapidp2p.protocols.framing import encode_delimited, encode_uvarint, read_delimited

PROTO = "/ipfs/kad/1.0.0"


@pytest.fixture
async def net() -> AsyncIterator[list[KadDHT]]:
    async with network(8) as nodes:
        yield nodes


async def test_operations(net: list[KadDHT]) -> None:
    a, b, c = net[1], net[4], net[7]
    assert all(len(d.routing) >= 5 for d in net)
    assert await a.put_value(b"/test/k", b"value-1") > 0
    assert await c.get_value(b"/test/k") == b"value-1"
    # A better value (greater, for the permissive validator) wins on get.
    await b.put_value(b"/test/k", b"value-2")
    assert await c.get_value(b"/test/k", quorum=20) == b"value-2"
    with pytest.raises(KadNotFoundError):
        await c.get_value(b"/test/missing")
    with pytest.raises(InvalidRecordError):
        await a.put_value(b"/nope/k", b"v")
    # Providers, by CID text and by raw key.
    cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    assert await b.provide(cid) > 0
    found = [p async for p in c.find_providers(cid)]
    assert [p.peer_id for p in found] == [b.peer_id] and found[0].addrs
    assert provider_key(cid) != cid.encode()
    assert [p async for p in c.find_providers(b"nobody")] == []
    # find_peer through a lookup (a and the target may not be connected yet).
    await a.host.disconnect(c.peer_id)
    info = await a.find_peer(c.peer_id)
    assert info.peer_id == c.peer_id and info.addrs == c.host.addrs


async def test_pk_records_served_from_peerstore(net: list[KadDHT]) -> None:
    a, b = net[2], net[3]
    key = b"/pk/" + a.peer_id.to_bytes()
    await b.host.connect(a.host.full_addrs[0])
    # Anyone connected to `a` has its key in the peerstore and serves it.
    value = await net[5].get_value(key, quorum=1)
    assert value == a.host.key.public_key().to_protobuf()


async def test_client_mode_stays_out_of_tables() -> None:
    nodes = [await make_node() for _ in range(3)]
    client = await make_node(kad_config(mode="client"), listen=False)
    try:
        boot = str(nodes[0].host.full_addrs[0])
        await asyncio.gather(*(d.bootstrap([boot]) for d in nodes[1:]))
        await client.bootstrap([boot])
        assert client.mode == "client" and PROTO not in client.host.protocols
        assert len(client.routing) >= 2
        await client.put_value(b"/test/c", b"x")
        assert await nodes[2].get_value(b"/test/c") == b"x"
        await asyncio.sleep(0.05)
        assert all(client.peer_id not in d.routing for d in nodes)
        # auto mode without listen addresses is client mode.
        auto = KadDHT(await Host.create(config=fast_config()), kad_config(mode="auto"))
        await auto.start()
        assert auto.mode == "client"
        await auto.close()
        await auto.host.close()
    finally:
        await close_all([*nodes, client])


async def raw_stream(server: KadDHT) -> tuple[Host, object]:
    host = await Host.create(config=fast_config())
    stream = await host.new_stream(server.host.full_addrs[0], PROTO)
    return host, stream


async def test_oversized_message_resets_stream() -> None:
    server = await make_node(kad_config(max_message_size=1024))
    host, stream = await raw_stream(server)
    try:
        stream.write(encode_uvarint(4096) + b"\x00" * 100)  # type: ignore[attr-defined]
        with pytest.raises(StreamResetError):
            await asyncio.wait_for(stream.read(1), 10)  # type: ignore[attr-defined]
        # The connection is fine: a proper request on a new stream works.
        s2 = await host.new_stream(server.peer_id, PROTO)
        s2.write(encode_delimited(KadMessage(MessageType.PING).encode()))
        reply = await asyncio.wait_for(read_delimited(s2, 1024), 10)
        assert reply is not None and KadMessage.decode(reply).type == MessageType.PING
        # Garbage (undecodable) is also a reset.
        s3 = await host.new_stream(server.peer_id, PROTO)
        s3.write(encode_delimited(b"\x08\x63"))
        with pytest.raises(StreamResetError):
            await asyncio.wait_for(s3.read(1), 10)
    finally:
        await host.close()
        await close_all([server])


async def test_inbound_stream_cap_per_connection() -> None:
    server = await make_node(kad_config(max_inbound_streams_per_connection=4))
    host = await Host.create(config=fast_config())
    try:
        streams = [await host.new_stream(server.host.full_addrs[0], PROTO) for _ in range(6)]
        # Handlers keep their slot until the stream ends, so only 4 are served at once.
        ping = encode_delimited(KadMessage(MessageType.PING).encode())
        outcomes = []
        for s in streams:
            s.write(ping)
        for s in streams:
            try:
                outcomes.append(await asyncio.wait_for(read_delimited(s, 1024), 10) is not None)
            except StreamResetError:
                outcomes.append(False)
        assert outcomes.count(True) == 4 and outcomes.count(False) == 2
    finally:
        await host.close()
        await close_all([server])


async def test_lists_capped_invalid_records_and_provider_spam() -> None:
    cfg = kad_config()
    server = await make_node(cfg)
    server.providers.max_per_key = 3
    host = await Host.create(config=fast_config())
    try:
        # Invalid record: reset, nothing stored.
        s = await host.new_stream(server.host.full_addrs[0], PROTO)
        bad = KadMessage(MessageType.PUT_VALUE, b"/pk/x", KadRecord(b"/pk/x", b"junk"))
        s.write(encode_delimited(bad.encode()))
        with pytest.raises(StreamResetError):
            await asyncio.wait_for(s.read(1), 10)
        assert server.records.get(b"/pk/x", 0) is None
        # Record key differing from the message key: rejected too.
        s = await host.new_stream(server.peer_id, PROTO)
        bad = KadMessage(MessageType.PUT_VALUE, b"/test/a", KadRecord(b"/test/b", b"v"))
        s.write(encode_delimited(bad.encode()))
        with pytest.raises(StreamResetError):
            await asyncio.wait_for(s.read(1), 10)
        # ADD_PROVIDER for other peers is ignored; only the sender is recorded.
        others = tuple(KadPeer(bytes([0, 36, 8, 1, 18, 32]) + bytes([i]) * 32) for i in range(50))
        me = KadPeer(host.peer_id.to_bytes(), (b"\x04\x7f\x00\x00\x01\x06\x10\x00",))
        s = await host.new_stream(server.peer_id, PROTO)
        s.write(
            encode_delimited(
                KadMessage(MessageType.ADD_PROVIDER, b"cid", provider_peers=(*others, me)).encode()
            )
        )
        await s.close()
        await asyncio.sleep(0.05)
        # `me` was the 51st entry: past the cap of k = 20 entries, so it is not even read.
        assert server.providers.get(b"cid", 0) == []
        s = await host.new_stream(server.peer_id, PROTO)
        s.write(
            encode_delimited(
                KadMessage(MessageType.ADD_PROVIDER, b"cid", provider_peers=(me,)).encode()
            )
        )
        await s.close()
        await asyncio.sleep(0.05)
        assert [e.peer for e in server.providers.get(b"cid", 0)] == [host.peer_id.to_bytes()]
        # Provider spam: the per-key cap holds.
        for i in range(5):
            server.providers.add(b"spam", ProviderEntry(bytes([i]), (), 1e12), 0)
        assert len(server.providers.get(b"spam", 0)) == 3
        # A reply with 1000 closer peers is capped at k when decoded.
        huge = KadMessage(MessageType.FIND_NODE, b"x", closer_peers=others * 20)
        assert len(KadMessage.decode(huge.encode(), max_size=1 << 20).closer_peers) == cfg.k
    finally:
        await host.close()
        await close_all([server])


async def test_failed_peers_leave_the_table(net: list[KadDHT]) -> None:
    gone = net[6]
    await gone.close()
    await gone.host.close()
    survivor = net[1]
    peers = await survivor.get_closest_peers(b"anything")
    assert gone.peer_id not in peers
    assert await survivor.put_value(b"/test/after", b"ok") > 0
    assert await net[2].get_value(b"/test/after") == b"ok"


@pytest.mark.parametrize(
    ("addr", "public"),
    [
        ("/ip4/8.8.8.8/tcp/4001", True),
        ("/ip6/2001:4860:4860::8888/tcp/4001", True),
        ("/dns4/example.org/tcp/4001", True),
        ("/ip4/127.0.0.1/tcp/4001", False),
        ("/ip4/192.168.1.2/tcp/4001", False),
        ("/ip4/100.64.0.1/tcp/4001", False),
        ("/ip4/0.0.0.0/tcp/4001", False),
        ("/ip6/::1/tcp/4001", False),
        ("/ip6/fe80::1/tcp/4001", False),
        ("/dns4/localhost/tcp/4001", False),
        ("/memory/0", False),
    ],
)
def test_is_public_addr(addr: str, public: bool) -> None:
    assert is_public_addr(Multiaddr(addr)) is public


async def _until(cond: Callable[[], bool]) -> bool:
    for _ in range(500):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return cond()


async def test_auto_mode_serves_once_reachable() -> None:
    """Auto mode: client until a node dials in (or the application says it is reachable),
    then server, and peers add it to their tables; back to client when unreachable."""
    server = await make_node()
    auto = await make_node(kad_config(mode="auto"))  # listens on a (non-public) memory address
    third = await make_node()
    try:
        assert auto.mode == "client" and not auto.reachable
        assert PROTO not in auto.host.protocols
        await auto.bootstrap([str(server.host.full_addrs[0])])
        assert auto.mode == "client", "dialing out proves nothing about reachability"
        assert auto.peer_id not in server.routing
        await third.host.connect(auto.host.full_addrs[0])
        assert await _until(lambda: auto.mode == "server")
        assert auto.reachable and PROTO in auto.host.protocols
        assert await _until(
            lambda: auto.peer_id in third.routing and auto.peer_id in server.routing
        )
        assert await third.get_closest_peers(b"k") != []
        auto.set_reachable(False)
        assert auto.mode == "client" and PROTO not in auto.host.protocols
        assert await _until(lambda: auto.peer_id not in server.routing)
    finally:
        await close_all([server, auto, third])


async def test_fixed_modes_ignore_reachability() -> None:
    client = await make_node(kad_config(mode="client"))
    server = await make_node()
    try:
        await server.host.connect(client.host.full_addrs[0])
        client.set_reachable(True)
        assert client.mode == "client" and client.reachable
    finally:
        await close_all([client, server])


async def test_republish_and_expiry() -> None:
    """Originated records and provided keys are re-sent after 22 h; copies others hold expire
    after 36 h (records) and 48 h (providers) once nobody republishes them."""
    t = [1_000_000.0]
    hour = 3600.0
    async with network(4) as nodes:
        for d in nodes:
            d._now = lambda: t[0]
        a, b = nodes[0], nodes[1]
        key, content = b"/test/republish", b"content-r"
        pkey = provider_key(content)
        assert await a.put_value(key, b"v") == 3
        assert await a.provide(content) == 3
        t0 = t[0]
        held = b.records.get(key, t[0])
        assert held is not None and held.received == t0
        # ADD_PROVIDER has no answer: wait until b has handled it.
        assert await _until(lambda: b.providers.get(pkey, t[0]) != [])
        assert [e.expires for e in b.providers.get(pkey, t[0])] == [t0 + 48 * hour]

        t[0] += 21 * hour  # nothing due yet
        await a.maintain_once()
        held = b.records.get(key, t[0])
        assert held is not None and held.received == t0

        t[0] += 2 * hour  # 23 h: both republished
        await a.maintain_once()
        t1 = t[0]
        held = b.records.get(key, t[0])
        assert held is not None and held.received == t1
        assert await _until(lambda: b.providers.get(pkey, t[0])[0].expires == t1 + 48 * hour)

        # `a` stops: the others' copies age out.
        a.stop_providing(content)
        a.records.delete(key)
        t[0] = t1 + 36 * hour + 1
        await b.maintain_once()
        assert b.records.get(key, t[0]) is None and len(b.records) == 0
        assert len(b.providers.get(pkey, t[0])) == 1  # providers live 48 h
        t[0] = t1 + 48 * hour + 1
        await b.maintain_once()
        assert b.providers.get(pkey, t[0]) == [] and b.providers.total() == 0


async def test_persistent_stores_survive_restart(tmp_path: Path) -> None:
    """With SQLite stores, a restarted node still republishes what it put and provides."""
    key = generate_keypair()

    async def node() -> KadDHT:
        host = await Host.create(key, listen=["/memory/0"], config=fast_config())
        dht = KadDHT(
            host,
            kad_config(),
            validator=default_validator({"test": PermissiveValidator()}),
            record_store=SqliteRecordStore(tmp_path / "records.db"),
            provider_store=SqliteProviderStore(tmp_path / "providers.db"),
        )
        await dht.start()
        return dht

    first = await node()
    await first.put_value(b"/test/persist", b"p")
    await first.provide(b"content-p")
    await close_all([first])
    first.records.close()
    first.providers.close()

    again = await node()
    try:
        assert again.provided_keys() == [provider_key(b"content-p")]
        assert [r.key for r in again.records.originated()] == [b"/test/persist"]
    finally:
        await close_all([again])
        again.records.close()
        again.providers.close()


async def test_requests_reuse_streams_per_peer() -> None:
    """Requests to one peer go on one stream, one after the other (the spec allows it, and
    every server serves several requests per stream); concurrent ones open more, kept up to
    a bound; a stream the server ended while idle is replaced without the caller noticing;
    closing the DHT ends the kept streams."""
    from rapidp2p.kad import rpc

    server = await make_node()
    client = await make_node()
    opened: list[object] = []
    handle = server.handlers.handle

    async def counting(stream: object) -> None:
        opened.append(stream)
        await handle(stream)  # type: ignore[arg-type]

    server.host.set_stream_handler(PROTO, counting)
    try:
        await client.host.connect(server.host.full_addrs[0])
        ping = KadMessage(MessageType.PING)
        for _ in range(5):
            assert (await client.messenger.request(server.peer_id, ping)).type == MessageType.PING
        assert len(opened) == 1 and client.messenger.idle_streams == 1
        # Concurrent requests need streams of their own; the pool keeps a bounded number.
        n = rpc.MAX_IDLE_PER_PEER + 2
        answers = await asyncio.gather(
            *(client.messenger.request(server.peer_id, ping) for _ in range(n))
        )
        assert all(a.type == MessageType.PING for a in answers)
        assert len(opened) == n and client.messenger.idle_streams == rpc.MAX_IDLE_PER_PEER
        # The server resets every stream it holds: the next request still gets its answer,
        # on a fresh stream (the reset ones are dropped).
        for s in opened:
            s.reset()  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
        before = len(opened)
        found = await client.messenger.request(
            server.peer_id, KadMessage(MessageType.FIND_NODE, b"k")
        )
        assert found.type == MessageType.FIND_NODE and len(opened) == before + 1
        assert client.messenger.idle_streams == 1
        kept = opened[-1]
        await client.close()
        assert client.messenger.idle_streams == 0
        await asyncio.wait_for(kept.wait_remote_closed(), 5)  # type: ignore[attr-defined]
    finally:
        await close_all([server, client])
