"""The one stream interface protocol code is written against, and the one close helper.

:class:`ClosableStream` is a :class:`~rapidp2p.protocols.multistream.ByteStream` that can
half-close: a host :class:`~rapidp2p.Stream` (``async close``) or an in-memory test stream
(:class:`~rapidp2p.protocols.memory.MemoryStream`, sync ``close``). Protocol code (ping,
identify, perf, ...) takes one, so the same function serves the host and the unit tests.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable
from typing import Protocol

from rapidp2p.exceptions import Libp2pError
from rapidp2p.protocols.multistream.negotiate import ByteStream

__all__ = ["ClosableStream", "close_quietly", "half_close"]


class ClosableStream(ByteStream, Protocol):
    """A :class:`ByteStream` (read, write, drain) that can also half-close."""

    def close(self) -> Awaitable[None] | None: ...


async def half_close(stream: ClosableStream) -> None:
    """Half-closes ``stream`` (FIN after the queued bytes), whether its ``close`` is a
    coroutine (a host stream) or a plain call (an in-memory stream)."""
    result = stream.close()
    if inspect.isawaitable(result):
        await result


async def close_quietly(stream: ClosableStream) -> None:
    """:func:`half_close`, ignoring a stream the peer already reset or whose connection is
    gone: for the end of an exchange whose result (or error) matters more."""
    with contextlib.suppress(Libp2pError):
        await half_close(stream)
