"""Issue 13 point 1: unspecified listen addresses are expanded to interface addresses, and a
peer hears only the addresses it can use (go-libp2p's identify rule). Only loopback is
dialled; other interface addresses come from a replaced interface list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rapidp2p import Host, Multiaddr
from rapidp2p.host import addrs as host_addrs
from rapidp2p.kad import KadConfig, KadDHT
from rapidp2p.protocols.identify import read_identify
from rapidp2p.protocols.identify.service import handle_identify
from rapidp2p.protocols.memory import memory_stream_pair

FAKE_IPS = ["10.1.2.3", "127.0.0.1", "::1", "fe80::1%eth0", "fd00::5", "2a00:1450::7", "44.1.2.3"]


@pytest.fixture
def fake_interfaces(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(host_addrs, "list_interface_ips", lambda: list(FAKE_IPS))
    host_addrs.clear_interface_cache()
    yield
    host_addrs.clear_interface_cache()


def test_real_interfaces_include_loopback() -> None:
    host_addrs.clear_interface_cache()
    ips = host_addrs.interface_ips()
    assert "127.0.0.1" in ips


def test_expand_unspecified(fake_interfaces: None) -> None:
    got = [
        str(a)
        for a in host_addrs.expand_unspecified(
            [Multiaddr("/ip4/0.0.0.0/tcp/4001"), Multiaddr("/ip6/::/tcp/4002")]
        )
    ]
    assert got == [
        "/ip4/127.0.0.1/tcp/4001",  # loopback first
        "/ip4/10.1.2.3/tcp/4001",
        "/ip4/44.1.2.3/tcp/4001",
        "/ip6/::1/tcp/4002",
        "/ip6/fd00::5/tcp/4002",
        "/ip6/2a00:1450::7/tcp/4002",
    ]  # no link-local (a multiaddr has no zone), no unspecified address
    kept = [Multiaddr("/ip4/127.0.0.1/tcp/1"), Multiaddr("/memory/5")]
    assert host_addrs.expand_unspecified(kept) == kept


def test_addrs_for_remote_rule() -> None:
    ours = [
        Multiaddr(a)
        for a in (
            "/ip4/127.0.0.1/tcp/1",
            "/ip4/10.0.0.1/tcp/1",
            "/ip4/8.8.4.4/tcp/1",
            "/dns4/x.example/tcp/1",
        )
    ]
    pick = host_addrs.addrs_for_remote
    assert pick(ours, Multiaddr("/ip4/127.0.0.1/tcp/9")) == ours
    assert pick(ours, None) == ours
    assert [str(a) for a in pick(ours, Multiaddr("/ip4/192.168.1.9/tcp/9"))] == [
        "/ip4/10.0.0.1/tcp/1",
        "/ip4/8.8.4.4/tcp/1",
        "/dns4/x.example/tcp/1",
    ]
    assert [str(a) for a in pick(ours, Multiaddr("/ip4/9.9.9.9/tcp/9"))] == [
        "/ip4/8.8.4.4/tcp/1",
        "/dns4/x.example/tcp/1",
    ]


async def test_host_listening_on_all_interfaces(fake_interfaces: None) -> None:
    async with await Host.create(listen=["/ip4/0.0.0.0/tcp/0"]) as server, Host() as client:
        (raw,) = server.listen_addrs
        port = str(raw).rsplit("/", 1)[-1]
        assert str(raw) == f"/ip4/0.0.0.0/tcp/{port}"
        texts = [str(a) for a in server.addrs]
        assert texts == [f"/ip4/{ip}/tcp/{port}" for ip in ("127.0.0.1", "10.1.2.3", "44.1.2.3")]
        assert not any("0.0.0.0" in str(a) for a in server.full_addrs)
        # Dial the loopback one only; identify to a loopback peer lists every address.
        conn = await client.connect(server.full_addrs[0])
        assert client.identify is not None
        info = await client.identify.identify_peer(conn)
        assert [str(a) for a in info.listen_addrs] == texts
        assert info.peer_record is not None
        assert [str(a) for a in info.peer_record.addrs] == texts
        # The DHT's own provider record carries the expanded addresses too.
        dht = KadDHT(server, KadConfig(mode="server"))
        me = dht._self_provider()
        assert [str(Multiaddr.from_bytes(a)) for a in me.addrs] == texts


async def test_identify_to_non_local_peer_omits_loopback(fake_interfaces: None) -> None:
    async with await Host.create(listen=["/ip4/0.0.0.0/tcp/0"]) as server:
        port = str(server.listen_addrs[0]).rsplit("/", 1)[-1]
        for remote, expected in (
            ("/ip4/192.168.7.7/tcp/5555", ["10.1.2.3", "44.1.2.3"]),
            ("/ip4/9.9.9.9/tcp/5555", ["44.1.2.3"]),
        ):
            a, b = memory_stream_pair()
            await handle_identify(server, b, observed_addr=Multiaddr(remote))
            info = await read_identify(a, server.peer_id)
            want = [f"/ip4/{ip}/tcp/{port}" for ip in expected]
            assert [str(x) for x in info.listen_addrs] == want
            assert info.peer_record is not None
            assert [str(x) for x in info.peer_record.addrs] == want


async def test_provider_records_follow_the_scope_rule(fake_interfaces: None) -> None:
    """Issue 13 point 1 for the DHT: our ADD_PROVIDER record and the provider addresses a
    GET_PROVIDERS answer carries are cut to what the requester could dial."""
    from rapidp2p.kad._proto import KadMessage, MessageType
    from rapidp2p.kad.operations import provider_key
    from rapidp2p.kad.store import ProviderEntry

    lan, public = Multiaddr("/ip4/192.168.7.7/tcp/5555"), Multiaddr("/ip4/9.9.9.9/tcp/5555")
    async with await Host.create(listen=["/ip4/0.0.0.0/tcp/0"]) as server:
        port = str(server.listen_addrs[0]).rsplit("/", 1)[-1]
        dht = KadDHT(server, KadConfig(mode="server"))

        def ips(addrs: tuple[bytes, ...]) -> list[str]:
            return [str(Multiaddr.from_bytes(a)).split("/")[2] for a in addrs]

        ops = dht.operations
        assert ips(ops.self_provider().addrs) == ["127.0.0.1", "10.1.2.3", "44.1.2.3"]
        assert ips(ops.self_provider(lan).addrs) == ["10.1.2.3", "44.1.2.3"]
        assert ips(ops.self_provider(public).addrs) == ["44.1.2.3"]

        # A provider another peer announced with every kind of address.
        key = provider_key(b"content")
        other = await Host.create()
        try:
            stored = tuple(
                Multiaddr(f"/ip4/{ip}/tcp/{port}").to_bytes()
                for ip in ("127.0.0.1", "10.1.2.3", "44.1.2.3")
            )
            now = dht._now()
            entry = ProviderEntry(other.peer_id.to_bytes(), stored, now + 3600)
            dht.providers.add(key, entry, now)
            ask = KadMessage(MessageType.GET_PROVIDERS, key)
            for remote, want in (
                (None, ["127.0.0.1", "10.1.2.3", "44.1.2.3"]),
                (Multiaddr("/ip4/127.0.0.1/tcp/9"), ["127.0.0.1", "10.1.2.3", "44.1.2.3"]),
                (lan, ["10.1.2.3", "44.1.2.3"]),
                (public, ["44.1.2.3"]),
            ):
                answer = dht.handlers.dispatch(other.peer_id, ask, remote)
                assert answer is not None
                (prov,) = answer.provider_peers
                assert ips(prov.addrs) == want, remote
        finally:
            await other.close()


@pytest.mark.parametrize(
    ("addr", "direct", "any_path"),
    [
        ("/ip4/1.2.3.4/tcp/4001", "1.2.3.4", "1.2.3.4"),
        ("/ip6/2001:db8::1/udp/4001/quic-v1", "2001:db8::1", "2001:db8::1"),
        (
            "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
            "/p2p-circuit",
            None,
            "1.2.3.4",
        ),
        ("/dns4/example.com/tcp/4001", None, None),
        ("/memory/7", None, None),
        (None, None, None),
    ],
)
def test_leading_ip_is_the_ip_an_address_starts_with(
    addr: str | None, direct: str | None, any_path: str | None
) -> None:
    ma = None if addr is None else Multiaddr(addr)
    got = host_addrs.leading_ip(ma)
    assert (None if got is None else str(got)) == direct
    got_any = host_addrs.leading_ip(ma, direct_only=False)
    assert (None if got_any is None else str(got_any)) == any_path
