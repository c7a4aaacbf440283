"""Issue 10 / ROBUSTNESS 20: silent sockets cannot keep honest peers out.

256 TCP connections that never send a byte, from 8 source addresses (127.0.0.2-9), fill the
pending-handshake table; an honest peer from a ninth address (127.0.0.10) and one from an
allowlisted address (127.0.0.1) must still connect and ping while those sockets stay open.
Only 127.0.0.1/32 is allowlisted here, so the attackers are subject to every limit.
"""

from __future__ import annotations

import asyncio
import contextlib

from rapidp2p.host import Host, HostConfig, StageTimeouts
from rapidp2p.transport.tcp import TcpTransport

ATTACKERS = [f"127.0.0.{i}" for i in range(2, 10)]


async def _silent(host: str, port: int, src: str) -> asyncio.StreamWriter | None:
    try:
        _, writer = await asyncio.open_connection(host, port, local_addr=(src, 0))
    except OSError:
        return None
    return writer


async def test_silent_connections_do_not_lock_out_honest_peers() -> None:
    # Deadlines far away: the silent sockets stay pending; only eviction can make room.
    config = HostConfig(
        allowlist=["127.0.0.1/32"],
        upgrade_timeout=120.0,
        stage_timeouts=StageTimeouts(first_byte=120.0, multistream=120.0),
    )
    server = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=config)
    _, _, host, _, port = str(server.addrs[0]).split("/")
    honest = await Host.create(transports=[TcpTransport(local_ip="127.0.0.10")])
    local = await Host.create()
    writers: list[asyncio.StreamWriter] = []
    try:
        opened = await asyncio.gather(
            *(_silent(host, int(port), ATTACKERS[i % 8]) for i in range(256))
        )
        writers = [w for w in opened if w is not None]
        assert len(writers) == 256, "the kernel accepted every silent socket"
        limits = server.config.limits
        for _ in range(2000):  # the accepts are processed
            if server.limiter.pending == limits.max_pending_handshakes:
                break
            await asyncio.sleep(0.005)
        assert server.limiter.pending == limits.max_pending_handshakes, "the table is full"
        assert all(n <= limits.max_pending_per_ip for n in server.limiter.pending_per_ip.values())

        rtts = await asyncio.wait_for(honest.ping(server.full_addrs[0], 1), 30)
        assert len(rtts) == 1
        rtts = await asyncio.wait_for(local.ping(server.full_addrs[0], 1), 30)
        assert len(rtts) == 1
        assert server.limiter.evicted >= 1  # the honest peer got a slot by eviction
        # The attacker's sockets are still open on its side (nothing waited them out).
        assert all(not w.is_closing() for w in writers)
    finally:
        for w in writers:
            w.close()
        for h in (honest, local, server):
            with contextlib.suppress(Exception):
                await h.close()


async def test_stage_deadline_drops_a_silent_socket() -> None:
    config = HostConfig(allowlist=[], stage_timeouts=StageTimeouts(first_byte=0.2))
    server = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=config)
    try:
        _, _, host, _, port = str(server.addrs[0]).split("/")
        reader, writer = await asyncio.open_connection(host, int(port))
        for _ in range(2000):
            if server.limiter.pending == 1:
                break
            await asyncio.sleep(0.005)
        assert await asyncio.wait_for(reader.read(), 30) == b""  # dropped, no byte sent
        writer.close()
        for _ in range(2000):
            if server.limiter.pending == 0:
                break
            await asyncio.sleep(0.005)
        assert server.limiter.pending == 0
    finally:
        await server.close()
