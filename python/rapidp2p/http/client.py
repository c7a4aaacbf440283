"""Calling peers' HTTP handlers over libp2p streams (``/http/1.1``), by peer id.

Each request opens one stream (go-libp2p's stream round tripper does the same): the request
goes out with ``Connection: close`` and a half-close, while the response is read
concurrently, so a server may answer before it read the whole body. Malformed or oversized
responses raise typed errors and reset the stream; the connection is never touched.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from rapidp2p.exceptions import HttpProtocolError, Libp2pError
from rapidp2p.http._exchange import StreamingResponse, roundtrip
from rapidp2p.http._limits import HttpLimits
from rapidp2p.http.messages import Body, Headers, Response
from rapidp2p.http.wellknown import PROTOCOL_ID, WELL_KNOWN_PATH, decode_document
from rapidp2p.peer import PeerId

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = ["HttpClient", "StreamingResponse"]

_PEER_META_CACHE = 256


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
        # Negotiated before the request goes out (one round trip, go-libp2p's NewStream does
        # the same for a protocol it has not seen the peer announce): js-libp2p resets a new
        # stream whose FIN arrives in the same burst as a lazily negotiated protocol id.
        stream = await self.host.new_stream(peer, PROTOCOL_ID, lazy=False)
        host = str(_peer_id(peer) or "libp2p")
        async with roundtrip(
            stream, self.limits, method, path, body=body, headers=list(headers), host=host
        ) as resp:
            yield resp

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
