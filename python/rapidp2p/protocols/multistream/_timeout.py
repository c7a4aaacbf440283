"""A deadline on an awaitable without a task per call.

``asyncio.wait_for`` wraps its coroutine in a new Task (one more loop hop to start it, one to
hand back the result, and the allocation) on every negotiation, ping and identify. On Python
3.11+ the coroutine runs in the caller's own task under a single timer handle (cheaper than
:func:`asyncio.timeout`, with the same rules); 3.10 keeps ``wait_for``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["run_with_timeout"]

_T = TypeVar("_T")

if sys.version_info >= (3, 11):

    class _Deadline:
        """The timer callback: marks the deadline as passed and cancels the task."""

        __slots__ = ("expired", "task")

        def __init__(self, task: asyncio.Task[object]) -> None:
            self.task = task
            self.expired = False

        def __call__(self) -> None:
            self.expired = True
            self.task.cancel()

    async def run_with_timeout(aw: Awaitable[_T], timeout: float | None) -> _T:
        """``await aw``, raising :class:`asyncio.TimeoutError` after ``timeout`` seconds.

        :func:`asyncio.timeout`'s rule with less machinery (one timer handle): the task is
        cancelled at the deadline, and that cancellation, and only that one, becomes a
        TimeoutError (``uncancel`` tells ours from a cancellation that came from outside).
        """
        if timeout is None:
            return await aw
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("run_with_timeout must run inside a task")
        cancelling = task.cancelling()
        deadline = _Deadline(task)
        handle = task.get_loop().call_later(timeout, deadline)
        try:
            return await aw
        except asyncio.CancelledError:
            if deadline.expired and task.uncancel() <= cancelling:
                raise TimeoutError(f"timed out after {timeout} s") from None
            raise
        finally:
            handle.cancel()

else:  # pragma: no cover - exercised on 3.10 only

    async def run_with_timeout(aw: Awaitable[_T], timeout: float | None) -> _T:
        """``await aw``, raising :class:`asyncio.TimeoutError` after ``timeout`` seconds."""
        if timeout is None:
            return await aw
        return await asyncio.wait_for(aw, timeout)
