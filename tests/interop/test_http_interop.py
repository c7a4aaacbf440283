"""HTTP over libp2p streams (``/http/1.1``) with go-libp2p's ``p2p/http``, both directions:
a GET, a POST with a 1 MiB body, and the ``.well-known/libp2p/protocols`` document; the
rapidp2p side serves through the ASGI bridge too (an ASGI app served to a go client).
Then ``libp2p-PeerID`` authentication over plain HTTP on loopback with go-libp2p's
``p2p/http/auth``, both directions, both handshakes and the bearer token."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest
from peers import PeerProcess, find_result, run_dial_async

from rapidp2p import Host
from rapidp2p.crypto import generate_keypair
from rapidp2p.http import WELL_KNOWN_PATH, HttpClient, HttpServer, Request, Response, asgi_handler
from rapidp2p.http.auth import PeerIdAuthClient, PeerIdAuthServer, auth_handler
from rapidp2p.http.auth._params import b64encode
from rapidp2p.http.plain import plain_request, serve_plain
from rapidp2p.peer import PeerId

pytestmark = pytest.mark.interop

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
MIB = 1 << 20
DOCUMENT = {
    "/rapidp2p-test/echo/1": {"path": "/echo/"},
    "/rapidp2p-test/digest/1": {"path": "/digest/"},
}


HTTP_PEERS = [
    pytest.param("go-peer", marks=pytest.mark.peers("go-peer")),
    pytest.param("js-http-peer", marks=pytest.mark.peers("js-http-peer")),
]
# go-libp2p strips the mount prefix (http.StripPrefix) and knows the caller's peer id;
# @libp2p/http routes exact paths and hands the full path to the handler.
SERVED_BY = {"go-peer": "go-libp2p", "js-http-peer": "js-libp2p"}
ECHO_ROOT_PATH = {"go-peer": "/", "js-http-peer": "/echo/"}


@pytest.mark.parametrize("name", HTTP_PEERS)
async def test_rapidp2p_calls_peer_handlers(name: str) -> None:
    async with (
        PeerProcess(name, LOOPBACK, command="http-serve") as peer,
        Host() as host,
    ):
        client = HttpClient(host)
        await host.connect(peer.addr)
        peer_id = PeerId.from_string(peer.peer_id)

        resp = await client.request(peer_id, "GET", "/echo/?x=1", headers=[("X-Test", "py")])
        assert resp.status == 200, resp
        assert resp.header("x-served-by") == SERVED_BY[name]
        got = json.loads(resp.content)
        assert got["method"] == "GET" and got["query"] == "x=1" and got["x_test"] == "py", got
        assert got["path"] == ECHO_ROOT_PATH[name] and got["body_len"] == 0, got
        if name == "go-peer":
            assert got["peer"] == str(host.peer_id)

        data = bytes(range(256)) * (MIB // 256)
        resp = await client.request(peer_id, "POST", "/digest/", body=data)
        assert resp.status == 200
        assert resp.content.decode() == f"{MIB} {hashlib.sha256(data).hexdigest()}"

        resp = await client.request(
            peer_id, "GET", WELL_KNOWN_PATH, headers=[("accept", "application/json")]
        )
        assert resp.status == 200
        assert (resp.header("content-type") or "").startswith("application/json")
        assert json.loads(resp.content) == DOCUMENT
        # Resolving a protocol's path through the document, as NamespacedClient does.
        assert await client.protocols(peer_id) == {p: m["path"] for p, m in DOCUMENT.items()}
        resp = await client.request(
            peer_id, "POST", "", body=b"x" * 10, protocol="/rapidp2p-test/echo/1"
        )
        assert json.loads(resp.content)["path"] == ECHO_ROOT_PATH[name]
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


@pytest.mark.parametrize("name", HTTP_PEERS)
async def test_peer_calls_rapidp2p_handlers(name: str) -> None:
    async with await Host.create(listen=[LOOPBACK]) as host:
        server = await host.add_service(HttpServer(host))
        server.mount("/rapidp2p-test/echo/1", echo, path="/echo/")
        server.mount("/rapidp2p-test/digest/1", asgi_handler(asgi_digest), path="/digest/")
        addr = str(host.full_addrs[0])

        out = await run_dial_async(
            name, "--connect", addr, "--path", "/echo/hi", command="http-get"
        )
        got = find_result(out, "status")
        assert got["status"] == 200, got
        assert got["headers"]["x-served-by"] == "rapidp2p"
        body = json.loads(got["body"])
        assert body["method"] == "GET" and body["path"] == "/hi", body
        assert body["x_test"] == f"from-{name[:2]}"
        assert PeerId.from_string(body["peer"]) != host.peer_id  # the caller's id

        # A 1 MiB POST into the ASGI app.
        out = await run_dial_async(
            name,
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

        # The peer resolves the prefix from our well-known document.
        out = await run_dial_async(
            name, "--connect", addr, "--protocol", "/rapidp2p-test/echo/1", command="http-get"
        )
        got = find_result(out, "status")
        assert got["status"] == 200, got
        assert json.loads(got["body"])["path"] == "/"

        out = await run_dial_async(name, "--connect", addr, command="http-wellknown")
        got = find_result(out, "well_known")
        assert got["status"] == 200
        assert got["headers"]["content-type"] == "application/json"
        assert got["well_known"] == DOCUMENT


# ---- libp2p-PeerID authentication over plain HTTP (go-libp2p p2p/http/auth) -------------


@pytest.mark.peers("go-peer")
async def test_rapidp2p_authenticates_with_go_libp2p_server() -> None:
    async with PeerProcess("go-peer", command="http-auth-serve") as go:
        port = int(go.addr.split("/tcp/")[1].split("/")[0])
        go_id = PeerId.from_string(go.peer_id)
        key = generate_keypair()
        client = PeerIdAuthClient(key)
        hostname = f"127.0.0.1:{port}"
        sent: list[str] = []

        async def send(method: str, path: str, headers: Any, body: Any) -> Response:
            sent.append(next((v for n, v in headers if n == "authorization"), "").split(" ")[-1])
            return await plain_request("127.0.0.1", port, method, path, headers=headers, body=body)

        data = os.urandom(MIB)
        server_id, resp = await client.request(
            send, hostname, "POST", "/whoami", body=data, expected_peer=go_id
        )
        assert server_id == go_id
        assert resp.status == 200, resp
        got = json.loads(resp.content)
        assert got["peer"] == str(PeerId.from_public_key(key.public_key()))
        assert got["body_len"] == MIB and got["body_sha256"] == hashlib.sha256(data).hexdigest()
        assert len(sent) == 2  # client-initiated: challenge, then signature + body

        _, resp = await client.request(send, hostname, "GET", "/again", expected_peer=go_id)
        assert resp.status == 200 and json.loads(resp.content)["path"] == "/again"
        assert len(sent) == 3 and sent[-1].startswith('bearer="')

        # A token go-libp2p cannot open: it answers 401 with a challenge, and the
        # server-initiated handshake runs.
        client._store(hostname, b64encode(os.urandom(64)), go_id)
        _, resp = await client.request(send, hostname, "PUT", "/third", body=b"abc")
        assert resp.status == 200
        assert json.loads(resp.content)["body_len"] == 3
        assert len(sent) == 6  # bad token, signature + challenge-server, new token + body


@pytest.mark.peers("go-peer")
async def test_go_libp2p_authenticates_with_rapidp2p_server() -> None:
    key = generate_keypair()
    hostnames: list[str] = []

    async def whoami(peer: PeerId, request: Request) -> Response:
        body = await request.read()
        doc = {"peer": str(peer), "len": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        return Response(200, [("content-type", "application/json")], json.dumps(doc).encode())

    auth = PeerIdAuthServer(key, hostname_ok=lambda h: h in hostnames)
    server = await serve_plain(auth_handler(auth, whoami))
    async with server:
        port = server.sockets[0].getsockname()[1]
        hostnames.append(f"127.0.0.1:{port}")
        out = await run_dial_async(
            "go-peer",
            "--url",
            f"http://127.0.0.1:{port}/whoami",
            "--bytes",
            str(MIB),
            "--requests",
            "2",
            command="http-auth-request",
        )
    assert len(out) == 2
    for i, got in enumerate(out):
        assert got["status"] == 200, got
        assert got["server_peer"] == str(PeerId.from_public_key(key.public_key()))
        body = json.loads(got["body"])
        assert body == {"peer": got["client_peer"], "len": MIB, "sha256": got["sent_sha256"]}
        assert got["had_token"] is (i == 1)
