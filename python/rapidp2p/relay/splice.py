"""The relay's data path: two streams joined, each direction within the limited-relay budget.

Each direction copies what one side sends to the other and propagates a half-close (FIN).
When a direction would carry more than ``max_bytes`` or the circuit outlives
``max_duration``, both streams are reset: the spec's limited relay cuts the circuit (go-libp2p
and rust-libp2p do the same), and the two ends see a reset, never silently truncated data. A
reset on one side resets the other.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Literal

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import Libp2pError

__all__ = ["CHUNK", "SpliceResult", "splice"]

#: Largest read forwarded at once.
CHUNK = 64 * 1024

EndReason = Literal["closed", "data_limit", "duration_limit", "reset"]


@dataclass
class SpliceResult:
    """Bytes forwarded each way (``a`` to ``b``, ``b`` to ``a``) and why the circuit ended."""

    a_to_b: int = 0
    b_to_a: int = 0
    reason: EndReason = "closed"


class _Cut(Exception):
    """A direction went over its byte budget."""


async def _pump(src: Stream, dst: Stream, budget: int | None, res: SpliceResult, fwd: bool) -> None:
    sent = 0
    while True:
        want = CHUNK if budget is None else max(1, min(CHUNK, budget - sent))
        data = await src.read(want)
        if not data:
            dst.close_write_nowait()
            with contextlib.suppress(Libp2pError):
                await dst.drain()
            return
        if budget is not None and sent + len(data) > budget:
            raise _Cut
        dst.write(data)
        sent += len(data)
        if fwd:
            res.a_to_b = sent
        else:
            res.b_to_a = sent
        await dst.drain()


async def splice(
    a: Stream, b: Stream, *, max_bytes: int | None, max_duration: float | None
) -> SpliceResult:
    """Relays between ``a`` and ``b`` until both directions closed, a side reset, or a limit
    cut the circuit (both streams are then reset). Never raises for the streams' errors."""
    res = SpliceResult()
    loop = asyncio.get_running_loop()
    deadline = None if max_duration is None else loop.time() + max_duration
    tasks = {
        asyncio.ensure_future(_pump(a, b, max_bytes, res, True)),
        asyncio.ensure_future(_pump(b, a, max_bytes, res, False)),
    }
    pending = set(tasks)
    try:
        while pending:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            done, pending = await asyncio.wait(
                pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                res.reason = "duration_limit"
                break
            errors = [t.exception() for t in done if not t.cancelled()]
            if any(isinstance(e, _Cut) for e in errors):
                res.reason = "data_limit"
                break
            if any(e is not None for e in errors):
                res.reason = "reset"
                break
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if res.reason != "closed":
        a.reset()
        b.reset()
    return res
