"""Inbound stream handler tasks: one per live stream, gone when it ends, cancelled on close."""

from __future__ import annotations

import asyncio

from test_host_util import ECHO, host_pair, server_info

from rapidp2p._aio.stream import Stream

IDLE = "/idle/1.0.0"


async def test_handler_tasks_track_live_streams_only() -> None:
    async with host_pair("memory") as (client, server):
        entered = asyncio.Event()
        ended: list[bool] = []

        async def idle(stream: Stream) -> None:
            entered.set()
            try:
                await stream.read()
            finally:
                ended.append(True)

        server.set_stream_handler(IDLE, idle)
        conn = await client.connect(server_info(server))
        s = await client.new_stream(server.peer_id, ECHO)
        s.write(b"x")
        await s.close()
        assert await s.read() == b"x"
        (inbound,) = server.connections(client.peer_id)
        for _ in range(500):  # the echo task ends right after its FIN
            if not any(t for t in server.tasks_serving(inbound) if not t.done()):
                break
            await asyncio.sleep(0.01)
        live = [t for t in server.tasks_serving(inbound) if not t.done()]
        assert not live, "echo task lingers"
        idle_streams = [await client.new_stream(server.peer_id, IDLE) for _ in range(3)]
        for st in idle_streams:
            st.write(b"hi")
            await st.drain()
        await asyncio.wait_for(entered.wait(), 5)
        await asyncio.sleep(0.05)
        live = [t for t in server.tasks_serving(inbound) if not t.done()]
        assert len(live) >= 3  # the idle handlers (identify may still be running too)
        await conn.close()
        for _ in range(100):
            if len(ended) == 3:
                break
            await asyncio.sleep(0.01)
        assert ended == [True, True, True]  # cancelled with their connection


async def test_finished_handler_leaves_no_task_behind() -> None:
    async with host_pair("memory") as (client, server):
        await client.connect(server_info(server))
        for _ in range(5):
            s = await client.new_stream(server.peer_id, ECHO)
            s.write(b"abc")
            await s.close()
            assert await s.read() == b"abc"
        (inbound,) = server.connections(client.peer_id)
        for _ in range(100):
            if not server.tasks_serving(inbound):
                break
            await asyncio.sleep(0.01)
        assert not server.tasks_serving(inbound)


async def test_host_close_cancels_idle_handlers() -> None:
    async with host_pair("memory") as (client, server):
        cancelled = asyncio.Event()

        async def idle(stream: Stream) -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        server.set_stream_handler(IDLE, idle)
        s = await client.new_stream(server_info(server), IDLE)
        s.write(b"go")
        await s.drain()
        await asyncio.sleep(0.05)
        await server.close()
        await asyncio.wait_for(cancelled.wait(), 5)
