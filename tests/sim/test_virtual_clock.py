"""The virtual-time loop: time jumps to the next timer, asyncio's timers all follow it."""

from __future__ import annotations

import asyncio
import random

import pytest

from rapidp2p.sim.clock import VirtualEventLoop, run


def test_an_hour_of_sleeps_is_exactly_an_hour_of_virtual_time() -> None:
    async def main() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        for _ in range(3600):
            await asyncio.sleep(1.0)
        return loop.time(), loop.jumps if isinstance(loop, VirtualEventLoop) else -1

    now, jumps = run(main())
    assert now == 3600.0
    assert jumps == 3600  # one idle jump per sleep: nothing ever waited in real time


def test_timers_run_in_time_order_at_their_virtual_times() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[str, float]] = []
        done = loop.create_future()

        def mark(name: str) -> None:
            seen.append((name, loop.time()))
            if len(seen) == 4:
                done.set_result(None)

        loop.call_later(3.0, mark, "c")
        loop.call_at(1.5, mark, "b")
        loop.call_later(0.25, mark, "a")
        loop.call_at(10.0, mark, "d")
        await done
        return seen

    assert run(main()) == [("a", 0.25), ("b", 1.5), ("c", 3.0), ("d", 10.0)]


def test_wait_for_and_timeout_fire_at_virtual_deadlines() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        out = []
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(1000), 5.0)
        out.append(loop.time())
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2.5):
                await asyncio.Event().wait()
        out.append(loop.time())
        # Work that finishes before the deadline does not move time to the deadline.
        assert await asyncio.wait_for(asyncio.sleep(1, result="ok"), 60) == "ok"
        out.append(loop.time())
        return out

    assert run(main()) == [5.0, 7.5, 8.5]


def test_busy_callbacks_do_not_advance_the_clock() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        for _ in range(1000):
            await asyncio.sleep(0)
        q: asyncio.Queue[int] = asyncio.Queue()

        async def producer() -> None:
            for i in range(100):
                q.put_nowait(i)
                await asyncio.sleep(0)

        t = asyncio.ensure_future(producer())
        for _ in range(100):
            await q.get()
        await t
        return loop.time()

    assert run(main()) == 0.0


def test_same_schedule_gives_the_same_interleaving() -> None:
    async def main(seed: int) -> list[tuple[int, float]]:
        rng = random.Random(seed)
        loop = asyncio.get_running_loop()
        log: list[tuple[int, float]] = []

        async def worker(i: int) -> None:
            for _ in range(20):
                await asyncio.sleep(rng.expovariate(1.0))
                log.append((i, loop.time()))

        await asyncio.gather(*(worker(i) for i in range(10)))
        return log

    a = run(main(7))
    assert a == run(main(7))
    assert a != run(main(8))
    assert [t for _, t in a] == sorted(t for _, t in a)


def test_run_cancels_leftover_tasks_and_closes_the_loop() -> None:
    cancelled = []

    async def forever() -> None:
        try:
            await asyncio.sleep(1e9)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> float:
        task = asyncio.ensure_future(forever())
        await asyncio.sleep(1)
        assert not task.done()
        return asyncio.get_running_loop().time()

    assert run(main(), start=100.0) == 101.0
    assert cancelled == [True]


def test_timers_due_at_the_same_instant_run_in_the_order_they_were_scheduled() -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        seen: list[int] = []
        done = loop.create_future()
        order = list(range(200))
        random.Random(3).shuffle(order)  # scheduled in this order, interleaved with others

        def mark(i: int) -> None:
            seen.append(i)
            if len(seen) == len(order):
                done.set_result(None)

        for i in order:
            loop.call_at(5.0, mark, i)
            loop.call_at(5.0 + (i + 1) * 1e-3, lambda: None)
        await done
        assert loop.time() == 5.0
        return [order.index(i) for i in seen]

    assert run(main()) == list(range(200))


def test_cancelled_timers_are_dropped_and_the_rest_still_fire() -> None:
    async def main() -> tuple[int, list[float]]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualEventLoop)
        fired: list[float] = []
        handles = [loop.call_at(100.0 + i, lambda: fired.append(loop.time())) for i in range(1000)]
        for h in handles[:900]:
            h.cancel()
        await asyncio.sleep(0)  # one iteration compacts the queue (over half cancelled)
        left = len(loop._vheap)
        await asyncio.sleep(1200)
        return left, fired

    left, fired = run(main())
    assert left <= 101  # the 100 live timers (and the sleep's)
    assert fired == [100.0 + i for i in range(900, 1000)]


def test_run_restores_the_garbage_collector_thresholds() -> None:
    import gc

    from rapidp2p.sim.clock import SIM_GC_THRESHOLDS

    before = gc.get_threshold()

    async def main() -> tuple[int, int, int]:
        return gc.get_threshold()

    assert run(main()) == SIM_GC_THRESHOLDS
    assert gc.get_threshold() == before
