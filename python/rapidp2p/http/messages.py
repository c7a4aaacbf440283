"""The request and response objects handlers and callers see.

Header names are lower-case ``str`` (h11 normalises them), values ``str`` decoded as
Latin-1 (RFC 9110's field-value octets); lists keep order and repeats.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from rapidp2p.peer import PeerId

__all__ = ["Body", "Handler", "Headers", "Request", "Response", "find_header"]

Headers = list[tuple[str, str]]
Body = bytes | AsyncIterable[bytes]
"""A whole body, or chunks produced as the peer reads (sent chunked without a length)."""


def find_header(headers: Headers, name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive), or None."""
    name = name.lower()
    for key, value in headers:
        if key == name:
            return value
    return None


class Request:
    """An HTTP request a peer sent to a mounted handler.

    ``path`` is the request path with the mount prefix stripped (go-libp2p's
    ``http.StripPrefix``), ``full_path`` the path as sent, ``query`` what followed ``?``.
    The body is read on demand: ``await request.read()`` (bounded by the server's
    ``max_body_bytes``) or ``async for chunk in request.stream()``.
    """

    def __init__(
        self,
        *,
        method: str,
        target: str,
        headers: Headers,
        peer_id: PeerId | None,
        prefix: str = "",
        body: AsyncIterator[bytes] | None = None,
    ) -> None:
        self.method = method
        self.target = target
        path, _, query = target.partition("?")
        self.full_path = path
        self.query = query
        self.prefix = ""
        self.path = path
        if prefix:
            self.mount_at(prefix)
        self.headers = headers
        self.peer_id = peer_id
        self._body = body
        self._consumed = body is None

    def mount_at(self, prefix: str) -> None:
        """Strips the mount ``prefix`` from :attr:`path` (the server calls it when routing)."""
        self.prefix = prefix
        self.path = "/" + self.full_path[len(prefix) :].lstrip("/")

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return find_header(self.headers, name)

    async def stream(self) -> AsyncIterator[bytes]:
        """The body chunk by chunk, as it arrives (once)."""
        if self._consumed or self._body is None:
            return
        self._consumed = True
        async for chunk in self._body:
            yield chunk

    async def read(self) -> bytes:
        """The whole body (once; later calls return ``b""``)."""
        return b"".join([chunk async for chunk in self.stream()])

    @property
    def consumed(self) -> bool:
        """True once the body was read to its end (or there is none)."""
        return self._consumed


@dataclass
class Response:
    """What a handler answers, and what :class:`~rapidp2p.http.HttpClient` returns.

    A ``bytes`` body is sent with a ``Content-Length``; an async iterable is sent chunked.
    Responses the client returns always hold ``bytes``.
    """

    status: int = 200
    headers: Headers = field(default_factory=list)
    body: Body = b""
    reason: str = ""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return find_header(self.headers, name)

    @property
    def content(self) -> bytes:
        """The body as bytes (a client's response always has them)."""
        if not isinstance(self.body, bytes):
            raise TypeError("this response's body is a stream; iterate it instead")
        return self.body


Handler = Callable[[Request], Awaitable[Response]]
"""An HTTP handler mounted on a host: one request in, one response out."""
