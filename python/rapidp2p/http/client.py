"""Calling peers' HTTP handlers over libp2p streams (``/http/1.1``), by peer id.

Each request opens one stream (go-libp2p's stream round tripper does the same): the request
goes out with ``Connection: close`` and a half-close, while the response is read
concurrently, so a server may answer before it read the whole body. Malformed or oversized
responses raise typed errors and reset the stream; the connection is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import h11

from rapidp2p.exceptions import HttpProtocolError, Libp2pError
from rapidp2p.http._channel import HttpChannel
from rapidp2p.http._limits import HttpLimits
from rapidp2p.http.messages import Body, Headers, Response
from rapidp2p.http.wellknown import PROTOCOL_ID, WELL_KNOWN_PATH, decode_document
from rapidp2p.peer import PeerId

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream
    from rapidp2p.host.host import Host

__all__ = ["HttpClient", "StreamingResponse"]

_PEER_META_CACHE = 256


class StreamingResponse:
    """A response whose body is read as it arrives: ``async for chunk in resp.iter_bytes()``."""

    def __init__(self, status: int, reason: str, headers: Headers, chunks: AsyncIterator[bytes]):
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


class HttpClient:
    """Calls HTTP handlers of peers reachable from ``host``.

    ::

        client = HttpClient(host)
        resp = await client.request(peer_id, "POST", "/digest/", body=data)
        resp = await client.request(peer_id, "GET", "/x", protocol="/my-app/1")  # under its path
    """

    def __init__(self, host: Host, *, limits: HttpLimits | None = None) -> None:
        self.host = host
        self.limits = limits or HttpLimits()
        self._meta: OrderedDict[PeerId, dict[str, str]] = OrderedDict()

    async def request(
        self,
        peer: Any,
        method: str,
        path: str,
        *,
        body: Body = b"",
        headers: Headers | Sequence[tuple[str, str]] = (),
        protocol: str | None = None,
    ) -> Response:
        """Sends one request and returns the whole response (body as bytes, bounded)."""
        async with self.stream(
            peer, method, path, body=body, headers=headers, protocol=protocol
        ) as resp:
            content = await resp.read()
        return Response(resp.status, resp.headers, content, resp.reason)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        peer: Any,
        method: str,
        path: str,
        *,
        body: Body = b"",
        headers: Headers | Sequence[tuple[str, str]] = (),
        protocol: str | None = None,
    ) -> AsyncIterator[StreamingResponse]:
        """Sends one request; yields the response once its head arrived, body unread.

        With ``protocol``, ``path`` is relative to the prefix the peer's well-known document
        gives that protocol (fetched once per peer and cached).
        """
        if protocol is not None:
            path = await self._resolve(peer, protocol, path)
        stream = await self.host.new_stream(peer, PROTOCOL_ID)
        channel = HttpChannel(stream, h11.CLIENT, self.limits)
        writer = asyncio.ensure_future(
            self._write_request(channel, stream, method, path, body, list(headers), peer)
        )
        done = False
        try:
            head = await _first(channel.read_head(), writer)
            resp = StreamingResponse(
                head.status_code,
                head.reason.decode("latin-1"),
                [(n.decode("latin-1"), v.decode("latin-1")) for n, v in head.headers],
                channel.body(),
            )
            yield resp
            async for _ in resp.iter_bytes():  # the caller may stop early: drain (bounded)
                pass
            done = True
        finally:
            if not writer.done():
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Libp2pError):
                await writer
            if done and writer.done() and not writer.cancelled() and writer.exception() is None:
                await stream.close()
            else:
                stream.reset()

    async def _write_request(
        self,
        channel: HttpChannel,
        stream: Stream,
        method: str,
        path: str,
        body: Body,
        headers: Headers,
        peer: Any,
    ) -> None:
        names = {n.lower() for n, _ in headers}
        out = [(n.lower(), v) for n, v in headers if n.lower() != "connection"]
        if "host" not in names:
            out.insert(0, ("host", str(_peer_id(peer) or "libp2p")))
        out.append(("connection", "close"))
        if isinstance(body, bytes):
            if "content-length" not in names and (body or method not in ("GET", "HEAD")):
                out.append(("content-length", str(len(body))))
        elif "content-length" not in names:
            out.append(("transfer-encoding", "chunked"))
        channel.send(h11.Request(method=method, target=path, headers=out))
        if isinstance(body, bytes):
            if body:
                channel.send(h11.Data(data=body))
        else:
            await _send_iterable(channel, body)
        await channel.send_and_drain(h11.EndOfMessage())
        stream.close_write_nowait()

    # ---- the well-known document -------------------------------------------------------

    async def protocols(self, peer: Any, *, refresh: bool = False) -> dict[str, str]:
        """The peer's ``{protocol id: path prefix}`` from its well-known document (cached)."""
        peer_id = _peer_id(peer)
        if not refresh and peer_id is not None and peer_id in self._meta:
            self._meta.move_to_end(peer_id)
            return dict(self._meta[peer_id])
        resp = await self.request(
            peer, "GET", WELL_KNOWN_PATH, headers=[("accept", "application/json")]
        )
        if resp.status != 200:
            raise HttpProtocolError(f"well-known document: HTTP {resp.status}")
        mapping = decode_document(resp.content)
        if peer_id is not None:
            self._meta[peer_id] = mapping
            self._meta.move_to_end(peer_id)
            while len(self._meta) > _PEER_META_CACHE:
                self._meta.popitem(last=False)
        return dict(mapping)

    async def _resolve(self, peer: Any, protocol: str, path: str) -> str:
        mapping = await self.protocols(peer)
        prefix = mapping.get(protocol)
        if prefix is None:
            raise HttpProtocolError(f"the peer does not serve {protocol!r} over HTTP")
        return prefix.rstrip("/") + "/" + path.lstrip("/")


def _peer_id(peer: Any) -> PeerId | None:
    if isinstance(peer, PeerId):
        return peer
    peer_id = getattr(peer, "peer_id", None)
    if isinstance(peer_id, PeerId):
        return peer_id
    text = str(peer)
    if "/p2p/" in text:
        with contextlib.suppress(Libp2pError, ValueError):
            return PeerId.from_string(text.rsplit("/p2p/", 1)[1])
    return None


async def _send_iterable(channel: HttpChannel, body: AsyncIterable[bytes]) -> None:
    async for chunk in body:
        if chunk:
            channel.send(h11.Data(data=chunk))
            await channel.stream.drain()


async def _first(reading: Any, writer: asyncio.Future[None]) -> Any:
    """The response head; a failed write surfaces unless the response came first."""
    read_task = asyncio.ensure_future(reading)
    try:
        await asyncio.wait({read_task, writer}, return_when=asyncio.FIRST_COMPLETED)
        if not read_task.done() and writer.done() and writer.exception() is not None:
            read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read_task
            raise writer.exception()  # type: ignore[misc]
        return await read_task
    finally:
        if not read_task.done():
            read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read_task
