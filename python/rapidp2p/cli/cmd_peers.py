"""``rapidp2p peers``: run discovery for a while, then list what was found and connected.

The same sources as ``listen`` (``--mdns``, ``--bootstrap``, ``--rendezvous``); prints each
peer as it is discovered and connected, then after ``--duration`` seconds a table (or one
JSON object per peer with ``--json``) of every peer seen: its source, its addresses, and
whether a connection is up.
"""

from __future__ import annotations

import argparse
from typing import Any

from rapidp2p.cli import discovery_flags, swarm_key
from rapidp2p.cli.command import CliError
from rapidp2p.cli.common import add_json, add_listen, positive_float

NAME = "peers"
HELP = "discover peers (mDNS, bootstrap, rendezvous) for a while and list them"


def configure(parser: argparse.ArgumentParser) -> None:
    add_listen(parser)
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=10.0,
        help="seconds to run discovery before listing (default 10)",
    )
    discovery_flags.add_flags(parser)
    add_json(parser)
    swarm_key.add_flag(parser)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run

    if not discovery_flags.wanted(args):
        raise CliError("nothing to discover with: pass --mdns, --bootstrap or --rendezvous")
    try:
        return aio_run(_main(args))
    except KeyboardInterrupt:
        return 130


async def _main(args: argparse.Namespace) -> int:
    import asyncio

    from rapidp2p.cli.common import Output, create_host
    from rapidp2p.discovery import PeerDiscovered

    out = Output(args.json)
    host = await create_host(None, args.listen, args.port, config=swarm_key.config(args))
    seen: dict[Any, PeerDiscovered] = {}
    async with host:

        def remember(ev: PeerDiscovered) -> None:
            seen.setdefault(ev.peer_id, ev)

        host.events.on(PeerDiscovered, remember)
        group = await discovery_flags.start(host, args, out)
        try:
            await asyncio.sleep(args.duration)
        finally:
            await group.close()
        for pid, ev in seen.items():
            connected = host.is_connected(pid)
            addrs = [str(a) for a in ev.addrs]
            out.emit(
                f"{pid}  {ev.source:<18} {'connected' if connected else '-':<9} {' '.join(addrs)}",
                {
                    "event": "peer",
                    "peer_id": str(pid),
                    "source": ev.source,
                    "connected": connected,
                    "addrs": addrs,
                },
            )
    return 0
