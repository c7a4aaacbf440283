"""The connection gater (issue 10): each hook vetoes what it should, and only that."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from test_host_util import ECHO, host_pair, server_info

from rapidp2p.exceptions import ConnectionGated, DialError
from rapidp2p.host import Host, HostConfig
from rapidp2p.host.gater import AllowAll, ConnectionGater, ListGater
from rapidp2p.peer import Multiaddr
from rapidp2p.transport.tcp import TcpTransport


class Recorder(AllowAll):
    """Records every call; refuses the hook named in ``deny``."""

    def __init__(self, deny: str = "") -> None:
        self.deny = deny
        self.calls: list[tuple[str, Any]] = []

    def _answer(self, hook: str, *args: Any) -> bool:
        self.calls.append((hook, args))
        return hook != self.deny

    def intercept_peer_dial(self, peer: Any) -> bool:
        return self._answer("peer_dial", peer)

    def intercept_addr_dial(self, peer: Any, addr: Any) -> bool:
        return self._answer("addr_dial", peer, addr)

    def intercept_accept(self, local_addr: Any, remote_addr: Any) -> bool:
        return self._answer("accept", remote_addr)

    def intercept_secured(self, direction: str, peer: Any, remote_addr: Any) -> bool:
        return self._answer("secured", direction, peer)

    def intercept_upgraded(self, conn: Any) -> bool:
        return self._answer("upgraded", conn.remote_peer)


def hooks(g: Recorder) -> list[str]:
    return [h for h, _ in g.calls]


def test_protocol_is_satisfied() -> None:
    assert isinstance(AllowAll(), ConnectionGater)
    assert isinstance(ListGater(), ConnectionGater)


async def test_every_hook_runs_in_order_when_allowed() -> None:
    cg, sg = Recorder(), Recorder()
    async with host_pair("tcp", HostConfig(gater=sg), HostConfig(gater=cg)) as (client, server):
        s = await client.new_stream(server_info(server), ECHO)
        s.write(b"hi")
        await s.close()
        assert await s.read() == b"hi"
    assert hooks(cg) == ["peer_dial", "addr_dial", "secured", "upgraded"]
    assert hooks(sg) == ["accept", "secured", "upgraded"]
    assert cg.calls[2][1] == ("outbound", server.peer_id)
    assert sg.calls[1][1] == ("inbound", client.peer_id)


@pytest.mark.parametrize("hook", ["peer_dial", "addr_dial", "secured", "upgraded"])
async def test_dialer_side_hooks_refuse(hook: str) -> None:
    g = Recorder(deny=hook)
    async with host_pair("tcp", client_config=HostConfig(gater=g)) as (client, server):
        with pytest.raises((ConnectionGated, DialError)) as info:
            await client.connect(server_info(server))
        assert "gater refused" in str(info.value)
        assert hooks(g)[-1] == hook
        await asyncio.sleep(0.05)
        assert client.connections() == []
        # the refusal closed nothing else: the server still serves other peers
        other = await Host.create()
        try:
            await other.ping(server_info(server))
        finally:
            await other.close()


@pytest.mark.parametrize("hook", ["accept", "secured", "upgraded"])
async def test_listener_side_hooks_refuse(hook: str) -> None:
    g = Recorder(deny=hook)
    async with host_pair("tcp", server_config=HostConfig(gater=g)) as (client, server):
        if hook != "accept":
            # Noise XX: the dialer is done when it sends its last message, before the listener
            # checks it, so its connect may succeed; the listener drops the connection then.
            with contextlib.suppress(DialError):
                await client.connect(server_info(server))
        else:
            with pytest.raises(DialError) as info:
                await client.connect(server_info(server))
            if hook == "accept":
                assert "the listener refused the connection: gater refused" in str(info.value)
        for _ in range(400):
            if not client.connections() and not server.connections():
                break
            await asyncio.sleep(0.005)
        assert server.connections() == [] and client.connections() == []
        assert hooks(g)[-1] == hook


async def test_list_gater_denies_peers_and_networks() -> None:
    async with host_pair("tcp") as (client, server):
        g = ListGater(peers=[server.peer_id])
        assert not g.intercept_peer_dial(server.peer_id)
        assert g.intercept_peer_dial(client.peer_id)
        g = ListGater(networks=["127.0.0.2/32"])
        server.config.gater = g
        stranger = await Host.create(transports=[TcpTransport(local_ip="127.0.0.2")])
        friend = await Host.create(transports=[TcpTransport(local_ip="127.0.0.3")])
        try:
            with pytest.raises(DialError):
                await stranger.connect(server_info(server))
            await friend.ping(server_info(server))
            assert not g.intercept_addr_dial(None, Multiaddr("/ip4/127.0.0.2/tcp/1"))
            # allow-only: only the listed network gets in
            server.config.gater = ListGater(networks=["127.0.0.2/32"], allow_only=True)
            await friend.disconnect(server.peer_id)
            await stranger.ping(server_info(server))
            with pytest.raises(DialError):
                await friend.connect(server_info(server))
        finally:
            await stranger.close()
            await friend.close()
