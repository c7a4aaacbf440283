"""Serving HTTP/1.1 to peers over libp2p streams (``/http/1.1``), go-libp2p ``p2p/http``'s way.

Handlers are mounted per protocol id at a path prefix; the server answers
``GET /.well-known/libp2p/protocols`` with the mounts. One request per stream (the spec's
rule): the response carries ``Connection: close`` and the stream is half-closed after it.
Malformed or oversized input raises a typed error, which makes the host reset the stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rapidp2p.host.service import ServiceBase
from rapidp2p.http._exchange import serve_exchange, text_response
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


class HttpServer(ServiceBase):
    """Serves mounted handlers to peers on ``host`` (a host service: it closes with it).

    ::

        server = await host.add_service(HttpServer(host))   # or: await server.start()
        server.mount("/my-app/1", handler, path="/app/")   # handler(Request) -> Response
    """

    def __init__(self, host: Host, *, limits: HttpLimits | None = None) -> None:
        self.host = host
        self.limits = limits or HttpLimits()
        self.protocols = [PROTOCOL_ID]
        self.service_name = "libp2p.http"
        self._mounts: dict[str, tuple[str, Handler]] = {}

    async def _start(self) -> None:
        self.host.set_stream_handler(PROTOCOL_ID, self._handle_stream)

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
        await super().close()

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
        await serve_exchange(stream, self.limits, self._respond, peer_id=stream.remote_peer)

    async def _respond(self, request: Request) -> Response:
        if request.full_path == WELL_KNOWN_PATH:
            return self._well_known_response(request)
        route = self._route(request.full_path)
        if route is None:
            return text_response(404, "404 page not found\n")
        request.mount_at(route[0])
        return await route[1](request)

    def _well_known_response(self, request: Request) -> Response:
        accept = request.header("accept")
        if accept and "application/json" not in accept and "*/*" not in accept:
            return text_response(406, "Only application/json is supported\n")
        if request.method not in ("GET", "HEAD"):
            return text_response(405, "Only GET requests are supported\n")
        document = encode_document(self.well_known())
        return Response(200, [("content-type", "application/json")], document)
