"""DCUtR between rapidp2p hosts on loopback (hole punching needs no NAT to run its protocol):
a relay R, B reserving on R, A dialing B through R; B initiates, both punch, and the direct
connection takes new streams. Private addresses are allowed here (``allow_private``); the
tests behind real NATs are in ``test_dcutr_netns.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rapidp2p.exceptions import StreamResetError
from rapidp2p.host import HolePunchFailed, HolePunchSucceeded, Host, HostConfig
from rapidp2p.peer import Multiaddr
from rapidp2p.protocols.dcutr import (
    PROTOCOL_ID,
    HolePunchConfig,
    HolePunchError,
    HolePunchService,
)
from rapidp2p.relay import RelayService

TCP = "/ip4/127.0.0.1/tcp/0"
QUIC = "/ip4/127.0.0.1/udp/0/quic-v1"


class _Hosts:
    def __init__(self, relay: Host, a: Host, b: Host) -> None:
        self.relay, self.a, self.b = relay, a, b


async def _make(listen: str, *, punch_a: bool = True, cfg: HolePunchConfig | None = None,
                b_service: type[HolePunchService] = HolePunchService) -> _Hosts:  # fmt: skip
    off = HostConfig(enable_hole_punching=False)
    relay = await Host.create(listen=[listen], config=off)
    await relay.add_service(RelayService(relay))
    a = await Host.create(listen=[listen], config=HostConfig(enable_hole_punching=False))
    b = await Host.create(listen=[listen], config=HostConfig(enable_hole_punching=False))
    cfg = cfg or HolePunchConfig(allow_private=True, close_relayed_after=None)
    if punch_a:
        await a.add_service(HolePunchService(a, cfg))
    await b.add_service(b_service(b, cfg))
    await b.listen(f"{relay.full_addrs[0]}/p2p-circuit")
    return _Hosts(relay, a, b)


@pytest.fixture
async def made() -> AsyncIterator[list[_Hosts]]:
    out: list[_Hosts] = []
    yield out
    for h in out:
        for host in (h.a, h.b, h.relay):
            await host.close(linger=0)


def _circuit(h: _Hosts) -> str:
    return f"{h.relay.full_addrs[0]}/p2p-circuit/p2p/{h.b.peer_id}"


@pytest.mark.parametrize("listen", [TCP, QUIC], ids=["tcp", "quic"])
async def test_relayed_connection_upgraded_to_direct(made: list[_Hosts], listen: str) -> None:
    h = await _make(listen)
    made.append(h)
    with (
        h.a.events.subscribe(HolePunchSucceeded) as a_ev,
        h.b.events.subscribe(HolePunchSucceeded) as b_ev,
    ):
        relayed = await h.a.connect(_circuit(h))
        assert relayed.limited
        b_done = await b_ev.get(timeout=30)
        a_done = await a_ev.get(timeout=30)
    assert isinstance(b_done, HolePunchSucceeded) and isinstance(a_done, HolePunchSucceeded)
    assert b_done.initiator and not a_done.initiator
    assert b_done.peer_id == h.a.peer_id and a_done.peer_id == h.b.peer_id
    assert b_done.attempt >= 1
    direct = h.a.live_connection(h.b.peer_id)
    assert direct is not None and not direct.limited and direct is not relayed
    assert ("/quic-v1" in str(direct.remote_addr)) == (listen == QUIC)
    # New streams take the direct connection; the relayed one is still open.
    stream = await h.a.new_stream(h.b.peer_id, "/ipfs/ping/1.0.0")
    assert stream.conn is direct
    stream.reset()
    assert (await h.a.ping(h.b.peer_id))[0] >= 0
    assert not relayed.is_closed
    # Both sides agree on one connection: B's view of it is direct too.
    b_direct = h.b.direct_connection(h.a.peer_id)
    assert b_direct is not None


class _Unreachable(HolePunchService):
    """Offers an address nothing listens on: every punch fails."""

    def own_addrs(self) -> list[Multiaddr]:
        return [Multiaddr("/ip4/127.0.0.1/tcp/1")]


async def test_failed_punch_is_reported_and_relay_kept(made: list[_Hosts]) -> None:
    cfg = HolePunchConfig(allow_private=True, punch_timeout=0.5, close_relayed_after=None)
    h = await _make(TCP, cfg=cfg, b_service=_Unreachable)
    made.append(h)
    # A answers with a bogus address too: neither side's dials can reach the other.
    a_svc = h.a.services.find(HolePunchService)
    assert a_svc is not None
    a_svc.own_addrs = lambda: [Multiaddr("/ip4/127.0.0.1/tcp/1")]  # type: ignore[method-assign]
    with h.b.events.subscribe(HolePunchFailed, HolePunchSucceeded) as ev:
        relayed = await h.a.connect(_circuit(h))
        failed = await ev.get(timeout=30)
    assert isinstance(failed, HolePunchFailed), failed
    assert failed.attempts == 3 and failed.initiator
    assert isinstance(failed.error, HolePunchError)
    assert h.a.direct_connection(h.b.peer_id) is None
    assert h.a.live_connection(h.b.peer_id) is relayed
    assert (await h.a.ping(h.b.peer_id))[0] >= 0  # the relayed connection still serves


async def test_no_address_to_offer_fails_at_once(made: list[_Hosts]) -> None:
    # Private addresses not allowed: on loopback B has nothing to offer.
    cfg = HolePunchConfig(close_relayed_after=None)
    h = await _make(TCP, cfg=cfg)
    made.append(h)
    with h.b.events.subscribe(HolePunchFailed) as ev:
        await h.a.connect(_circuit(h))
        failed = await ev.get(timeout=30)
    assert isinstance(failed, HolePunchFailed)
    assert failed.attempts == 1 and "no public address" in str(failed.error)


async def test_garbage_on_the_stream_resets_it(made: list[_Hosts]) -> None:
    # B runs no DCUtR; it speaks to A's by hand on the relayed connection.
    h = await _make(TCP, cfg=HolePunchConfig(allow_private=True), b_service=_Silent)
    made.append(h)
    assert h.b.services.find(_Silent) is not None
    # A reserves too, so that B can reach A through R (A's handler runs on limited conns only).
    await h.a.listen(f"{h.relay.full_addrs[0]}/p2p-circuit")
    relayed = await h.b.connect(f"{h.relay.full_addrs[0]}/p2p-circuit/p2p/{h.a.peer_id}")
    assert relayed.limited
    stream = await h.b.new_stream(h.a.peer_id, PROTOCOL_ID, lazy=False)
    stream.write(b"\xff\xff\x01")  # a length over the 4 KiB cap
    await stream.drain()
    with pytest.raises(StreamResetError):
        while await stream.read(100):
            pass
    svc = h.a.services.find(HolePunchService)
    assert svc is not None
    for _ in range(100):
        if svc.stats.get("malformed"):
            break
        await asyncio.sleep(0.02)
    assert svc.stats.get("malformed") == 1
    assert (await h.b.ping(h.a.peer_id))[0] >= 0  # the connection is untouched


class _Silent(HolePunchService):
    """Serves nothing and initiates nothing (a peer driven by the test)."""

    async def _start(self) -> None:
        return None

    def on_connection(self, conn: object) -> None:
        return None
