"""run_with_timeout: asyncio.timeout's rules (only our own cancellation becomes a timeout)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from rapidp2p.protocols.multistream._timeout import run_with_timeout


async def test_result_and_none_timeout() -> None:
    async def value() -> int:
        await asyncio.sleep(0)
        return 7

    assert await run_with_timeout(value(), 1.0) == 7
    assert await run_with_timeout(value(), None) == 7


async def test_deadline_raises_timeout_error_and_task_is_not_left_cancelling() -> None:
    with pytest.raises(asyncio.TimeoutError):
        await run_with_timeout(asyncio.sleep(10), 0.01)
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        assert task.cancelling() == 0
    await asyncio.sleep(0.02)  # no stray cancellation arrives later


async def test_outside_cancellation_stays_a_cancellation() -> None:
    started = asyncio.Event()

    async def worker() -> None:
        started.set()
        await run_with_timeout(asyncio.sleep(10), 5.0)

    task = asyncio.ensure_future(worker())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_outside_cancellation_at_the_deadline_is_not_swallowed() -> None:
    async def worker() -> None:
        me = asyncio.current_task()
        assert me is not None
        asyncio.get_running_loop().call_later(0.01, me.cancel)  # same moment as the deadline
        await run_with_timeout(asyncio.sleep(10), 0.01)

    task = asyncio.ensure_future(worker())
    with pytest.raises((asyncio.CancelledError, asyncio.TimeoutError)):
        await task
    assert task.cancelled() or isinstance(task.exception(), asyncio.TimeoutError)


async def test_nested_deadlines_report_to_the_right_level() -> None:
    async def inner() -> str:
        try:
            await run_with_timeout(asyncio.sleep(10), 0.01)
        except asyncio.TimeoutError:
            return "inner timed out"
        return "no"

    assert await run_with_timeout(inner(), 5.0) == "inner timed out"
    with pytest.raises(asyncio.TimeoutError):
        await run_with_timeout(run_with_timeout(asyncio.sleep(10), 5.0), 0.01)


async def test_timer_cancelled_after_success() -> None:
    loop = asyncio.get_running_loop()
    scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
    before = set(scheduled)
    await run_with_timeout(asyncio.sleep(0), 100.0)
    added = [h for h in scheduled if h not in before]
    assert len(added) <= 1
    assert all(h.cancelled() for h in added), "the 100 s deadline timer was left armed"
