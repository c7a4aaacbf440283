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

__all__ = ["HAS_WATCHDOG", "Watchdog", "run_with_timeout"]

#: :class:`Watchdog` needs ``Task.cancelling``/``uncancel`` (3.11+).
HAS_WATCHDOG = sys.version_info >= (3, 11)

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

    class Watchdog:
        """One deadline for a loop of awaits in the current task, without a timer per await.

        ``feed()`` moves the deadline to now + ``timeout`` (one clock read); the single timer
        re-arms itself when it fires before the moved deadline, and at the deadline cancels
        the task. Catch :class:`asyncio.CancelledError` and ask :meth:`expired_now` whether
        that cancellation was the deadline (then it is consumed) or came from outside.
        Ping uses it: a timer handle per round trip was most of its Python overhead.
        """

        __slots__ = (
            "_armed",
            "_cancelling",
            "_handle",
            "_loop",
            "_task",
            "deadline",
            "expired",
            "timeout",
        )

        def __init__(self, timeout: float) -> None:
            task = asyncio.current_task()
            if task is None:
                raise RuntimeError("Watchdog must run inside a task")
            self._task = task
            self._loop = task.get_loop()
            self.timeout = timeout
            self._cancelling = task.cancelling()
            self.expired = False
            self.deadline = self._armed = self._loop.time() + timeout
            self._handle = self._loop.call_at(self._armed, self._fire)

        def feed(self) -> None:
            self.deadline = self._loop.time() + self.timeout

        def _fire(self) -> None:
            if self.deadline > self._armed:  # fed since the timer was set
                self._armed = self.deadline
                self._handle = self._loop.call_at(self._armed, self._fire)
                return
            self.expired = True
            self._task.cancel()

        def expired_now(self) -> bool:
            """In an ``except CancelledError``: True when the deadline caused it."""
            return self.expired and self._task.uncancel() <= self._cancelling

        def close(self) -> None:
            self._handle.cancel()

else:  # pragma: no cover - exercised on 3.10 only

    class Watchdog:
        """Needs Python 3.11 (check :data:`HAS_WATCHDOG`); callers keep a timeout per wait."""

        def __init__(self, timeout: float) -> None:
            raise NotImplementedError("Watchdog needs Python 3.11+")

        def feed(self) -> None: ...

        def expired_now(self) -> bool:
            return False

        def close(self) -> None: ...

    async def run_with_timeout(aw: Awaitable[_T], timeout: float | None) -> _T:
        """``await aw``, raising :class:`asyncio.TimeoutError` after ``timeout`` seconds."""
        if timeout is None:
            return await aw
        return await asyncio.wait_for(aw, timeout)
