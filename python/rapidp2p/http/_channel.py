"""One HTTP/1.1 exchange over a libp2p stream, parsed and framed by ``h11``.

h11 is sans-IO: this module feeds it the bytes a stream returns and writes the bytes it
produces, and turns its errors and the limits of :class:`HttpLimits` into rapidp2p's typed
errors. The caller resets the stream on any of them (bad input closes only the stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import h11

from rapidp2p.exceptions import BodyTooLarge, HeadersTooLarge, HttpProtocolError, HttpTimeout
from rapidp2p.http._limits import HttpLimits
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.protocols.multistream.negotiate import ByteStream

__all__ = ["HttpChannel", "content_length", "head_size"]

Header = tuple[bytes, bytes]


def head_size(target_or_reason: bytes, headers: list[Header]) -> int:
    """Bytes a message head takes on the wire, near enough to bound it."""
    return len(target_or_reason) + 16 + sum(len(n) + len(v) + 4 for n, v in headers)


def content_length(headers: list[Header]) -> int | None:
    """The declared body length (h11 already checked it is one well-formed number)."""
    for name, value in headers:
        if name == b"content-length":
            return int(value)
    return None


class HttpChannel:
    """h11 driven over a byte stream: read events with deadlines, send events."""

    def __init__(self, stream: ByteStream, role: Any, limits: HttpLimits) -> None:
        self.stream = stream
        self.limits = limits
        self.conn = h11.Connection(role, max_incomplete_event_size=limits.max_header_bytes)

    async def _next_event(self, timeout: float | None) -> Any:
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if exc.error_status_hint == 431:
                    raise HeadersTooLarge(
                        f"message head over {self.limits.max_header_bytes} B"
                    ) from None
                raise HttpProtocolError(f"malformed HTTP/1.1: {exc}") from None
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await run_with_timeout(self.stream.read(self.limits.read_chunk), timeout)
            except asyncio.TimeoutError:
                raise HttpTimeout(f"the remote sent nothing for {timeout} s") from None
            conn.receive_data(data)

    async def read_head(self) -> Any:
        """The next ``h11.Request`` or final ``h11.Response``, within the head limits."""
        while True:
            event = await self._next_event(self.limits.head_timeout)
            if isinstance(event, h11.InformationalResponse):
                continue  # 1xx: wait for the final answer
            if isinstance(event, h11.ConnectionClosed):
                raise HttpProtocolError("the stream ended before a complete message head")
            if not isinstance(event, (h11.Request, h11.Response)):  # pragma: no cover
                raise HttpProtocolError(f"unexpected HTTP event {type(event).__name__}")
            first = event.target if isinstance(event, h11.Request) else event.reason
            if head_size(first, list(event.headers)) > self.limits.max_header_bytes:
                raise HeadersTooLarge(f"message head over {self.limits.max_header_bytes} B")
            declared = content_length(list(event.headers))
            if declared is not None and declared > self.limits.max_body_bytes:
                raise BodyTooLarge(
                    f"Content-Length {declared} over the {self.limits.max_body_bytes} B limit"
                )
            return event

    async def body(self) -> AsyncIterator[bytes]:
        """The body of the message whose head was read, chunk by chunk, bounded."""
        received = 0
        cap = self.limits.max_body_bytes
        if self.conn.they_are_waiting_for_100_continue:
            # The client (curl, for large bodies) holds the body until told to go on.
            self.send(h11.InformationalResponse(status_code=100, headers=[]))
            await self.stream.drain()
        while True:
            event = await self._next_event(self.limits.read_timeout)
            if isinstance(event, h11.Data):
                received += len(event.data)
                if received > cap:
                    raise BodyTooLarge(f"body over the {cap} B limit")
                if event.data:
                    yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            else:
                raise HttpProtocolError("the stream ended inside a message body")

    def send(self, event: Any) -> None:
        """Queues the bytes of one h11 event on the stream."""
        data = self.conn.send(event)
        if data:
            self.stream.write(data)

    async def send_and_drain(self, event: Any) -> None:
        """Queues one event and waits for flow control to take it."""
        self.send(event)
        await self.stream.drain()
