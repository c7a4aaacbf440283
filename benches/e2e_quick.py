"""End-to-end figures between two processes over loopback TCP (a script, not a test).

    python benches/e2e_quick.py [--mib 256] [--pings 50] [--setups 20]

Measures, with rapidp2p hosts (Noise + yamux) on uvloop when installed:
- single-stream throughput: MiB sent by the client, counted by the server's sink handler;
- connection setup: TCP connect + Noise XX + yamux (+ early muxer negotiation), per connect;
- ping RTT (/ipfs/ping/1.0.0) on one stream;
and the same bulk transfer over raw TCP through the same event loop, for comparison.
The server runs in a child process so the two sides do not share one core's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

SINK = "/bench/sink/1.0.0"
CHUNK = 1 << 20


PLAINTEXT = "--plaintext" in sys.argv


def _config(limits: object = None) -> object:
    """Noise by default; ``--plaintext`` (explicit) measures the stack without encryption."""
    from rapidp2p.host import HostConfig, Limits

    cfg = HostConfig(limits=limits if isinstance(limits, Limits) else Limits())
    if PLAINTEXT:
        cfg.enable_plaintext = True
        cfg.security_protocols = ["/plaintext/2.0.0"]
    return cfg


# ---- server side (child process) ---------------------------------------------------------


async def serve_rapidp2p() -> None:
    from rapidp2p._aio.stream import Stream
    from rapidp2p.host import Host, HostConfig, Limits

    config = _config(Limits(connection_burst_per_ip=10_000, max_connections_per_ip=10_000))
    assert isinstance(config, HostConfig)

    async def sink(stream: Stream) -> None:
        total = 0
        while chunk := await stream.read(1 << 22):
            total += len(chunk)
        stream.write(total.to_bytes(8, "big"))
        await stream.close()

    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=config) as host:
        host.set_stream_handler(SINK, sink)
        print(host.full_addrs[0], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


class _RawSink(asyncio.Protocol):
    def __init__(self) -> None:
        self.total = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.total += len(data)

    def eof_received(self) -> bool:
        assert self.transport is not None
        self.transport.write(self.total.to_bytes(8, "big"))
        self.transport.close()
        return True


async def serve_raw() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_RawSink, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    await loop.run_in_executor(None, sys.stdin.read)


# ---- client side -------------------------------------------------------------------------


async def bench_rapidp2p(addr: str, mib: int, pings: int, setups: int) -> dict[str, float]:
    from rapidp2p.host import Host

    out: dict[str, float] = {}
    setup_times = []
    for _ in range(setups):
        async with Host(config=_config()) as h:  # type: ignore[arg-type]
            start = time.perf_counter()
            await h.connect(addr)
            setup_times.append(time.perf_counter() - start)
    out["setup_ms_median"] = statistics.median(setup_times) * 1000
    out["setup_ms_min"] = min(setup_times) * 1000

    async with Host(config=_config()) as host:  # type: ignore[arg-type]
        conn = await host.connect(addr)
        rtts = await host.ping(conn.remote_peer, pings)
        out["ping_us_median"] = statistics.median(rtts) * 1e6
        out["ping_us_min"] = min(rtts) * 1e6

        payload = b"\xa5" * CHUNK
        stream = await host.new_stream(conn.remote_peer, SINK)
        start = time.perf_counter()
        for _ in range(mib):
            stream.write(payload)
            await stream.drain()
        await stream.close()
        counted = int.from_bytes(await stream.readexactly(8), "big")
        elapsed = time.perf_counter() - start
        assert counted == mib * CHUNK, (counted, mib * CHUNK)
        out["throughput_MBps"] = mib * CHUNK / elapsed / 1e6
    return out


async def bench_raw(port: int, mib: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = b"\xa5" * CHUNK
    start = time.perf_counter()
    for _ in range(mib):
        writer.write(payload)
        await writer.drain()
    writer.write_eof()
    counted = int.from_bytes(await reader.readexactly(8), "big")
    elapsed = time.perf_counter() - start
    writer.close()
    assert counted == mib * CHUNK
    return mib * CHUNK / elapsed / 1e6


def _child(kind: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, *(["--plaintext"] if PLAINTEXT else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def main() -> None:
    from rapidp2p._aio.runner import run

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=["rapidp2p", "raw"])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--pings", type=int, default=50)
    parser.add_argument("--setups", type=int, default=20)
    parser.add_argument("--plaintext", action="store_true", help="no encryption (explicit)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the client to FILE")
    args = parser.parse_args()
    if args.serve == "rapidp2p":
        run(serve_rapidp2p())
        return
    if args.serve == "raw":
        run(serve_raw())
        return

    loop_name = "uvloop" if _has_uvloop() else "asyncio"
    child = _child("rapidp2p")
    try:
        assert child.stdout is not None
        addr = child.stdout.readline().strip()
        if args.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        figures = run(bench_rapidp2p(addr, args.mib, args.pings, args.setups))
        if args.profile:
            prof.disable()
            prof.dump_stats(args.profile)
    finally:
        child.communicate("", timeout=30)
    raw_child = _child("raw")
    try:
        assert raw_child.stdout is not None
        port = int(raw_child.stdout.readline())
        raw = run(bench_raw(port, args.mib))
    finally:
        raw_child.communicate("", timeout=30)

    security = "plaintext (no encryption)" if PLAINTEXT else "Noise"
    print(f"event loop: {loop_name}; two processes over 127.0.0.1; security {security}")
    print(f"rapidp2p single stream, {args.mib} MiB: {figures['throughput_MBps']:.0f} MB/s")
    print(f"raw TCP, {args.mib} MiB:               {raw:.0f} MB/s")
    print(
        f"connection setup (TCP+Noise+yamux): median {figures['setup_ms_median']:.2f} ms, "
        f"min {figures['setup_ms_min']:.2f} ms over {args.setups}"
    )
    print(
        f"ping RTT: median {figures['ping_us_median']:.0f} us, "
        f"min {figures['ping_us_min']:.0f} us over {args.pings}"
    )


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
