"""HTTP over libp2p between two rapidp2p hosts: handlers, well-known document, streaming,
the ASGI bridge, and bad input (which resets only the stream it came on)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator

import pytest

from rapidp2p import Host
from rapidp2p.exceptions import (
    BodyTooLarge,
    HeadersTooLarge,
    HttpProtocolError,
    StreamResetError,
)
from rapidp2p.http import (
    PROTOCOL_ID,
    WELL_KNOWN_PATH,
    HttpClient,
    HttpLimits,
    HttpServer,
    Request,
    Response,
    asgi_handler,
)

LOOPBACK = "/ip4/127.0.0.1/tcp/0"


async def echo_handler(request: Request) -> Response:
    body = await request.read()
    return Response(
        200,
        [("content-type", "application/json")],
        json.dumps(
            {
                "method": request.method,
                "path": request.path,
                "full_path": request.full_path,
                "query": request.query,
                "peer": str(request.peer_id),
                "body_len": len(body),
                "x_test": request.header("x-test"),
            }
        ).encode(),
    )


async def digest_handler(request: Request) -> Response:
    h = hashlib.sha256()
    n = 0
    async for chunk in request.stream():
        h.update(chunk)
        n += len(chunk)
    return Response(200, [("content-type", "text/plain")], f"{n} {h.hexdigest()}".encode())


async def pair(
    server_limits: HttpLimits | None = None,
) -> tuple[Host, Host, HttpServer, HttpClient]:
    server_host = await Host.create(listen=[LOOPBACK])
    client_host = await Host.create()
    server = await server_host.add_service(HttpServer(server_host, limits=server_limits))
    server.mount("/rapidp2p-test/echo/1", echo_handler, path="/echo/")
    server.mount("/rapidp2p-test/digest/1", digest_handler, path="/digest")
    await client_host.connect(server_host.full_addrs[0])
    return server_host, client_host, server, HttpClient(client_host)


async def test_get_post_and_well_known() -> None:
    server_host, client_host, server, client = await pair()
    async with server_host, client_host:
        resp = await client.request(
            server_host.peer_id, "GET", "/echo/a/b?x=1", headers=[("X-Test", "yes")]
        )
        assert resp.status == 200
        got = json.loads(resp.content)
        assert got == {
            "method": "GET",
            "path": "/a/b",
            "full_path": "/echo/a/b",
            "query": "x=1",
            "peer": str(client_host.peer_id),
            "body_len": 0,
            "x_test": "yes",
        }
        data = bytes(range(256)) * 4096  # 1 MiB
        resp = await client.request(server_host.peer_id, "POST", "/digest/", body=data)
        assert resp.content.decode() == f"{len(data)} {hashlib.sha256(data).hexdigest()}"

        resp = await client.request(server_host.peer_id, "GET", WELL_KNOWN_PATH)
        assert resp.status == 200
        assert resp.header("content-type") == "application/json"
        assert json.loads(resp.content) == {
            "/rapidp2p-test/echo/1": {"path": "/echo/"},
            "/rapidp2p-test/digest/1": {"path": "/digest/"},
        }
        assert await client.protocols(server_host.peer_id) == server.well_known()
        # A path relative to the protocol's prefix, resolved through the document.
        resp = await client.request(
            server_host.peer_id, "PUT", "/z", body=b"abc", protocol="/rapidp2p-test/echo/1"
        )
        assert json.loads(resp.content)["full_path"] == "/echo/z"
        assert (await client.request(server_host.peer_id, "GET", "/nothing")).status == 404
        with pytest.raises(HttpProtocolError):
            await client.request(server_host.peer_id, "GET", "/", protocol="/unknown/1")
        # Every stream ended cleanly: one connection, still up.
        assert len(client_host.connections(server_host.peer_id)) == 1


async def test_streaming_bodies_both_ways() -> None:
    server_host, client_host, server, client = await pair()

    async def numbers(request: Request) -> Response:
        count = int(request.query or "0")

        async def gen() -> AsyncIterator[bytes]:
            for i in range(count):
                yield f"{i}\n".encode()

        return Response(200, [], gen())

    server.mount("/rapidp2p-test/numbers/1", numbers, path="/numbers/")
    async with server_host, client_host:

        async def upload() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"x" * 10_000

        resp = await client.request(server_host.peer_id, "POST", "/digest/", body=upload())
        expected = hashlib.sha256(b"x" * 640_000).hexdigest()
        assert resp.content.decode() == f"640000 {expected}"
        async with client.stream(server_host.peer_id, "GET", "/numbers/?1000") as sresp:
            assert sresp.status == 200
            assert sresp.header("transfer-encoding") == "chunked"
            lines = b"".join([c async for c in sresp.iter_bytes()]).split()
        assert lines == [str(i).encode() for i in range(1000)]


async def test_handler_failure_is_a_500_and_the_server_keeps_serving() -> None:
    server_host, client_host, server, client = await pair()

    async def broken(request: Request) -> Response:
        raise RuntimeError("bug")

    server.mount("/broken/1", broken)
    async with server_host, client_host:
        assert (await client.request(server_host.peer_id, "GET", "/broken/1/")).status == 500
        assert (await client.request(server_host.peer_id, "GET", "/echo/")).status == 200


async def test_body_over_the_server_limit_resets_only_that_stream() -> None:
    limits = HttpLimits(max_body_bytes=1000)
    server_host, client_host, server, client = await pair(limits)
    called = []

    async def record(request: Request) -> Response:
        called.append(request.path)
        return await digest_handler(request)

    server.mount("/record/1", record, path="/record/")
    async with server_host, client_host:
        # Declared length over the limit: refused before the handler runs.
        with pytest.raises(StreamResetError):
            await client.request(server_host.peer_id, "POST", "/record/", body=b"x" * 1001)
        assert called == []

        # Chunked (no length): refused once the bytes received pass the limit.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b"y" * 100

        with pytest.raises(StreamResetError):
            await client.request(server_host.peer_id, "POST", "/record/", body=chunks())
        # Same connection, next request fine.
        resp = await client.request(server_host.peer_id, "POST", "/record/", body=b"z" * 1000)
        assert resp.status == 200
        assert len(client_host.connections(server_host.peer_id)) == 1


async def raw_exchange(client_host: Host, server_host: Host, payload: bytes) -> bytes:
    """Sends raw bytes on an /http/1.1 stream; returns what came back (reset raises)."""
    stream = await client_host.new_stream(server_host.peer_id, PROTOCOL_ID)
    stream.write(payload)
    await stream.drain()
    await stream.close()
    return await asyncio.wait_for(stream.read(), 10)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", id="malformed-request-line"),
        pytest.param(b"GET /echo/ HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n", id="bad-header"),
        pytest.param(
            b"GET /echo/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
            id="oversized-headers",
        ),
        pytest.param(
            b"POST /digest/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
            id="truncated-body",
        ),
        pytest.param(b"GET /echo/ HTTP/1.1\r\nHost: x\r\n", id="truncated-head"),
    ],
)
async def test_bad_requests_reset_the_stream_only(payload: bytes) -> None:
    server_host, client_host, _server, client = await pair()
    async with server_host, client_host:
        with pytest.raises(StreamResetError):
            await raw_exchange(client_host, server_host, payload)
        assert (await client.request(server_host.peer_id, "GET", "/echo/")).status == 200
        assert len(client_host.connections(server_host.peer_id)) == 1


async def _raw_server(host: Host, answer: bytes) -> None:
    async def handle(stream: object) -> None:
        from rapidp2p._aio.stream import Stream

        assert isinstance(stream, Stream)
        while b"\r\n\r\n" not in await stream.read(65536):
            pass
        stream.write(answer)
        await stream.drain()
        await stream.close()

    host.set_stream_handler(PROTOCOL_ID, handle)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        pytest.param(b"HTTP/1.1 abc\r\n\r\n", HttpProtocolError, id="bad-status-line"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
            HeadersTooLarge,
            id="oversized-headers",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", BodyTooLarge, id="declared-too-big"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", HttpProtocolError, id="truncated"
        ),
    ],
)
async def test_bad_responses_raise_typed_errors(answer: bytes, error: type[Exception]) -> None:
    server_host = await Host.create(listen=[LOOPBACK])
    client_host = await Host.create()
    _raw_server_task = _raw_server(server_host, answer)
    await _raw_server_task
    client = HttpClient(client_host, limits=HttpLimits(max_body_bytes=1000))
    async with server_host, client_host:
        await client_host.connect(server_host.full_addrs[0])
        with pytest.raises(error):
            await client.request(server_host.peer_id, "GET", "/")
        assert len(client_host.connections(server_host.peer_id)) == 1


async def minimal_asgi_app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def,type-arg]
    """A pure ASGI app (what Starlette and FastAPI compile down to)."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"].endswith("/stream"):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"part%d;" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if scope["path"].endswith("/fail"):
        raise RuntimeError("app bug")
    payload = json.dumps(
        {
            "method": scope["method"],
            "path": scope["path"],
            "root_path": scope["root_path"],
            "query": scope["query_string"].decode(),
            "peer": scope["extensions"]["libp2p"]["peer_id"],
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"application/json"), (b"x-app", b"asgi")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def test_asgi_app_served_to_a_peer() -> None:
    server_host, client_host, server, client = await pair()
    server.mount("/rapidp2p-test/asgi/1", asgi_handler(minimal_asgi_app), path="/app/")
    async with server_host, client_host:
        data = b"q" * 300_000
        resp = await client.request(server_host.peer_id, "POST", "/app/items?id=7", body=data)
        assert resp.status == 201
        assert resp.header("x-app") == "asgi"
        assert json.loads(resp.content) == {
            "method": "POST",
            "path": "/app/items",
            "root_path": "/app",
            "query": "id=7",
            "peer": str(client_host.peer_id),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        resp = await client.request(server_host.peer_id, "GET", "/app/stream")
        assert resp.content == b"part0;part1;part2;"
        assert (await client.request(server_host.peer_id, "GET", "/app/fail")).status == 500


async def test_a_peer_dripping_its_head_is_cut_off_at_the_head_timeout() -> None:
    server_host, client_host, _server, client = await pair(HttpLimits(head_timeout=0.5))
    async with server_host, client_host:
        stream = await client_host.new_stream(server_host.peer_id, PROTOCOL_ID)
        stream.write(b"GET /echo/ HTTP/1.1\r\nHost: x\r\n")  # never finished
        await stream.drain()
        with pytest.raises(StreamResetError):
            await asyncio.wait_for(stream.read(), 30)
        assert (await client.request(server_host.peer_id, "GET", "/echo/")).status == 200


async def test_plain_server_aborts_only_the_bad_connection() -> None:
    from rapidp2p.http.plain import plain_request, serve_plain

    server = await serve_plain(echo_handler, limits=HttpLimits(max_header_bytes=4096))
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n")
        await writer.drain()
        # Aborted (RST or EOF), never an answer.
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 30) == b""
        writer.close()
        resp = await plain_request("127.0.0.1", port, "POST", "/p?q", body=b"abc")
        assert resp.status == 200
        assert json.loads(resp.content)["body_len"] == 3


async def test_plain_server_bounds_its_connections() -> None:
    from rapidp2p.http.plain import plain_request, serve_plain

    server = await serve_plain(echo_handler, max_connections=1)
    async with server:
        port = server.sockets[0].getsockname()[1]
        # One idle connection holds the only slot (it never sends its head).
        _reader, idle = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0)  # let the server accept it
        for _ in range(100):
            await asyncio.sleep(0.01)
            try:
                await plain_request("127.0.0.1", port, "GET", "/")
            except (ConnectionError, HttpProtocolError):
                break
        else:
            pytest.fail("a second connection was served while the only slot was taken")
        idle.close()
        for _ in range(100):  # the slot frees once the idle connection ends
            await asyncio.sleep(0.01)
            with contextlib.suppress(ConnectionError, HttpProtocolError):
                assert (await plain_request("127.0.0.1", port, "GET", "/")).status == 200
                break
        else:
            pytest.fail("the slot never freed")


async def test_expect_100_continue_is_answered() -> None:
    from rapidp2p.http.plain import serve_plain

    server = await serve_plain(digest_handler)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        await writer.drain()
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30) == (
            b"HTTP/1.1 100 \r\n\r\n"
        )
        writer.write(b"abc")
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(f"3 {hashlib.sha256(b'abc').hexdigest()}".encode())
