"""Private networks against go-libp2p (``libp2p.PrivateNetwork``) and rust-libp2p
(``libp2p-pnet``), both directions, with one ``/key/swarm/psk/1.0.0/`` file: ping, identify
and echo succeed with the same key; a peer with another key, or none, is refused, and our side
reports :class:`PrivateNetworkError`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from peers import PeerError, PeerProcess, dial_from_peer, find_result

from rapidp2p.exceptions import DialError, PrivateNetworkError
from rapidp2p.host import Host, HostConfig
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.pnet import PreSharedKey
from rapidp2p.protocols.echo import handle_echo

PEERS = ["go-peer", "rust-peer"]
ECHO = "/echo/1.0.0"
ECHO_BYTES = 4 << 20
TCP = "/ip4/127.0.0.1/tcp/0"

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]


@pytest.fixture
def swarm_key(tmp_path: Path) -> Path:
    path = tmp_path / "swarm.key"
    PreSharedKey.generate().write(path)
    return path


@pytest.fixture
def other_key(tmp_path: Path) -> Path:
    path = tmp_path / "other.key"
    PreSharedKey.generate().write(path)
    return path


def _capture_inbound(host: Host) -> list[Any]:
    made: list[Any] = []
    factory = host._new_protocol

    def wrapped() -> Any:
        mux = factory()
        made.append(mux)
        return mux

    host._new_protocol = wrapped  # type: ignore[method-assign]
    return made


async def _closed(muxes: list[Any]) -> Any:
    for _ in range(500):
        if muxes and all(m.is_closed for m in muxes):
            return muxes[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"inbound connections still open: {muxes}")


@pytest.mark.parametrize("name", PEERS)
async def test_rapidp2p_dials_peer_in_the_network(name: str, swarm_key: Path) -> None:
    async with (
        PeerProcess(name, extra_args=["--swarm-key", str(swarm_key)]) as peer,
        Host(config=HostConfig(psk=swarm_key)) as host,
    ):
        maddr = Multiaddr(peer.addr)
        _, peer_id = maddr.split_peer_id()
        assert peer_id is not None
        conn = await host.connect(maddr)
        assert conn.remote_peer == peer_id and conn.security == "/noise"
        assert conn._conn.is_protected
        assert len(await host.ping(peer_id, 3)) == 3
        info = await host.identify.identify_peer(conn)
        assert info.public_key is not None
        assert PeerId.from_public_key(info.public_key) == peer_id
        stream = await host.new_stream(peer_id, ECHO)
        data = bytes(range(256)) * (ECHO_BYTES // 256)

        chunks: list[bytes] = []

        async def reader() -> None:
            async for chunk in stream:
                chunks.append(chunk)

        task = asyncio.ensure_future(reader())
        stream.write(data)
        await stream.drain()
        await stream.close()
        await asyncio.wait_for(task, 120)
        assert b"".join(chunks) == data


@pytest.mark.parametrize("name", PEERS)
async def test_peer_dials_rapidp2p_in_the_network(name: str, swarm_key: Path) -> None:
    async with await Host.create(listen=[TCP], config=HostConfig(psk=swarm_key)) as host:
        host.set_stream_handler(ECHO, handle_echo)
        results = await dial_from_peer(
            name,
            str(host.full_addrs[0]),
            ping=True,
            identify=True,
            echo_bytes=ECHO_BYTES,
            extra_args=["--swarm-key", str(swarm_key)],
        )
        assert find_result(results, "ping_rtt_ms")["ping_rtt_ms"] > 0
        assert find_result(results, "identify")["identify"]["agent_version"].startswith("rapidp2p/")
        assert find_result(results, "echo_bytes") == {"echo_bytes": ECHO_BYTES, "ok": True}


@pytest.mark.parametrize("name", PEERS)
@pytest.mark.parametrize("peer_key", ["other", "none"])
async def test_rapidp2p_refuses_peer_outside_the_network(
    name: str, peer_key: str, swarm_key: Path, other_key: Path
) -> None:
    extra = ["--swarm-key", str(other_key)] if peer_key == "other" else []
    async with (
        PeerProcess(name, extra_args=extra) as peer,
        Host(config=HostConfig(psk=swarm_key, upgrade_timeout=10)) as host,
    ):
        with pytest.raises(DialError) as info:
            await host.connect(Multiaddr(peer.addr))
        errors = list(info.value.errors.values())
        assert errors and all(isinstance(e, PrivateNetworkError) for e in errors), errors


@pytest.mark.parametrize("name", PEERS)
@pytest.mark.parametrize("peer_key", ["other", "none"])
async def test_peer_outside_the_network_is_refused(
    name: str, peer_key: str, swarm_key: Path, other_key: Path
) -> None:
    extra = ["--swarm-key", str(other_key)] if peer_key == "other" else []
    async with Host(config=HostConfig(psk=swarm_key)) as host:
        accepted = _capture_inbound(host)
        await host.listen(TCP)
        with pytest.raises(PeerError):
            await dial_from_peer(
                name, str(host.full_addrs[0]), ping=True, extra_args=extra, timeout=60
            )
        mux = await _closed(accepted)
        assert isinstance(mux.close_reason, PrivateNetworkError), mux.close_reason
        assert not host.connections()
