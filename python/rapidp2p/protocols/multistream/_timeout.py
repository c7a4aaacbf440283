"""A deadline on an awaitable without a task per call.

``asyncio.wait_for`` wraps its coroutine in a new Task (one more loop hop to start it, one to
hand back the result, and the allocation) on every negotiation, ping and identify. On Python
3.11+ :func:`asyncio.timeout` bounds the coroutine in the caller's own task with a single
timer handle; 3.10 keeps ``wait_for``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["run_with_timeout"]

_T = TypeVar("_T")

if sys.version_info >= (3, 11):

    async def run_with_timeout(aw: Awaitable[_T], timeout: float | None) -> _T:
        """``await aw``, raising :class:`asyncio.TimeoutError` after ``timeout`` seconds."""
        if timeout is None:
            return await aw
        async with asyncio.timeout(timeout):
            return await aw

else:  # pragma: no cover - exercised on 3.10 only

    async def run_with_timeout(aw: Awaitable[_T], timeout: float | None) -> _T:
        """``await aw``, raising :class:`asyncio.TimeoutError` after ``timeout`` seconds."""
        if timeout is None:
            return await aw
        return await asyncio.wait_for(aw, timeout)
