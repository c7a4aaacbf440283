"""Delegated routing over HTTP (Routing V1): our client against our server in front of a DHT
(providers and peers found through two DHT nodes), JSON and NDJSON answers, 404s, and answers
that are not Routing V1."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from rapidp2p.discovery import PeerDiscovered
from rapidp2p.discovery.routing_http import (
    DelegatedRoutingClient,
    DelegatedRoutingError,
    RoutingV1Server,
    parse_records,
)
from rapidp2p.host import Host
from rapidp2p.http.messages import Request, Response
from rapidp2p.http.plain import serve_plain
from rapidp2p.kad import KadConfig, KadDHT
from rapidp2p.peer import PeerId

TCP = "/ip4/127.0.0.1/tcp/0"
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


@contextlib.asynccontextmanager
async def dht_node() -> AsyncIterator[KadDHT]:
    host = await Host.create(listen=[TCP])
    dht = KadDHT(host, KadConfig(mode="server", request_timeout=10.0, query_timeout=20.0))
    await dht.start()
    try:
        yield dht
    finally:
        await dht.close()
        await host.close()


@contextlib.asynccontextmanager
async def http_server(handler: object) -> AsyncIterator[int]:
    server = await serve_plain(handler)  # type: ignore[arg-type]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("streaming", [True, False])
async def test_client_against_server_over_a_dht(streaming: bool) -> None:
    async with dht_node() as front, dht_node() as provider:
        await front.bootstrap([provider.host.full_addrs[0]])
        await provider.bootstrap([front.host.full_addrs[0]])
        assert await provider.provide(CID) >= 1
        async with http_server(RoutingV1Server(front)) as port:
            client = DelegatedRoutingClient("127.0.0.1", port, streaming=streaming)
            async with await Host.create() as user:
                await client.start(user)
                events = user.events.subscribe(PeerDiscovered)
                found = await client.find_providers(CID)
                assert [p.peer_id for p in found] == [provider.peer_id]
                assert found[0].addrs == provider.host.addrs
                ev = await events.get(timeout=5)
                assert isinstance(ev, PeerDiscovered) and ev.source == "delegated-routing"
                peer = await client.find_peer(provider.peer_id)
                assert peer is not None and peer.addrs
                other = PeerId.from_string("12D3KooWGzBkUvuVgBd2Dt8ANd8C3MXbKrHLhTdRjNbqX2ouUPVp")
                assert await client.find_peer(other) is None
                missing = "bafkreie7q3iidccmpvginoqnc4mx7bm5pv5s3on6fctebkgxmrauy2rdaa"
                assert await client.find_providers(missing) == []
                await client.close()


async def test_server_rejects_bad_paths_and_ids() -> None:
    async with dht_node() as node, http_server(RoutingV1Server(node)) as port:
        from rapidp2p.http.plain import plain_request

        assert (await plain_request("127.0.0.1", port, "GET", "/routing/v1/nope/x")).status == 404
        assert (
            await plain_request("127.0.0.1", port, "POST", f"/routing/v1/providers/{CID}")
        ).status == 405
        bad = await plain_request("127.0.0.1", port, "GET", "/routing/v1/peers/not-a-peer-id")
        assert bad.status == 400


async def _canned(request: Request) -> Response:
    path = request.path
    if path.endswith("/garbage"):
        return Response(200, [("content-type", "application/json")], b"{not json")
    if path.endswith("/error"):
        return Response(500)
    records = [
        {
            "Schema": "peer",
            "ID": "12D3KooWGzBkUvuVgBd2Dt8ANd8C3MXbKrHLhTdRjNbqX2ouUPVp",
            "Addrs": ["/ip4/10.0.0.1/tcp/4001", "not-an-addr", 7],
            "Protocols": ["transport-bitswap"],
        },
        {"Schema": "bitswap", "ID": "x"},  # unknown schema: skipped
        {"Schema": "peer", "ID": "bad-id"},  # bad id: skipped
    ]
    body = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    return Response(200, [("content-type", "application/x-ndjson")], body)


async def test_client_skips_bad_records_and_refuses_non_routing_answers() -> None:
    async with http_server(_canned) as port:
        client = DelegatedRoutingClient("127.0.0.1", port)
        found = await client.find_providers("ok")
        assert len(found) == 1 and [str(a) for a in found[0].addrs] == ["/ip4/10.0.0.1/tcp/4001"]
        with pytest.raises(DelegatedRoutingError):
            await client.find_providers("garbage")
        with pytest.raises(DelegatedRoutingError):
            await client.find_providers("error")
    with pytest.raises(DelegatedRoutingError):
        await DelegatedRoutingClient("127.0.0.1", port).find_providers("gone")


def test_parse_records_caps_and_shapes() -> None:
    pid = "12D3KooWGzBkUvuVgBd2Dt8ANd8C3MXbKrHLhTdRjNbqX2ouUPVp"
    many = {"Providers": [{"Schema": "peer", "ID": pid, "Addrs": []}] * 500}
    assert len(parse_records(json.dumps(many).encode(), "application/json", "Providers")) == 100
    with pytest.raises(DelegatedRoutingError):
        parse_records(b"[1, 2]", "application/json", "Providers")
    with pytest.raises(DelegatedRoutingError):
        parse_records(b'{"Providers": 3}', "application/json", "Providers")
    assert parse_records(b"{}", "application/json", "Providers") == []
