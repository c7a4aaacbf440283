"""The read buffer every TCP-like connection of a thread reads into (``get_buffer``).

Each socket read lands in it and is consumed by the one call into Rust that follows, before
the next read, so an idle connection holds no read buffer: RBUF_SHARED bytes, RBUF_MAX once
a read filled it (bulk traffic: fewer, larger reads).
"""

from __future__ import annotations

import os
import threading

from rapidp2p import _core

__all__ = ["RBUF_MAX", "RBUF_SHARED", "shared_rbuf", "tune_allocator_once"]

RBUF_SHARED = 64 * 1024
RBUF_MAX = 1024 * 1024


class _SharedReadBuffer(threading.local):
    """One read buffer per thread (an event loop runs in one thread)."""

    def __init__(self) -> None:
        self.buf = bytearray(0)
        self.view = memoryview(self.buf)

    def get(self) -> memoryview:
        if not self.buf:
            self._new(RBUF_SHARED)
        return self.view

    def grow(self) -> None:
        if len(self.buf) < RBUF_MAX:
            self._new(RBUF_MAX)  # the old one may still be exported: replace, never resize
            tune_allocator_once()

    def _new(self, size: int) -> None:
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)


shared_rbuf = _SharedReadBuffer()
_allocator_tuned = False


def tune_allocator_once() -> None:
    """On the first bulk transfer of the process, stop glibc trimming the heap after every
    burst of large buffers (see ``_core.conn.tune_allocator``; 15-25% of a bulk receiver's CPU
    went to page faults). ``RAPIDP2P_MALLOC_TUNING=0`` leaves the allocator alone."""
    global _allocator_tuned
    if _allocator_tuned:
        return
    _allocator_tuned = True
    if os.environ.get("RAPIDP2P_MALLOC_TUNING", "1") != "0":
        _core.conn.tune_allocator()
