"""Issue 10: bytes received but not yet read are reserved from the connection's scopes.

The connection (``MuxedConnection.receive_memory``, set by the host to its
``ConnectionScope``) reports its unread bytes once per socket read at most; what its windows'
growth does not cover already (many streams' initial windows: nothing is reserved up front) is
charged to the conn, peer and system scopes and given back as the application reads. When the
scopes refuse, the connection degrades: the stream holding the most is reset with the refusal as
its reason (and the next, until the rest fits), the others and the host go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from test_host_util import ECHO, echo_handler

from rapidp2p._aio.connection import UNREAD_STEP
from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import Libp2pError
from rapidp2p.host import Host, HostConfig
from rapidp2p.resources.limits import KiB, MiB, autoscale

HOLD = "/test/hold/1.0.0"
STREAMS = 24
EACH = 200 * KiB  # within a stream's initial window: the sender never waits for credit


def config(conn_memory: int) -> HostConfig:
    limits = autoscale(memory=1 << 30, fd_limit=4096).apply({"conn": {"memory": conn_memory}})
    return HostConfig(resource_limits=limits)


async def _until(cond: object, what: str) -> None:
    for _ in range(4000):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


class Holder:
    """A handler that keeps its streams unread until ``release`` is set, then reads them."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.streams: list[Stream] = []
        self.read: list[int] = []

    async def handle(self, stream: Stream) -> None:
        self.streams.append(stream)
        await self.release.wait()
        n = 0
        with contextlib.suppress(Libp2pError):
            while chunk := await stream.read(1 << 20):
                n += len(chunk)
        self.read.append(n)
        with contextlib.suppress(Libp2pError):
            await stream.close()


async def _send_all(client: Host, server: Host) -> list[Stream]:
    streams = []
    for _ in range(STREAMS):
        s = await client.new_stream(server.full_addrs[0], HOLD)
        s.write(b"u" * EACH)
        await s.drain()
        await s.close()
        streams.append(s)
    return streams


async def test_unread_bytes_are_charged_and_given_back() -> None:
    server = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=config(16 * MiB))
    holder = Holder()
    server.set_stream_handler(HOLD, holder.handle)
    client = await Host.create()
    try:
        await _send_all(client, server)
        ((mux, cs),) = server._conn_scopes.items()
        await _until(lambda: mux.unread_bytes == STREAMS * EACH, "every byte arrived")
        # Within the initial windows: no window growth, every unread byte charged (in quanta).
        assert cs.grant == 0
        assert STREAMS * EACH <= cs.unread < STREAMS * EACH + UNREAD_STEP
        peer = server.resource_manager.stat_peer(client.peer_id)
        assert peer is not None and peer["memory"] == cs.memory == cs.unread
        assert cs.system.memory >= cs.memory  # allowlisted_system here

        holder.release.set()
        await _until(lambda: len(holder.read) == STREAMS, "the handler read everything")
        assert holder.read == [EACH] * STREAMS  # nothing lost
        await _until(lambda: cs.memory == 0, "the charge given back")
        assert cs.unread == cs.grant == 0
        peer = server.resource_manager.stat_peer(client.peer_id)
        assert peer is not None and peer["memory"] == 0
    finally:
        await client.close()
        await server.close()
    assert server.resource_manager.allowlisted_system.memory == 0


async def test_a_refused_reservation_resets_the_largest_stream_not_the_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = 2 * MiB  # room for the unread bytes of about ten of the streams
    server = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=config(limit))
    holder = Holder()
    server.set_stream_handler(HOLD, holder.handle)
    server.set_stream_handler(ECHO, echo_handler)
    client = await Host.create()
    try:
        sent = await _send_all(client, server)
        ((mux, cs),) = server._conn_scopes.items()
        rm = server.resource_manager

        def settled() -> bool:
            held = [s for s in holder.streams if not s.is_reset]
            lost = sum(s.is_reset for s in sent)  # as the dialer saw it
            return len(held) + lost == STREAMS and all(s.unread_bytes == EACH for s in held)

        with caplog.at_level(logging.WARNING, logger="rapidp2p.resources"):
            await _until(settled, "every stream either reset or holding its bytes")
        lost = sum(s.is_reset for s in sent)
        kept = [s for s in holder.streams if not s.is_reset]
        assert lost and kept  # degraded, not failed
        assert rm.blocked.get("conn/memory", 0) >= 1
        # Streams reset after their handler started carry the refusal as their reason (the
        # others were reset while negotiating); the listener's log names the scope.
        reasons = [str(s._reset_reason) for s in holder.streams if s.is_reset]
        assert all("conn scope, memory" in r for r in reasons), reasons
        assert any("conn scope, memory" in r.getMessage() for r in caplog.records)
        assert cs.scope.memory <= limit  # the conn scope never went over its limit
        assert mux.unread_bytes == len(kept) * EACH <= limit

        holder.release.set()
        await _until(lambda: len(holder.read) == len(holder.streams), "the handlers read")
        assert sorted(holder.read)[-len(kept) :] == [EACH] * len(kept)  # nothing of theirs lost
        # The connection and the host keep serving.
        s = await client.new_stream(server.full_addrs[0], ECHO)
        s.write(b"after")
        await s.close()
        assert await asyncio.wait_for(s.read(), 30) == b"after"
        assert not mux.is_closed
    finally:
        await client.close()
        await server.close()
    assert server.resource_manager.allowlisted_system.memory == 0
