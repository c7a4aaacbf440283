"""``rapidp2p listen``: run a host that serves ping, identify and echo until interrupted."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from rapidp2p.cli import swarm_key

NAME = "listen"
HELP = "listen on multiaddrs, print them (with /p2p/), serve ping, identify and /echo/1.0.0"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        metavar="MULTIADDR",
        action="append",
        help="address to listen on (repeatable; default /ip4/127.0.0.1/tcp/0)",
    )
    parser.add_argument("--key", metavar="FILE", type=Path, help="identity key file (see `id`)")
    parser.add_argument(
        "--dht",
        choices=["server", "client", "auto"],
        help="also run a Kademlia DHT node (see `dht`); auto serves once reachable",
    )
    parser.add_argument(
        "--bootstrap", metavar="MULTIADDR", action="append", default=[], help="DHT peer to join"
    )
    swarm_key.add_flag(parser)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run

    with contextlib.suppress(KeyboardInterrupt):
        aio_run(
            _serve(
                args.listen or ["/ip4/127.0.0.1/tcp/0"],
                args.key,
                getattr(args, "dht", None),
                getattr(args, "bootstrap", []),
                swarm_key.config(args),
            )
        )
    return 0


async def _serve(
    listen: list[str],
    key_file: Path | None,
    dht_mode: str | None = None,
    bootstrap: list[str] | None = None,
    config: Any = None,
) -> None:
    import asyncio

    from rapidp2p.crypto import load_identity
    from rapidp2p.host import Host

    key = load_identity(key_file) if key_file is not None else None
    async with await Host.create(key, listen=listen, config=config) as host:
        from rapidp2p.protocols import echo

        host.set_stream_handler(echo.PROTOCOL_ID, echo.handle_echo)
        if dht_mode is not None:
            from rapidp2p.cli.dht import serve_dht

            await serve_dht(host, dht_mode, bootstrap or [])
        print(f"peer id: {host.peer_id}", flush=True)
        for addr in host.full_addrs:
            print(f"listening on {addr}", flush=True)
        await asyncio.Event().wait()
