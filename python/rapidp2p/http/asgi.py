"""Serving an ASGI application (Starlette, FastAPI, ...) to peers over libp2p streams.

``HttpServer.mount(protocol, asgi_handler(app), path="/app/")`` turns each request into
one ASGI ``http`` call (ASGI 3, spec 2.3). As under uvicorn's ``--root-path``, ``scope["path"]``
is the full request path and ``scope["root_path"]`` the mount prefix; the peer id of the
caller is in ``scope["extensions"]["libp2p"]["peer_id"]``. The response body is streamed to
the peer through a bounded queue (the app waits while the peer is slow). Lifespan events are
the application owner's business: run them around the host's life if the app needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from rapidp2p.http.messages import Handler, Request, Response

__all__ = ["ASGIApp", "asgi_handler"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

_QUEUE_CHUNKS = 16
_END = object()


class _AppFailed(Exception):
    """The application raised or returned before starting a response."""


def _scope(request: Request) -> Scope:
    path, _, query = request.target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": request.prefix.rstrip("/"),
        "headers": [(n.encode("latin-1"), v.encode("latin-1")) for n, v in request.headers],
        "client": (str(request.peer_id), 0) if request.peer_id is not None else None,
        "server": None,
        "extensions": {"libp2p": {"peer_id": str(request.peer_id)}},
    }


def asgi_handler(app: ASGIApp) -> Handler:
    """A handler for :meth:`HttpServer.mount` that serves ``app``."""

    async def handle(request: Request) -> Response:
        body_iter = request.stream()
        response_done = asyncio.Event()
        start: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue[Any] = asyncio.Queue(_QUEUE_CHUNKS)

        async def receive() -> Message:
            if body_iter is not None:
                try:
                    chunk = await body_iter.__anext__()
                except StopAsyncIteration:
                    pass
                else:
                    return {"type": "http.request", "body": chunk, "more_body": True}
            if not request_ended[0]:
                request_ended[0] = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await response_done.wait()
            return {"type": "http.disconnect"}

        request_ended = [False]

        async def send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                if start.done():
                    raise RuntimeError("http.response.start sent twice")
                start.set_result(message)
            elif kind == "http.response.body":
                if not start.done():
                    raise RuntimeError("http.response.body before http.response.start")
                body = bytes(message.get("body", b""))
                if body:
                    await chunks.put(body)
                if not message.get("more_body", False):
                    await chunks.put(_END)

        async def run() -> None:
            try:
                await app(_scope(request), receive, send)
            finally:
                if not start.done():
                    start.set_exception(_AppFailed("the ASGI app sent no response"))
                await chunks.put(_END)  # waits for the reader; cancelled if it went away

        task = asyncio.ensure_future(run())
        try:
            message = await start
        except _AppFailed:
            with contextlib.suppress(Exception):
                await task
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception() from None  # type: ignore[misc]
            raise

        async def body() -> AsyncIterator[bytes]:
            try:
                while True:
                    item = await chunks.get()
                    if item is _END:
                        break
                    yield item
                await task  # the app's own failure after the head surfaces here
            finally:
                response_done.set()
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

        headers = [
            (bytes(n).decode("latin-1").lower(), bytes(v).decode("latin-1"))
            for n, v in message.get("headers", [])
        ]
        return Response(int(message["status"]), headers, body())

    return handle
