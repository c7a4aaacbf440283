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
import selectors
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

__all__ = ["CountingVirtualEventLoop", "VirtualClockSelector", "VirtualEventLoop", "run"]

T = TypeVar("T")


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
    """An event loop on virtual time (seconds from ``start``); see the module docstring."""

    def __init__(self, start: float = 0.0) -> None:
        #: Callbacks scheduled; counted by :class:`CountingVirtualEventLoop` only.
        self.events = 0
        self._vselector = VirtualClockSelector(start)
        super().__init__(self._vselector)
        # Timers due within this much of now run now; tiny so virtual times stay exact.
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._vselector.now

    @property
    def jumps(self) -> int:
        """How many times the clock jumped to a timer (idle waits skipped)."""
        return self._vselector.jumps


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


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
