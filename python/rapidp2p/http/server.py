"""Serving HTTP/1.1 to peers over libp2p streams (``/http/1.1``), go-libp2p ``p2p/http``'s way.

Handlers are mounted per protocol id at a path prefix; the server answers
``GET /.well-known/libp2p/protocols`` with the mounts. One request per stream (the spec's
rule): the response carries ``Connection: close`` and the stream is half-closed after it.
Malformed or oversized input raises a typed error, which makes the host reset the stream.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import h11

from rapidp2p.exceptions import Libp2pError
from rapidp2p.http._channel import HttpChannel
from rapidp2p.http._limits import HttpLimits
from rapidp2p.http.messages import Handler, Request, Response
from rapidp2p.http.wellknown import (
    PROTOCOL_ID,
    WELL_KNOWN_PATH,
    encode_document,
    normalize_prefix,
)

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream
    from rapidp2p.host.host import Host

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)


def _text(status: int, message: str) -> Response:
    return Response(status, [("content-type", "text/plain; charset=utf-8")], message.encode())


class HttpServer:
    """Serves mounted handlers to peers on ``host`` (a host service: it closes with it).

    ::

        server = HttpServer(host)
        server.mount("/my-app/1", handler, path="/app/")   # handler(Request) -> Response
    """

    def __init__(self, host: Host, *, limits: HttpLimits | None = None) -> None:
        self.host = host
        self.limits = limits or HttpLimits()
        self.protocols = [PROTOCOL_ID]
        self._mounts: dict[str, tuple[str, Handler]] = {}
        host.set_stream_handler(PROTOCOL_ID, self._handle_stream)
        host.add_service(self)

    def mount(self, protocol_id: str, handler: Handler, *, path: str | None = None) -> str:
        """Serves ``protocol_id`` with ``handler`` under ``path`` (default: the protocol id).

        The handler sees request paths with the prefix stripped. Returns the prefix as listed
        in the well-known document (with a trailing ``/``).
        """
        prefix = normalize_prefix(protocol_id if path is None else path)
        if prefix.startswith(WELL_KNOWN_PATH):
            raise ValueError(f"{prefix!r} is reserved for the well-known document")
        for other, (other_prefix, _) in self._mounts.items():
            if other != protocol_id and other_prefix == prefix:
                raise ValueError(f"{prefix!r} is already mounted for {other!r}")
        self._mounts[protocol_id] = (prefix, handler)
        return prefix

    def unmount(self, protocol_id: str) -> None:
        """Stops serving ``protocol_id`` (and drops it from the well-known document)."""
        self._mounts.pop(protocol_id, None)

    def well_known(self) -> dict[str, str]:
        """``{protocol id: path prefix}``: what the discovery document lists."""
        return {proto: prefix for proto, (prefix, _) in self._mounts.items()}

    async def close(self) -> None:
        """Stops accepting ``/http/1.1`` streams."""
        self.host.remove_stream_handler(PROTOCOL_ID)

    # ---- one stream, one request -------------------------------------------------------

    def _route(self, path: str) -> tuple[str, Handler] | None:
        best: tuple[str, Handler] | None = None
        for prefix, handler in self._mounts.values():
            if (path.startswith(prefix) or path == prefix[:-1]) and (
                best is None or len(prefix) > len(best[0])
            ):
                best = (prefix, handler)
        return best

    async def _handle_stream(self, stream: Stream) -> None:
        channel = HttpChannel(stream, h11.SERVER, self.limits)
        head = await channel.read_head()
        target = head.target.decode("latin-1")
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in head.headers]
        method = head.method.decode("latin-1")
        path = target.partition("?")[0]
        route = self._route(path)
        body = channel.body()
        request = Request(
            method=method,
            target=target,
            headers=headers,
            peer_id=stream.remote_peer,
            prefix=route[0] if route else "",
            body=body,
        )
        if path == WELL_KNOWN_PATH:
            response = self._well_known_response(request)
        elif route is None:
            response = _text(404, "404 page not found\n")
        else:
            response = await self._call(route[1], request)
        if not request.consumed:
            # The request must be read to its end (bounded) before the stream may be
            # half-closed as consumed; a handler that ignored it leaves that to us.
            async for _ in request.stream():
                pass
        await self._send(channel, response, head_only=method == "HEAD")
        await stream.close()

    async def _call(self, handler: Handler, request: Request) -> Response:
        try:
            return await handler(request)
        except Libp2pError:
            raise  # the peer's fault (bad body, limits): the host resets the stream
        except Exception:
            log.exception("HTTP handler for %s failed", request.full_path)
            return _text(500, "internal server error\n")

    def _well_known_response(self, request: Request) -> Response:
        accept = request.header("accept")
        if accept and "application/json" not in accept and "*/*" not in accept:
            return _text(406, "Only application/json is supported\n")
        if request.method not in ("GET", "HEAD"):
            return _text(405, "Only GET requests are supported\n")
        return Response(
            200, [("content-type", "application/json")], encode_document(self.well_known())
        )

    async def _send(self, channel: HttpChannel, response: Response, *, head_only: bool) -> None:
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
        if not head_only:
            if isinstance(body, bytes):
                if body:
                    channel.send(h11.Data(data=body))
            else:
                await _send_chunks(channel, body)
        elif not isinstance(body, bytes):
            async for _ in body:  # HEAD: the producer runs to its end, nothing is sent
                pass
        await channel.send_and_drain(h11.EndOfMessage())


async def _send_chunks(channel: HttpChannel, body: Any) -> None:
    try:
        async for chunk in body:
            if chunk:
                channel.send(h11.Data(data=chunk))
                await channel.stream.drain()
    finally:
        await _close_iterable(body)


async def _close_iterable(body: Any) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
