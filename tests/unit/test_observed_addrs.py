"""The observed-address manager: identify's observedAddr is trusted only when 4 observers in
distinct IP groups reported it, on a connection to one of our listen ports."""

from __future__ import annotations

import asyncio

import pytest

from rapidp2p import Host
from rapidp2p.host.events import LocalAddressesChanged
from rapidp2p.host.observed import (
    ACTIVATION_THRESHOLD,
    MAX_OBSERVED_ADDRS,
    ObservedAddrManager,
    observer_group,
)
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.transport.contracts import Connection
from rapidp2p.transport.tcp import TcpTransport

LISTEN = [Multiaddr("/ip4/0.0.0.0/tcp/4001"), Multiaddr("/ip6/::/tcp/4001")]
LOCAL = Multiaddr("/ip4/192.168.1.10/tcp/4001")
PUBLIC = Multiaddr("/ip4/1.2.3.4/tcp/4001")


def _record(
    m: ObservedAddrManager,
    observer: str,
    observed: Multiaddr = PUBLIC,
    local: Multiaddr = LOCAL,
    now: float = 0.0,
) -> bool:
    return m.record(
        observed, local=local, observer=Multiaddr(observer), listen_addrs=LISTEN, now=now
    )


def test_four_distinct_observers_confirm() -> None:
    m = ObservedAddrManager()
    for i in range(ACTIVATION_THRESHOLD - 1):
        assert _record(m, f"/ip4/5.6.7.{i}/tcp/1")
        assert m.addrs(0.0) == []
    assert _record(m, "/ip4/5.6.7.99/tcp/1")
    assert m.addrs(0.0) == [PUBLIC]


def test_same_observer_counts_once() -> None:
    m = ObservedAddrManager()
    for port in range(10):
        _record(m, f"/ip4/5.6.7.8/tcp/{port + 1}")
    assert m.observers(PUBLIC, 0.0) == 1
    assert m.addrs(0.0) == []


def test_ipv6_observers_group_by_56() -> None:
    assert observer_group(Multiaddr("/ip6/2001:db8:0:1::1/tcp/1")) == observer_group(
        Multiaddr("/ip6/2001:db8:0:ff::9/tcp/1")
    )
    assert observer_group(Multiaddr("/ip6/2001:db8:0:100::1/tcp/1")) != observer_group(
        Multiaddr("/ip6/2001:db8:0:1::1/tcp/1")
    )
    m = ObservedAddrManager()
    for i in range(8):
        _record(m, f"/ip6/2001:db8:0:{i}::1/tcp/1")  # all in one /56
    assert m.observers(PUBLIC, 0.0) == 1


def test_non_ip_observers_never_count() -> None:
    assert observer_group(Multiaddr("/memory/1")) is None
    relay = "/ip4/5.6.7.8/tcp/1/p2p/12D3KooWLxtAU5kLx2Wi3ZkuoKwmkPNEWYeDn9KyHz6CrDixT3Da"
    assert observer_group(Multiaddr(relay + "/p2p-circuit")) is None
    assert not _record(ObservedAddrManager(), "/memory/1")


def test_only_observations_on_a_listen_port_count() -> None:
    m = ObservedAddrManager()
    # Our outbound connection from an ephemeral port: the NAT's mapping for it says nothing.
    assert not _record(m, "/ip4/5.6.7.8/tcp/1", local=Multiaddr("/ip4/192.168.1.10/tcp/50000"))
    # A UDP observation on a TCP connection cannot be about it.
    assert not _record(m, "/ip4/5.6.7.8/tcp/1", observed=Multiaddr("/ip4/1.2.3.4/udp/4001"))
    # An observation of exactly where we listen adds nothing.
    listen = [Multiaddr("/ip4/192.168.1.10/tcp/4001")]
    assert not m.record(
        LOCAL, local=LOCAL, observer=Multiaddr("/ip4/5.6.7.8/tcp/1"), listen_addrs=listen, now=0
    )
    assert len(m) == 0


def test_specific_listen_ip_must_match() -> None:
    m = ObservedAddrManager()
    listen = [Multiaddr("/ip4/10.0.0.1/tcp/4001")]
    assert not m.record(
        PUBLIC, local=LOCAL, observer=Multiaddr("/ip4/5.6.7.8/tcp/1"), listen_addrs=listen, now=0
    )


def test_observations_expire() -> None:
    m = ObservedAddrManager(ttl=100.0)
    for i in range(4):
        _record(m, f"/ip4/5.6.7.{i}/tcp/1", now=float(i))
    assert m.addrs(50.0) == [PUBLIC]
    assert m.addrs(101.5) == []  # the first observation is too old
    assert m.candidates(1000.0) == []


def test_tables_are_bounded() -> None:
    m = ObservedAddrManager()
    for port in range(MAX_OBSERVED_ADDRS * 3):
        _record(m, "/ip4/5.6.7.8/tcp/1", observed=Multiaddr(f"/ip4/1.2.3.4/tcp/{port + 1}"))
    assert len(m) == MAX_OBSERVED_ADDRS


def test_at_most_three_addrs_per_listen_port() -> None:
    m = ObservedAddrManager()
    for k in range(5):
        for i in range(4):
            _record(m, f"/ip4/5.6.{k}.{i}/tcp/1", observed=Multiaddr(f"/ip4/1.2.3.{k}/tcp/4001"))
    assert len(m.addrs(0.0)) == 3


def test_peer_suffix_is_stripped() -> None:
    m = ObservedAddrManager()
    with_peer = Multiaddr(
        "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWLxtAU5kLx2Wi3ZkuoKwmkPNEWYeDn9KyHz6CrDixT3Da"
    )
    for i in range(4):
        _record(m, f"/ip4/5.6.7.{i}/tcp/1", observed=with_peer)
    assert m.addrs(0.0) == [PUBLIC]


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ObservedAddrManager(threshold=0)


async def _inbound(host: Host, peer: PeerId) -> list[Connection]:
    for _ in range(200):
        conns = host.connections(peer)
        if conns:
            return list(conns)
        await asyncio.sleep(0.01)
    raise AssertionError("no inbound connection")


async def test_host_records_observations_from_real_inbound_connections() -> None:
    """Four peers dial us from distinct loopback IPs; each inbound connection sits on our
    listen port, so what each says it sees counts, and the fourth confirms the address."""
    a = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    port = str(a.listen_addrs[0]).rsplit("/", 1)[-1]
    public = Multiaddr(f"/ip4/1.2.3.4/tcp/{port}")
    peers = [
        await Host.create(transports=[TcpTransport(local_ip=f"127.0.0.{i + 2}")]) for i in range(4)
    ]
    changes = a.events.subscribe(LocalAddressesChanged)
    try:
        for n, p in enumerate(peers):
            out = await p.connect(a.full_addrs[0])
            assert out.local_addr is not None and str(out.local_addr).startswith(
                f"/ip4/127.0.0.{n + 2}/tcp/"
            )
            (conn,) = await _inbound(a, p.peer_id)
            assert conn.local_addr == a.listen_addrs[0]
            assert a.record_observed_addr(conn, public)
            assert a.observed_addrs() == ([public] if n == 3 else [])
            # Identify's own report (a's listen address itself) adds nothing.
            assert not a.record_observed_addr(conn, a.listen_addrs[0])
        assert public in a.addrs
        ev = await changes.get(timeout=5)  # exactly when the fourth observer confirmed it
        assert isinstance(ev, LocalAddressesChanged) and public in ev.addrs
        # The newly confirmed address reaches connected peers by identify-push.
        for _ in range(300):
            if all(public in p.peerstore.addrs(a.peer_id) for p in peers):
                break
            await asyncio.sleep(0.01)
        assert all(public in p.peerstore.addrs(a.peer_id) for p in peers)
    finally:
        for p in peers:
            await p.close(linger=0)
        await a.close(linger=0)


def test_ip_guesses_from_any_connection() -> None:
    """An outbound connection (ephemeral local port) does not confirm an address, but the
    IP it was seen at yields a guess: our listen port on that IP, for AutoNAT v2 to test."""
    m = ObservedAddrManager()
    outbound = Multiaddr("/ip4/192.168.1.10/tcp/50000")
    assert not _record(
        m, "/ip4/5.6.7.8/tcp/1", observed=Multiaddr("/ip4/1.2.3.4/tcp/61000"), local=outbound
    )
    assert m.addrs(0.0) == []
    assert m.ip_guesses(LISTEN, 0.0) == [Multiaddr("/ip4/1.2.3.4/tcp/4001")]
    # Our own listen IP is no guess; old observations expire.
    listen = [Multiaddr("/ip4/1.2.3.4/tcp/4001")]
    assert m.ip_guesses(listen, 0.0) == []
    assert m.ip_guesses(LISTEN, 10_000.0) == []


def test_ip_guesses_are_bounded() -> None:
    m = ObservedAddrManager()
    for i in range(50):
        _record(m, "/ip4/5.6.7.8/tcp/1", observed=Multiaddr(f"/ip4/1.2.{i}.4/tcp/9"))
    assert len(m.ip_guesses(LISTEN, 0.0)) == 8
