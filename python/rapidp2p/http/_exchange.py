"""One HTTP/1.1 request and its response over any byte stream, on either side.

Shared by the libp2p-stream server and client (``server.py``, ``client.py``) and the plain
TCP ones of peer ID auth (``plain.py``): the stream only needs ``read``/``write``/``drain``
and ``close_write_nowait``/``close``/``reset``. One request per stream, ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import h11

from rapidp2p.exceptions import Libp2pError
from rapidp2p.http._channel import HttpChannel
from rapidp2p.http._limits import HttpLimits
from rapidp2p.http.messages import Body, Headers, Request, Response

__all__ = ["ExchangeStream", "StreamingResponse", "roundtrip", "serve_exchange", "text_response"]

log = logging.getLogger("rapidp2p.http")


class ExchangeStream(Protocol):
    """What an exchange needs of a stream (a libp2p :class:`~rapidp2p.Stream`, a TCP pair)."""

    async def read(self, n: int) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close_write_nowait(self) -> None: ...

    async def close(self) -> None: ...

    def reset(self) -> None: ...


def text_response(status: int, message: str) -> Response:
    """A small plain-text response (errors, 404)."""
    return Response(status, [("content-type", "text/plain; charset=utf-8")], message.encode())


def _decode_headers(raw: Any) -> Headers:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]


# ---- serving ------------------------------------------------------------------------------


async def serve_exchange(
    stream: ExchangeStream,
    limits: HttpLimits,
    respond: Callable[[Request], Awaitable[Response]],
    *,
    peer_id: Any = None,
) -> None:
    """Reads one request, answers it with ``respond``, half-closes.

    Bad input raises a typed error (the caller resets the stream); a ``respond`` that fails
    with anything but a rapidp2p error becomes a 500.
    """
    channel = HttpChannel(stream, h11.SERVER, limits)
    head = await channel.read_head()
    method = head.method.decode("latin-1")
    request = Request(
        method=method,
        target=head.target.decode("latin-1"),
        headers=_decode_headers(head.headers),
        peer_id=peer_id,
        body=channel.body(),
    )
    try:
        response = await respond(request)
    except Libp2pError:
        raise  # the peer's fault (bad body, limits): the caller resets the stream
    except Exception:
        log.exception("HTTP handler for %s failed", request.full_path)
        response = text_response(500, "internal server error\n")
    if not request.consumed:
        # The request is read to its end (bounded) before the stream is half-closed as
        # consumed; a handler that ignored it leaves that to us.
        async for _ in request.stream():
            pass
    await _send_response(channel, response, head_only=method == "HEAD")
    await stream.close()


async def _send_response(channel: HttpChannel, response: Response, *, head_only: bool) -> None:
    headers = [(n.lower(), v) for n, v in response.headers if n.lower() != "connection"]
    headers.append(("connection", "close"))
    body = response.body
    if isinstance(body, bytes) and not any(n == "content-length" for n, _ in headers):
        headers.append(("content-length", str(len(body))))
    channel.send(
        h11.Response(
            status_code=response.status,
            headers=headers,
            reason=response.reason.encode("latin-1") if response.reason else b"",
        )
    )
    if isinstance(body, bytes):
        if body and not head_only:
            channel.send(h11.Data(data=body))
    elif head_only:
        async for _ in body:  # HEAD: the producer runs to its end, nothing is sent
            pass
    else:
        await _send_iterable(channel, body)
    await channel.send_and_drain(h11.EndOfMessage())


async def _send_iterable(channel: HttpChannel, body: AsyncIterable[bytes]) -> None:
    async for chunk in body:
        if chunk:
            channel.send(h11.Data(data=chunk))
            await channel.stream.drain()


# ---- calling ------------------------------------------------------------------------------


class StreamingResponse:
    """A response whose body is read as it arrives: ``async for chunk in resp.iter_bytes()``."""

    def __init__(
        self, status: int, reason: str, headers: Headers, chunks: AsyncIterator[bytes]
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self._chunks = chunks

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """The body chunk by chunk (bounded by ``max_body_bytes``)."""
        async for chunk in self._chunks:
            yield chunk

    async def read(self) -> bytes:
        """The rest of the body."""
        return b"".join([c async for c in self.iter_bytes()])


@contextlib.asynccontextmanager
async def roundtrip(
    stream: ExchangeStream,
    limits: HttpLimits,
    method: str,
    target: str,
    *,
    body: Body = b"",
    headers: Headers,
    host: str,
) -> AsyncIterator[StreamingResponse]:
    """Sends one request on ``stream`` while reading the response; yields it at its head.

    The request body is written concurrently (a server may answer before reading it all).
    The stream is half-closed after the request, closed after a complete exchange and reset
    after anything else.
    """
    channel = HttpChannel(stream, h11.CLIENT, limits)
    writer = asyncio.ensure_future(
        _write_request(channel, stream, method, target, body, headers, host)
    )
    done = False
    try:
        head = await _first(channel.read_head(), writer)
        resp = StreamingResponse(
            head.status_code,
            head.reason.decode("latin-1"),
            _decode_headers(head.headers),
            channel.body(),
        )
        yield resp
        async for _ in resp.iter_bytes():  # the caller may stop early: drain (bounded)
            pass
        done = True
    finally:
        if not writer.done():
            writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Libp2pError, OSError):
            await writer
        if done and not writer.cancelled() and writer.exception() is None:
            await stream.close()
        else:
            stream.reset()


async def _write_request(
    channel: HttpChannel,
    stream: ExchangeStream,
    method: str,
    target: str,
    body: Body,
    headers: Headers,
    host: str,
) -> None:
    names = {n.lower() for n, _ in headers}
    out = [(n.lower(), v) for n, v in headers if n.lower() != "connection"]
    if "host" not in names:
        out.insert(0, ("host", host))
    out.append(("connection", "close"))
    if isinstance(body, bytes):
        if "content-length" not in names and (body or method not in ("GET", "HEAD")):
            out.append(("content-length", str(len(body))))
    elif "content-length" not in names:
        out.append(("transfer-encoding", "chunked"))
    channel.send(h11.Request(method=method, target=target, headers=out))
    if isinstance(body, bytes):
        if body:
            channel.send(h11.Data(data=body))
    else:
        await _send_iterable(channel, body)
    await channel.send_and_drain(h11.EndOfMessage())
    # Half-close, as go-libp2p's client does: @libp2p/http's server ends a small body it got
    # in the same read as the head only at EOF.
    stream.close_write_nowait()


async def _first(reading: Any, writer: asyncio.Future[None]) -> Any:
    """The response head; a failed write surfaces unless the response came first."""
    read_task = asyncio.ensure_future(reading)
    try:
        await asyncio.wait({read_task, writer}, return_when=asyncio.FIRST_COMPLETED)
        if not read_task.done() and writer.done() and not writer.cancelled():
            exc = writer.exception()
            if exc is not None:
                raise exc
        return await read_task
    finally:
        if not read_task.done():
            read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read_task
