"""``GET /metrics`` on the event loop (asyncio server): no thread, no blocking call.

prometheus_client's own ``start_http_server`` runs a thread that would read the host's
connection tables while the loop changes them; serving from the loop reads them between two
callbacks instead. The exposition is rendered in memory (a few ms for thousands of series).
One request per connection, bounded header size, a read deadline, a cap on concurrent
scrapers: a scraper is trusted little more than a peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

__all__ = ["CONTENT_TYPE", "MetricsServer", "serve_metrics"]

log = logging.getLogger("rapidp2p.metrics")

#: Prometheus text exposition format 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_REQUEST_HEAD = 8192
REQUEST_TIMEOUT = 10.0
MAX_CLIENTS = 16


class _Exposer(Protocol):
    def exposition(self) -> bytes: ...


class MetricsServer:
    """A running ``/metrics`` endpoint; ``close()`` stops it."""

    def __init__(self, server: asyncio.Server, metrics: _Exposer) -> None:
        self._server = server
        self._metrics = metrics

    @property
    def port(self) -> int:
        """The bound TCP port (useful with port 0)."""
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def __aenter__(self) -> MetricsServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def serve_metrics(metrics: _Exposer, host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
    """Serves ``metrics.exposition()`` at ``http://host:port/metrics``."""
    clients = asyncio.Semaphore(MAX_CLIENTS)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if clients.locked():
            writer.close()
            return
        async with clients:
            try:
                await asyncio.wait_for(_answer(reader, writer, metrics), REQUEST_TIMEOUT)
            except (asyncio.TimeoutError, OSError, ValueError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
                with contextlib.suppress(OSError, asyncio.TimeoutError):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)

    server = await asyncio.start_server(handle, host, port, limit=MAX_REQUEST_HEAD)
    return MetricsServer(server, metrics)


async def _answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, metrics: _Exposer
) -> None:
    head = await reader.readuntil(b"\r\n\r\n")  # LimitOverrunError (a ValueError) past the cap
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split()
    if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
        _respond(writer, 405, b"method not allowed\n", "text/plain")
    elif parts[1].split("?", 1)[0] != "/metrics":
        _respond(writer, 404, b"not found: try /metrics\n", "text/plain")
    else:
        try:
            body = metrics.exposition()
        except Exception:  # a bug in a collector: say so, keep serving
            log.exception("rendering /metrics failed")
            _respond(writer, 500, b"metrics rendering failed\n", "text/plain")
        else:
            _respond(writer, 200, b"" if parts[0] == "HEAD" else body, CONTENT_TYPE, len(body))
    await writer.drain()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: str,
    length: int | None = None,
) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
