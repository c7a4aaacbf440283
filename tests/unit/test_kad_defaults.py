"""Issue 13 point 3: ``KadDHT(host)`` with no configuration works on a local network as the
CLI does (auto mode becomes a server there), and the default validator is explicit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from rapidp2p import Host
from rapidp2p.exceptions import InvalidRecordError
from rapidp2p.kad import KadDHT, PermissiveValidator, default_validator

PROTO = "/ipfs/kad/1.0.0"


async def _until(cond: Callable[[], bool], timeout: float = 30.0) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_default_dhts_on_loopback_become_servers_and_fill_tables() -> None:
    hosts = [await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) for _ in range(3)]
    dhts = [KadDHT(h) for h in hosts]  # as the README shows: no config at all
    try:
        for d in dhts:
            await d.start()
        assert all(d.mode == "client" for d in dhts)  # nobody met yet
        boot = str(hosts[0].full_addrs[0])
        await dhts[1].bootstrap([boot])
        await dhts[2].bootstrap([boot])
        assert all(d.mode == "server" and d.reachable for d in dhts)
        assert all(PROTO in h.protocols for h in hosts)
        for d in dhts[1:]:
            await d.refresh()
        assert await _until(lambda: all(len(d.routing) == 2 for d in dhts)), [
            len(d.routing) for d in dhts
        ]
        n = await dhts[1].provide("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
        assert n >= 1
    finally:
        for d in dhts:
            await d.close()
        for h in hosts:
            await h.close()


async def test_a_host_that_does_not_listen_stays_client() -> None:
    server = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    client = await Host.create()
    dhts = [KadDHT(server), KadDHT(client)]
    try:
        for d in dhts:
            await d.start()
        await dhts[1].bootstrap([str(server.full_addrs[0])])
        assert dhts[1].mode == "client" and PROTO not in client.protocols
        assert dhts[0].mode == "server"  # it was dialled: reachable
    finally:
        for d in dhts:
            await d.close()
        await server.close()
        await client.close()


async def test_default_validator_is_pk_only_and_says_how_to_extend() -> None:
    async with Host() as host:
        dht = KadDHT(host)
        with pytest.raises(InvalidRecordError, match="PermissiveValidator"):
            await dht.put_value(b"/test/x", b"v")
        dht = KadDHT(host, validator=default_validator({"test": PermissiveValidator()}))
        dht.validator.validate(b"/test/x", b"v")
