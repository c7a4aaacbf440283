"""``rapidp2p ping MULTIADDR [-c N]``: libp2p ping with ping(8)-style output."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from rapidp2p.cli import swarm_key
from rapidp2p.cli.common import add_json, non_negative_float, positive_int

NAME = "ping"
HELP = "ping a peer (/ipfs/ping/1.0.0); one RTT a line and a summary, like ping(8)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "addr",
        metavar="MULTIADDR",
        help="peer address ending in /p2p/<id> (through a relay: "
        "<relay-addr>/p2p/<relay>/p2p-circuit/p2p/<id>)",
    )
    parser.add_argument(
        "-c", "--count", type=positive_int, default=4, help="pings to send (default 4)"
    )
    parser.add_argument(
        "-i",
        "--interval",
        type=non_negative_float,
        default=1.0,
        help="seconds between pings (default 1)",
    )
    add_json(parser)
    swarm_key.add_flag(parser)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run

    try:
        return aio_run(
            _ping(args.addr, args.count, args.interval, args.json, swarm_key.config(args))
        )
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


async def _ping(
    addr: str, count: int, interval: float, as_json: bool = False, config: Any = None
) -> int:
    import asyncio
    import statistics
    import time

    from rapidp2p.cli.common import Output
    from rapidp2p.host import Host
    from rapidp2p.protocols.ping import PING_SIZE, PROTOCOL_ID, ping

    out = Output(as_json)
    async with Host(config=config) as host:
        start = time.perf_counter()
        conn = await host.connect(addr)
        setup_ms = (time.perf_counter() - start) * 1000
        peer = conn.remote_peer
        relayed = " (relayed: limited connection)" if conn.limited else ""
        out.emit(
            f"PING {peer} ({conn.remote_addr}): connected in {setup_ms:.3f} ms{relayed}",
            {
                "type": "connected",
                "peer_id": str(peer),
                "addr": str(conn.remote_addr),
                "connect_ms": setup_ms,
                "limited": conn.limited,
            },
        )
        stream = await host.new_stream(peer, PROTOCOL_ID)
        rtts: list[float] = []
        sent = 0
        try:
            for seq in range(1, count + 1):
                sent += 1
                (rtt,) = await ping(stream, 1)
                rtts.append(rtt * 1000)
                out.emit(
                    f"{PING_SIZE} bytes from {peer}: seq={seq} time={rtt * 1000:.3f} ms",
                    {"type": "pong", "peer_id": str(peer), "seq": seq, "rtt_ms": rtt * 1000},
                )
                if seq < count:
                    await asyncio.sleep(interval)
        finally:
            record = {
                "type": "summary",
                "peer_id": str(peer),
                "sent": sent,
                "received": len(rtts),
                "min_ms": min(rtts) if rtts else None,
                "avg_ms": statistics.fmean(rtts) if rtts else None,
                "max_ms": max(rtts) if rtts else None,
            }
            out.emit(f"--- {peer} ping statistics ---\n{summary(rtts, sent)}", record)
            await stream.close()
    return 0 if len(rtts) == count else 1
