"""Issue 10, the memory row in miniature: idle connections and streams cost their buffers only.

The benchmark row "memory" opens 1,000 connections x 10 idle perf streams; with a window grant
reserved up front per connection (4 MiB), the connections alone filled the system memory and
the streams' first bytes were refused (7,786 of 10,000 served). Here: a system memory limit of
4 MiB, 20 connections from distinct peers, 5 idle streams each that sent an 8-byte header the
handler read. Every stream must be served, nothing refused, and the memory accounted must stay
near what is actually buffered (unread bytes), not a reservation per connection or stream.
"""

from __future__ import annotations

import asyncio
import contextlib

from test_host_util import ECHO, echo_handler

from rapidp2p._aio.connection import UNREAD_QUANTUM
from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import Libp2pError
from rapidp2p.host import Host, HostConfig
from rapidp2p.resources.limits import MiB, autoscale

IDLE = "/test/idle/1.0.0"
CONNS = 20
STREAMS = 5
MEMORY = 4 * MiB


async def _until(cond: object, what: str) -> None:
    for _ in range(6000):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


class Idle:
    """Reads the 8-byte header, then waits for the end like a perf upload that never comes."""

    def __init__(self) -> None:
        self.served = 0
        self.ended: list[str] = []

    async def handle(self, stream: Stream) -> None:
        try:
            header = await stream.readexactly(8)
            assert header == b"\0" * 8
            self.served += 1
            while await stream.read(1 << 16):
                pass
            self.ended.append("eof")
        except Libp2pError as exc:
            self.ended.append(f"error: {exc}")


async def test_idle_connections_and_streams_cost_only_their_buffers() -> None:
    limits = autoscale(memory=1 << 30, fd_limit=4096).apply(
        {
            "allowlisted_system": {"memory": MEMORY},  # loopback dials use the allowlisted scopes
            "system": {"memory": MEMORY},
        }
    )
    server = await Host.create(
        listen=["/ip4/127.0.0.1/tcp/0"], config=HostConfig(resource_limits=limits)
    )
    idle = Idle()
    server.set_stream_handler(IDLE, idle.handle)
    server.set_stream_handler(ECHO, echo_handler)
    rm = server.resource_manager
    clients: list[Host] = []
    streams: list[Stream] = []
    gate = asyncio.Semaphore(8)

    async def one_stream(h: Host) -> None:
        s = await h.new_stream(server.full_addrs[0], IDLE)
        s.write(b"\0" * 8)
        await s.drain()
        streams.append(s)

    async def client() -> None:
        async with gate:
            h = await Host.create()
            clients.append(h)
            await h.connect(server.full_addrs[0])
            # At once, so several streams of a connection hold unread bytes together.
            await asyncio.gather(*(one_stream(h) for _ in range(STREAMS)))

    try:
        await asyncio.wait_for(asyncio.gather(*(client() for _ in range(CONNS))), 300)
        await _until(lambda: idle.served == CONNS * STREAMS, "every stream served")
        await asyncio.sleep(0.2)  # a late reset would show now
        assert not idle.ended, idle.ended[:3]
        assert not any(s.is_reset for s in streams)
        assert not [k for k in rm.blocked if k.endswith("/memory")], rm.blocked

        # Accounted memory is what the connections buffer (their unread bytes, reserved in
        # quanta), not a grant per connection or a window per stream.
        scopes = list(server._conn_scopes.values())
        assert len(scopes) == CONNS
        buffered = sum(m.unread_bytes for m in server._conn_scopes)
        await _until(
            lambda: (
                rm.allowlisted_system.memory
                <= sum(m.unread_bytes for m in server._conn_scopes) + CONNS * UNREAD_QUANTUM
            ),
            "accounted memory near the buffered bytes",
        )
        assert all(cs.grant == 0 for cs in scopes)  # no window grew: nothing reserved for it
        assert buffered <= CONNS * UNREAD_QUANTUM

        # The node still serves a transfer that makes a window grow, within the limit.
        data = b"x" * (2 * MiB)
        s = await clients[0].new_stream(server.full_addrs[0], ECHO)
        echoed = asyncio.ensure_future(s.read())  # read while writing: echo needs both ways
        s.write(data)
        await s.close()
        assert await asyncio.wait_for(echoed, 120) == data
        assert rm.allowlisted_system.memory <= MEMORY
    finally:
        for h in clients:
            with contextlib.suppress(Exception):
                await h.close()
        await server.close()
    assert rm.allowlisted_system.memory == 0 and rm.system.memory == 0
