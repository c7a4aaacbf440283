"""The stream table of one connection: its open :class:`Stream` objects and who waits on them.

Kept apart from the driver (``_aio/connection.py``), which only moves bytes: the table knows
which streams exist, wakes dialers of ``open_stream`` waiting for the SYN backlog to drain,
and answers the graceful close (``settled``, ``shutdown``, ``wait_settled``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream

__all__ = ["StreamTable", "shutdown_all", "wait_until", "wake_all"]


def wake_all(waiters: list[asyncio.Future[None]]) -> None:
    """Resolves every future in ``waiters`` (those still pending) and empties the list."""
    pending = list(waiters)
    waiters.clear()
    for w in pending:
        if not w.done():
            w.set_result(None)


def shutdown_all(streams: Iterable[Stream]) -> None:
    """First step of a graceful close: FIN on every stream after its queued data, so a
    remote still reading what we sent gets all of it. A stream holding data the application
    never read is reset instead: a FIN there would tell the remote (waiting in
    ``close(wait=True)``) that we consumed what we did not."""
    for st in list(streams):
        if st.has_unread:
            st.reset()
        else:
            st.close_write_nowait()


async def wait_until(
    loop: asyncio.AbstractEventLoop, waiters: list[asyncio.Future[None]], done: Callable[[], bool]
) -> None:
    """Waits until ``done()``, checked each time ``waiters`` are woken (:func:`wake_all`).
    Callers bound it."""
    while not done():
        waiter: asyncio.Future[None] = loop.create_future()
        waiters.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)


class StreamTable:
    """Streams by id, the ``open_stream`` waiters and the graceful-close waiters."""

    __slots__ = ("_loop", "by_id", "open_waiters", "settle_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        #: The open streams (the driver reads it on every event).
        self.by_id: dict[int, Stream] = {}
        #: Waiters of ``open_stream`` and of ``wait_settled`` (public so that the driver's
        #: per-event path tests them without a call).
        self.open_waiters: list[asyncio.Future[None]] = []
        self.settle_waiters: list[asyncio.Future[None]] = []

    def __len__(self) -> int:
        return len(self.by_id)

    async def wait_for_opening(self) -> None:
        """Waits until :meth:`wake_openers` (a stream was acknowledged or ended)."""
        w: asyncio.Future[None] = self._loop.create_future()
        self.open_waiters.append(w)
        await w

    def wake_openers(self) -> None:
        wake_all(self.open_waiters)

    @property
    def settled(self) -> bool:
        """Every stream we wrote on was closed or reset by the remote (see
        :attr:`Stream.settled`)."""
        return all(st.settled for st in self.by_id.values())

    def check_settled(self) -> None:
        if self.settle_waiters and self.settled:
            wake_all(self.settle_waiters)

    def shutdown(self) -> None:
        shutdown_all(self.by_id.values())

    async def wait_settled(self, is_closed: Callable[[], bool]) -> None:
        """Waits until :attr:`settled` or ``is_closed()``. Callers bound it."""
        await wait_until(self._loop, self.settle_waiters, lambda: is_closed() or self.settled)

    def end_all(self, reason: str, error: BaseException) -> None:
        """The connection is gone: every stream is reset with ``reason``, ``open_stream``
        waiters fail with ``error``, ``wait_settled`` returns."""
        streams = list(self.by_id.values())
        self.by_id.clear()  # the same dict: the driver holds it
        for st in streams:
            st.on_reset(reason)
        waiters, self.open_waiters = self.open_waiters, []
        for w in waiters:
            if not w.done():
                w.set_exception(error)
        wake_all(self.settle_waiters)
