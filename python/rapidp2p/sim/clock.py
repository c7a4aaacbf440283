"""A virtual-time asyncio event loop: the clock jumps to the next timer when all tasks idle.

Why: thousands of simulated nodes run the production host code in one process; waiting for
real time would make an hour of protocol timers take an hour. Everything built on
``loop.time()`` follows the virtual clock: ``asyncio.sleep``, ``asyncio.wait_for``,
``asyncio.timeout``, ``loop.call_at``/``call_later`` (the host's and the muxer's timers).

How: a :class:`selectors.BaseSelector` wrapper answers ``select(timeout)`` without blocking
and advances the virtual clock by ``timeout`` (the delay asyncio computed to the earliest
timer) when nothing is ready. Real file descriptors (the loop's self-pipe) are still polled,
without waiting. The loop is deterministic: same callbacks scheduled in the same order give
the same run. Code that reads ``time.monotonic()``/``time.time()`` directly does not follow it.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import selectors
from collections import deque
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

__all__ = [
    "SIM_GC_THRESHOLDS",
    "CountingVirtualEventLoop",
    "VirtualClockSelector",
    "VirtualEventLoop",
    "run",
]

T = TypeVar("T")

#: The cyclic garbage collector's thresholds during :func:`run` (see there).
SIM_GC_THRESHOLDS = (100_000, 50, 100)


class VirtualClockSelector(selectors.BaseSelector):
    """A selector that never sleeps: an idle wait moves the virtual clock instead."""

    def __init__(self, start: float = 0.0) -> None:
        self._real = selectors.DefaultSelector()
        self.now = start
        #: Times the clock jumped forward (an idle wait), for the simulator's speed figures.
        self.jumps = 0

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            # Nothing scheduled at all: only a real fd (another thread) can wake us. Blocking
            # here is what a real loop does in the same state.
            return self._real.select(None)
        ready = self._real.select(0)
        if not ready and timeout > 0:
            self.now += timeout
            self.jumps += 1
        return ready

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time (seconds from ``start``); see the module docstring.

    Its own ``_run_once`` and timer queue, because at thousands of nodes asyncio's scheduling
    was a quarter of a run's CPU: the stock queue is a heap of ``TimerHandle`` objects ordered
    by a Python ``__lt__`` (tens of millions of calls per run, most of them for cancelled
    timeouts), and every iteration polled the real selector with a system call. Here:

    - the queue is a heap of ``(when, sequence, handle)`` tuples, compared in C; timers due
      at the same instant run in the order they were scheduled (the stock heap left that
      order to the heap's shape);
    - cancelled timers are dropped from the head of the queue and the whole queue is
      compacted when more than half of it is cancelled (as asyncio does);
    - when no callback is ready the clock is set to the earliest timer's time exactly;
    - real file descriptors (the loop's self-pipe: ``call_soon_threadsafe``, signals) are
      polled without waiting before each jump and every 64 busy iterations.
    """

    def __init__(self, start: float = 0.0) -> None:
        #: Callbacks scheduled; counted by :class:`CountingVirtualEventLoop` only.
        self.events = 0
        self._vselector = VirtualClockSelector(start)
        super().__init__(self._vselector)
        # Timers due within this much of now run now; tiny so virtual times stay exact.
        self._clock_resolution = 1e-9
        self._now = start
        self._vheap: list[tuple[float, int, asyncio.TimerHandle]] = []
        self._vseq = 0
        self._busy_polls = 0
        self._jumps = 0

    def time(self) -> float:
        return self._now

    @property
    def jumps(self) -> int:
        """How many times the clock jumped to a timer (idle waits skipped)."""
        return self._jumps

    # The stubs type these with TypeVarTuple; the fast paths only pass through.
    def call_soon(  # type: ignore[override]
        self, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.Handle:
        # asyncio's checks (closed loop, thread, debug) skipped: this loop is only driven by
        # :func:`run`, on one thread; task steps come through here millions of times a run.
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)  # type: ignore[attr-defined]
        return handle

    def call_at(  # type: ignore[override]
        self, when: float, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        timer = asyncio.TimerHandle(when, callback, args, self, context)
        self._vseq += 1
        heapq.heappush(self._vheap, (when, self._vseq, timer))
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def call_later(  # type: ignore[override]
        self, delay: float, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        return self.call_at(self._now + delay, callback, *args, context=context)

    def _poll_real(self, timeout: float | None) -> None:
        events = self._vselector._real.select(timeout)
        if events:
            self._process_events(events)  # type: ignore[attr-defined]

    def _run_once(self) -> None:
        """One iteration: asyncio's ``BaseEventLoop._run_once`` on the tuple heap (see the
        class docstring); the debug-mode slow-callback report is left out."""
        heap = self._vheap
        ready: deque[asyncio.Handle] = self._ready  # type: ignore[attr-defined]
        n = len(heap)
        cancelled: int = self._timer_cancelled_count  # type: ignore[has-type]
        if n > 100 and cancelled * 2 > n:
            live = []
            for item in heap:
                if item[2]._cancelled:
                    item[2]._scheduled = False  # type: ignore[attr-defined]
                else:
                    live.append(item)
            heapq.heapify(live)
            self._vheap = heap = live
            self._timer_cancelled_count = 0
        else:
            while heap and heap[0][2]._cancelled:
                self._timer_cancelled_count -= 1
                heapq.heappop(heap)[2]._scheduled = False  # type: ignore[attr-defined]

        if ready or self._stopping:  # type: ignore[attr-defined]
            self._busy_polls += 1
            if self._busy_polls >= 64:
                self._busy_polls = 0
                self._poll_real(0)
        elif heap:
            self._poll_real(0)
            if not ready:
                when = heap[0][0]
                if when > self._now:
                    self._now = when
                    self._vselector.now = when
                    self._jumps += 1
                    self._vselector.jumps = self._jumps
        else:
            # Nothing scheduled at all: only a real fd (another thread) can wake us.
            self._poll_real(None)

        end_time = self._now + self._clock_resolution
        while heap and heap[0][0] < end_time:
            timer = heapq.heappop(heap)[2]
            timer._scheduled = False  # type: ignore[attr-defined]
            ready.append(timer)

        for _ in range(len(ready)):
            handle = ready.popleft()
            if handle._cancelled:
                continue
            handle._run()


class CountingVirtualEventLoop(VirtualEventLoop):
    """A :class:`VirtualEventLoop` that counts the callbacks it schedules (``call_soon`` and
    timers, task steps included): the speed scenario's unit of work. A separate class
    because the count costs a Python call per callback (2-3% of a Kademlia run's CPU in a
    profile), which the other scenarios need not pay. Same schedule, same run."""

    # The stubs type these with TypeVarTuple; the counting wrappers only pass through.
    def call_soon(  # type: ignore[override]
        self, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.Handle:
        self.events += 1
        return super().call_soon(callback, *args, context=context)

    def call_at(  # type: ignore[override]
        self, when: float, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        self.events += 1
        return super().call_at(when, callback, *args, context=context)


def run(main: Coroutine[Any, Any, T], *, start: float = 0.0, count_events: bool = False) -> T:
    """Runs ``main`` to completion on a fresh :class:`VirtualEventLoop` (like ``asyncio.run``);
    ``count_events`` uses a :class:`CountingVirtualEventLoop`."""
    loop = CountingVirtualEventLoop(start) if count_events else VirtualEventLoop(start)
    thresholds = gc.get_threshold()
    # A simulation holds millions of long-lived objects (hosts, connections, routing
    # tables) and allocates millions of short-lived ones (handles, futures, frames): with
    # the default thresholds the cyclic collector ran every 700 allocations and scanned
    # the older generations often, about a quarter of a 200-node Kademlia run's CPU.
    # Rarer collections keep the same memory there (cycles are still collected).
    gc.set_threshold(*SIM_GC_THRESHOLDS)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            gc.set_threshold(*thresholds)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
