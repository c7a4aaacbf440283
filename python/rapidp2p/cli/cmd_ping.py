"""``rapidp2p ping MULTIADDR [-c N]``: libp2p ping with ping(8)-style output."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from rapidp2p.cli import swarm_key

NAME = "ping"
HELP = "ping a peer (/ipfs/ping/1.0.0); one RTT a line and a summary, like ping(8)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("addr", metavar="MULTIADDR", help="peer address ending in /p2p/<id>")
    parser.add_argument("-c", "--count", type=int, default=4, help="pings to send (default 4)")
    parser.add_argument(
        "-i", "--interval", type=float, default=1.0, help="seconds between pings (default 1)"
    )
    swarm_key.add_flag(parser)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run

    if args.count < 1:
        from rapidp2p.cli.command import CliError

        raise CliError("--count must be at least 1")
    try:
        return aio_run(_ping(args.addr, args.count, args.interval, swarm_key.config(args)))
    except KeyboardInterrupt:
        return 130


def summary(rtts_ms: list[float], sent: int) -> str:
    """The two closing lines of ping(8)."""
    loss = 100.0 * (sent - len(rtts_ms)) / sent
    lines = f"{sent} pings transmitted, {len(rtts_ms)} received, {loss:.0f}% loss"
    if rtts_ms:
        mdev = statistics.pstdev(rtts_ms)
        lines += (
            f"\nrtt min/avg/max/mdev = {min(rtts_ms):.3f}/{statistics.fmean(rtts_ms):.3f}/"
            f"{max(rtts_ms):.3f}/{mdev:.3f} ms"
        )
    return lines


async def _ping(addr: str, count: int, interval: float, config: Any = None) -> int:
    import asyncio
    import time

    from rapidp2p.host import Host
    from rapidp2p.protocols.ping import PING_SIZE, PROTOCOL_ID, ping

    async with Host(config=config) as host:
        start = time.perf_counter()
        conn = await host.connect(addr)
        setup_ms = (time.perf_counter() - start) * 1000
        peer = conn.remote_peer
        print(f"PING {peer} ({conn.remote_addr}): connected in {setup_ms:.3f} ms", flush=True)
        stream = await host.new_stream(peer, PROTOCOL_ID)
        rtts: list[float] = []
        sent = 0
        try:
            for seq in range(1, count + 1):
                sent += 1
                (rtt,) = await ping(stream, 1)
                rtts.append(rtt * 1000)
                line = f"{PING_SIZE} bytes from {peer}: seq={seq} time={rtt * 1000:.3f} ms"
                print(line, flush=True)
                if seq < count:
                    await asyncio.sleep(interval)
        finally:
            print(f"--- {peer} ping statistics ---")
            print(summary(rtts, sent))
            await stream.close()
    return 0 if len(rtts) == count else 1
