"""HTTP over libp2p streams (``/http/1.1``) with go-libp2p's ``p2p/http``, both directions:
a GET, a POST with a 1 MiB body, and the ``.well-known/libp2p/protocols`` document; the
rapidp2p side serves through the ASGI bridge too (an ASGI app served to a go client)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

pytest.importorskip("h11")

from peers import PeerProcess, find_result, run_dial_async

from rapidp2p import Host
from rapidp2p.http import WELL_KNOWN_PATH, HttpClient, HttpServer, Request, Response, asgi_handler
from rapidp2p.peer import PeerId

pytestmark = [pytest.mark.interop, pytest.mark.peers("go-peer")]

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
MIB = 1 << 20
GO_DOCUMENT = {
    "/rapidp2p-test/echo/1": {"path": "/echo/"},
    "/rapidp2p-test/digest/1": {"path": "/digest/"},
}


async def test_rapidp2p_calls_go_libp2p_handlers() -> None:
    async with PeerProcess("go-peer", LOOPBACK, command="http-serve") as go, Host() as host:
        client = HttpClient(host)
        await host.connect(go.addr)
        go_id = PeerId.from_string(go.peer_id)

        resp = await client.request(go_id, "GET", "/echo/hello?x=1", headers=[("X-Test", "py")])
        assert resp.status == 200, resp
        assert resp.header("x-served-by") == "go-libp2p"
        got = json.loads(resp.content)
        # libp2phttp strips the mount prefix and knows the caller's peer id.
        assert got == {
            "method": "GET",
            "path": "/hello",
            "query": "x=1",
            "peer": str(host.peer_id),
            "body_len": 0,
            "x_test": "py",
        }

        data = bytes(range(256)) * (MIB // 256)
        resp = await client.request(go_id, "POST", "/digest/", body=data)
        assert resp.status == 200
        assert resp.content.decode() == f"{MIB} {hashlib.sha256(data).hexdigest()}"

        resp = await client.request(
            go_id, "GET", WELL_KNOWN_PATH, headers=[("accept", "application/json")]
        )
        assert resp.status == 200
        assert json.loads(resp.content) == GO_DOCUMENT
        # Resolving a protocol's path through the document, as NamespacedClient does.
        assert await client.protocols(go_id) == {p: m["path"] for p, m in GO_DOCUMENT.items()}
        resp = await client.request(
            go_id, "PUT", "/n", body=b"x" * 10, protocol="/rapidp2p-test/echo/1"
        )
        assert json.loads(resp.content)["path"] == "/n"
        assert json.loads(resp.content)["body_len"] == 10


async def echo(request: Request) -> Response:
    body = await request.read()
    return Response(
        200,
        [("content-type", "application/json"), ("x-served-by", "rapidp2p")],
        json.dumps(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "peer": str(request.peer_id),
                "body_len": len(body),
                "x_test": request.header("x-test"),
            }
        ).encode(),
    )


async def asgi_digest(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A pure ASGI app: POST body -> "<bytes> <sha256>" (what Starlette compiles down to)."""
    h = hashlib.sha256()
    n = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        h.update(chunk)
        n += len(chunk)
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": f"{n} {h.hexdigest()}".encode()})


async def test_go_libp2p_calls_rapidp2p_handlers() -> None:
    async with await Host.create(listen=[LOOPBACK]) as host:
        server = HttpServer(host)
        server.mount("/rapidp2p-test/echo/1", echo, path="/echo/")
        server.mount("/rapidp2p-test/digest/1", asgi_handler(asgi_digest), path="/digest/")
        addr = str(host.full_addrs[0])

        out = await run_dial_async(
            "go-peer", "--connect", addr, "--path", "/echo/hi?y=2", command="http-get"
        )
        got = find_result(out, "status")
        assert got["status"] == 200, got
        assert got["headers"]["x-served-by"] == "rapidp2p"
        body = json.loads(got["body"])
        assert body["method"] == "GET" and body["path"] == "/hi" and body["query"] == "y=2"
        assert body["x_test"] == "from-go"
        assert PeerId.from_string(body["peer"]) != host.peer_id  # the go peer's id

        out = await run_dial_async(
            "go-peer",
            "--connect",
            addr,
            "--path",
            "/digest/",
            "--bytes",
            str(MIB),
            command="http-post",
        )
        got = find_result(out, "status")
        assert got["status"] == 200, got
        assert got["sent_bytes"] == MIB
        assert got["body"] == f"{MIB} {got['sent_sha256']}"

        # NamespacedClient: go resolves the prefix from our well-known document.
        out = await run_dial_async(
            "go-peer",
            "--connect",
            addr,
            "--protocol",
            "/rapidp2p-test/echo/1",
            "--path",
            "/via-doc",
            "--bytes",
            "1000",
            command="http-post",
        )
        got = find_result(out, "status")
        assert got["status"] == 200, got
        assert json.loads(got["body"])["path"] == "/via-doc"
        assert json.loads(got["body"])["body_len"] == 1000

        out = await run_dial_async("go-peer", "--connect", addr, command="http-wellknown")
        got = find_result(out, "well_known")
        assert got["status"] == 200
        assert got["headers"]["content-type"] == "application/json"
        assert got["well_known"] == GO_DOCUMENT
