"""py-libp2p's own perf service (PyPI ``libp2p`` 0.8.1, ``libp2p.perf``) behind the
``rapidp2p perf`` command line, so the suite drives it like every other stack.

Run with the py-libp2p interop virtualenv's Python (``tests/interop/py-peer/build`` makes it),
never the project's. Server and client both use ``libp2p.perf.PerfService`` unchanged; only
the extensions (``--iterations``, ``--reuse-connection``, ``--connect-only``,
``--concurrency``, ``--streams``) are loops written here. ``--streams`` above 256 is refused:
py-libp2p's yamux blocks forever past 256 outbound streams (INTEROP.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

import multiaddr
import perf_flags  # sibling module: this file runs as a script
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.perf import PerfService
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

SERVER_PEER_ID = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
EXIT_UNSUPPORTED = 3


def make_host(seed: bytes | None = None) -> Any:
    """Noise + yamux only; one connection per peer (else connect waits ~250 ms, INTEROP.md)."""
    key_pair = create_new_key_pair(seed)
    noise = NoiseTransport(key_pair, noise_privkey=create_new_x25519_key_pair().private_key)
    return new_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        connection_config=ConnectionConfig(max_connections_per_peer=1),
    )


def tcp_multiaddr(address: str) -> str:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    return f"/{'ip6' if ':' in host else 'ip4'}/{host}/tcp/{port}"


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def report(out: Any) -> dict[str, Any]:
    return {
        "type": out["type"],
        "timeSeconds": float(out["time_seconds"]),
        "uploadBytes": int(out["upload_bytes"]),
        "downloadBytes": int(out["download_bytes"]),
    }


async def serve(address: str) -> None:
    host = make_host(bytes(32))
    perf = PerfService(host)
    async with host.run(listen_addrs=[multiaddr.Multiaddr(tcp_multiaddr(address))]):
        await perf.start()
        print(f"{tcp_multiaddr(address)}/p2p/{host.get_id().to_string()}", flush=True)
        await trio.sleep_forever()


async def client(args: argparse.Namespace) -> int:
    target = multiaddr.Multiaddr(f"{tcp_multiaddr(args.server_address)}/p2p/{SERVER_PEER_ID}")
    info = info_from_p2p_addr(target)
    per = [args.iterations // args.concurrency] * args.concurrency
    for i in range(args.iterations % args.concurrency):
        per[i] += 1
    single = args.iterations == 1 and args.streams == 1

    async def one_stream(perf: Any) -> tuple[int, int]:
        up = down = 0
        async for out in perf.measure_performance(target, args.upload_bytes, args.download_bytes):
            if out["type"] == "final":
                up, down = int(out["upload_bytes"]), int(out["download_bytes"])
            elif single:
                emit(report(out))
        return up, down

    async def dialer(count: int) -> None:
        host = make_host()
        perf = PerfService(host)
        async with host.run(listen_addrs=[]):
            await perf.start()
            for _ in range(count):
                start = time.perf_counter()
                await host.connect(info)
                totals = [0, 0]
                if not args.connect_only:

                    async def run_one(acc: list[int] = totals) -> None:
                        up, down = await one_stream(perf)
                        acc[0] += up
                        acc[1] += down

                    async with trio.open_nursery() as nursery:
                        for _ in range(args.streams):
                            nursery.start_soon(run_one)
                emit(
                    {
                        "type": "final",
                        "timeSeconds": time.perf_counter() - start,
                        "uploadBytes": totals[0],
                        "downloadBytes": totals[1],
                    }
                )
                if not args.reuse_connection:
                    await host.disconnect(info.peer_id)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for n in per:
            if n:
                nursery.start_soon(dialer, n)
    if args.iterations > 1:
        emit(
            {
                "type": "summary",
                "iterations": args.iterations,
                "elapsedSeconds": time.perf_counter() - start,
            }
        )
    return 0


def main() -> int:
    args = perf_flags.parse("pylibp2p_perf")
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    if args.transport != "tcp":
        print(f"transport {args.transport} not supported", file=sys.stderr)
        return EXIT_UNSUPPORTED
    if args.streams > 256:
        print("py-libp2p blocks past 256 outbound streams per connection", file=sys.stderr)
        return EXIT_UNSUPPORTED
    try:
        if args.run_server:
            trio.run(serve, args.server_address)
            return 0
        return trio.run(client, args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
