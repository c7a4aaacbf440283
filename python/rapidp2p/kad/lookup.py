"""Drives one Rust ``_core.kad.Query`` over asyncio: requests as tasks, answers fed back.

``request(peer)`` sends one RPC and returns the answer (raising on failure); ``on_answer``
sees each answer and returns True to end the lookup early (a value lookup's quorum). The
closer peers of an answer go through ``learn`` (addresses to the peerstore, PeerId checks),
which returns the peer-ID bytes to add as candidates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from rapidp2p import _core
from rapidp2p.kad._proto import KadMessage, KadPeer
from rapidp2p.peer import PeerId

__all__ = ["LookupResult", "run_lookup"]


@dataclass
class LookupResult:
    #: Up to k peers that answered, closest first.
    closest: list[PeerId]
    #: Hop count of the closest peer found (1 = a seed from our own table).
    hops: int = 0
    requests: int = 0
    failures: int = 0
    failed_peers: list[PeerId] = field(default_factory=list)


async def run_lookup(
    key: bytes,
    seeds: Iterable[PeerId],
    request: Callable[[PeerId], Awaitable[KadMessage]],
    learn: Callable[[Iterable[KadPeer]], list[bytes]],
    *,
    local: PeerId,
    alpha: int,
    k: int,
    request_timeout: float,
    query_timeout: float,
    on_answer: Callable[[PeerId, KadMessage], bool] | None = None,
    on_failure: Callable[[PeerId, BaseException], None] | None = None,
) -> LookupResult:
    """The iterative lookup of SHA-256(``key``)."""
    loop = asyncio.get_running_loop()
    query = _core.kad.Query(
        _core.kad.key(key),
        [p.to_bytes() for p in seeds],
        alpha,
        k,
        request_timeout,
        1024,
        local.to_bytes(),
    )
    tasks: dict[asyncio.Task[KadMessage], bytes] = {}
    end = loop.time() + query_timeout
    failed: list[PeerId] = []
    try:
        while True:
            now = loop.time()
            if now >= end:
                break
            reqs, finished = query.poll(now)
            for p in reqs:
                task = asyncio.ensure_future(request(PeerId._trusted(p)))
                task.add_done_callback(_retrieve)
                tasks[task] = p
            if finished or not tasks:
                break
            wake = end
            deadline = query.next_deadline()
            if deadline is not None:
                wake = min(wake, deadline)
            done, _ = await asyncio.wait(
                tasks, timeout=max(0.0, wake - now), return_when=asyncio.FIRST_COMPLETED
            )
            for t in done:
                raw = tasks.pop(t)
                peer = PeerId._trusted(raw)
                exc = t.exception() if not t.cancelled() else asyncio.CancelledError()
                if exc is not None:
                    query.on_failure(raw)
                    failed.append(peer)
                    if on_failure is not None:
                        on_failure(peer, exc)
                    continue
                answer = t.result()
                query.on_success(raw, learn(answer.closer_peers))
                if on_answer is not None and on_answer(peer, answer):
                    query.finish()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
    closest = query.result()
    hops = (query.hops(closest[0]) or 0) if closest else 0
    requests, _, failures = query.stats
    return LookupResult([PeerId._trusted(p) for p in closest], hops, requests, failures, failed)


def _retrieve(task: asyncio.Task[KadMessage]) -> None:
    """Marks a request's exception retrieved (a lookup that ended early never reads it)."""
    if not task.cancelled():
        task.exception()
