"""``rapidp2p demo``: two hosts on loopback: connect, ping, identify, 16 MiB echo, a report."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "start two hosts on 127.0.0.1, connect, ping, identify, echo 16 MiB, print a report"


def configure(parser: argparse.ArgumentParser) -> None:
    from rapidp2p.cli.common import add_json, positive_int

    parser.add_argument(
        "--mib",
        type=positive_int,
        default=16,
        help="MiB to send through the echo protocol (default 16)",
    )
    parser.add_argument("--pings", type=positive_int, default=5, help="pings to send (default 5)")
    add_json(parser)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run

    return aio_run(demo(args.mib, args.pings, args.json))


async def demo(mib: int, pings: int, as_json: bool = False) -> int:
    import asyncio
    import hashlib
    import time

    from rapidp2p.host import Host
    from rapidp2p.protocols.echo import PROTOCOL_ID as ECHO_PROTOCOL
    from rapidp2p.protocols.echo import handle_echo

    report: dict[str, object] = {}

    def row(label: str, value: str) -> None:
        if not as_json:
            print(f"  {label:<34}{value}", flush=True)

    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as server, Host() as client:
        server.set_stream_handler(ECHO_PROTOCOL, handle_echo)
        if not as_json:
            print("rapidp2p demo: two hosts on 127.0.0.1")
        report.update(server=str(server.full_addrs[0]), client=str(client.peer_id))
        row("server", f"{server.full_addrs[0]}")
        row("client", f"{client.peer_id}")

        start = time.perf_counter()
        conn = await client.connect(server.full_addrs[0])
        connect_ms = (time.perf_counter() - start) * 1000
        row("connect (TCP + Noise + yamux)", f"{connect_ms:.2f} ms")
        row("security / muxer", f"{conn.security} / {conn.muxer}")
        report.update(connect_ms=connect_ms, security=conn.security, muxer=conn.muxer)

        rtts = [r * 1000 for r in await client.ping(server.peer_id, pings)]
        report.update(ping_ms=rtts)
        row(
            f"ping x{pings}",
            f"min {min(rtts):.3f} / avg {sum(rtts) / len(rtts):.3f} / max {max(rtts):.3f} ms",
        )

        ident = client.identify
        if ident is not None:
            info = await ident.identify_peer(conn)
            row("identify: agent", str(info.agent_version))
            row("identify: protocols", ", ".join(info.protocols))
            report.update(agent_version=info.agent_version, protocols=list(info.protocols))

        size = mib * 1024 * 1024
        block = hashlib.sha256(b"rapidp2p").digest() * 2048  # 64 KiB
        stream = await client.new_stream(server.peer_id, ECHO_PROTOCOL)
        sent_hash, got_hash = hashlib.sha256(), hashlib.sha256()
        received = 0

        async def reader() -> None:
            nonlocal received
            async for chunk in stream:
                got_hash.update(chunk)
                received += len(chunk)

        start = time.perf_counter()
        rtask = asyncio.ensure_future(reader())
        for _ in range(size // len(block)):
            stream.write(block)
            sent_hash.update(block)
            await stream.drain()
        await stream.close()
        await rtask
        elapsed = time.perf_counter() - start
        ok = received == size and got_hash.digest() == sent_hash.digest()
        row(
            f"echo {mib} MiB (out and back)",
            f"{elapsed * 1000:.0f} ms, {size / elapsed / 1e6:.0f} MB/s each way, "
            f"{'verified' if ok else 'MISMATCH'}",
        )
        report.update(echo_bytes=size, echo_ms=elapsed * 1000, verified=ok)
    if as_json:
        import json

        print(json.dumps(report), flush=True)
    return 0 if ok else 1
