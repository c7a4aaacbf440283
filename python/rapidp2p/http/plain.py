"""Plain HTTP/1.1 over TCP with the same exchange code, for peer ID auth over ordinary HTTP.

A small server (``serve_plain``) and client (``plain_request``) on asyncio streams, one
request per connection. They exist so ``rapidp2p.http.auth`` can be served and called
without a libp2p connection; production deployments put TLS in front (the spec's rule: peer
ID auth is only meaningful with the hostname bound by TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from rapidp2p.exceptions import Libp2pError
from rapidp2p.http._exchange import roundtrip, serve_exchange
from rapidp2p.http._limits import HttpLimits
from rapidp2p.http.messages import Body, Handler, Headers, Response

__all__ = ["TcpExchangeStream", "plain_request", "serve_plain"]

log = logging.getLogger(__name__)


class TcpExchangeStream:
    """An asyncio stream pair seen as an exchange stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self, n: int) -> bytes:
        return await self.reader.read(n)

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()

    def close_write_nowait(self) -> None:
        if self.writer.can_write_eof() and not self.writer.is_closing():
            with contextlib.suppress(OSError):  # already reset: the read side will say so
                self.writer.write_eof()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    def reset(self) -> None:
        self.writer.transport.abort()


async def serve_plain(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: HttpLimits | None = None,
    max_connections: int = 256,
) -> asyncio.Server:
    """Serves ``handler`` over plain HTTP/1.1 on ``host:port``; bad input aborts only its
    connection, and connections over ``max_connections`` are aborted on arrival. Returns the
    started :class:`asyncio.Server`."""
    limits = limits or HttpLimits()
    active = 0

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active
        stream = TcpExchangeStream(reader, writer)
        if active >= max_connections:
            stream.reset()
            return
        active += 1
        try:
            await serve_exchange(stream, limits, handler)
        except (Libp2pError, OSError) as exc:
            log.debug("plain HTTP exchange failed: %s", exc)
            stream.reset()
        finally:
            active -= 1

    return await asyncio.start_server(on_connection, host, port)


async def plain_request(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    body: Body = b"",
    headers: Headers | Sequence[tuple[str, str]] = (),
    limits: HttpLimits | None = None,
) -> Response:
    """One request over a new TCP connection; the whole response (bounded)."""
    reader, writer = await asyncio.open_connection(host, port)
    stream = TcpExchangeStream(reader, writer)
    try:
        async with roundtrip(
            stream,
            limits or HttpLimits(),
            method,
            path,
            body=body,
            headers=list(headers),
            host=f"{host}:{port}",
        ) as resp:
            content = await resp.read()
    finally:
        writer.close()
    return Response(resp.status, resp.headers, content, resp.reason)
