"""``rapidp2p listen``: run a host that serves ping, identify and echo until interrupted.

By default it listens on all interfaces (``/ip4/0.0.0.0`` and ``/ip6/::``, TCP) as go-libp2p
and kubo do, and prints the addresses other machines can dial (interface addresses, never
``0.0.0.0``). ``-v`` logs connections on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from rapidp2p.cli.common import add_json, add_listen, add_verbose

if TYPE_CHECKING:
    from rapidp2p.host import Host

NAME = "listen"
HELP = "listen (all interfaces by default), print the addresses, serve ping, identify and echo"


def configure(parser: argparse.ArgumentParser) -> None:
    add_listen(parser)
    parser.add_argument("--key", metavar="FILE", type=Path, help="identity key file (see `id`)")
    parser.add_argument(
        "--dht",
        choices=["server", "client", "auto"],
        help="also run a Kademlia DHT node (see `dht`); auto serves once reachable",
    )
    parser.add_argument(
        "--bootstrap", metavar="MULTIADDR", action="append", default=[], help="DHT peer to join"
    )
    parser.add_argument(
        "--protocol",
        default=None,
        help="DHT protocol ID (default /ipfs/kad/1.0.0; kubo's LAN DHT is /ipfs/lan/kad/1.0.0)",
    )
    parser.add_argument(
        "--permissive-namespace",
        metavar="NS",
        action="append",
        default=[],
        help="DHT namespace whose records are stored as-is (greatest value wins); default: "
        "none, only /pk/ records are accepted, as in the library",
    )
    add_verbose(parser)
    add_json(parser)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run
    from rapidp2p.cli.common import setup_logging

    setup_logging(args.verbose)
    with contextlib.suppress(KeyboardInterrupt):
        aio_run(_serve(args))
    return 0


def _log_connections(host: Host) -> None:
    """``-v``: one stderr line per connection, disconnection and identify result."""
    from rapidp2p.cli.common import note
    from rapidp2p.host import PeerConnected, PeerDisconnected, PeerIdentified

    def connected(ev: PeerConnected) -> None:
        conn = ev.conn
        note(f"connected: {ev.peer_id} at {conn.remote_addr} ({conn.direction})")

    def disconnected(ev: PeerDisconnected) -> None:
        note(f"disconnected: {ev.peer_id}")

    def identified(ev: PeerIdentified) -> None:
        note(f"identified: {ev.peer_id} agent={ev.agent_version} protocols={len(ev.protocols)}")

    host.events.on(PeerConnected, connected)
    host.events.on(PeerDisconnected, disconnected)
    host.events.on(PeerIdentified, identified)


async def _serve(args: argparse.Namespace) -> None:
    import asyncio

    from rapidp2p.cli.common import Output, announce_all_interfaces, create_host
    from rapidp2p.crypto import load_identity
    from rapidp2p.protocols import echo

    key = load_identity(args.key) if args.key is not None else None
    out = Output(args.json)
    host = await create_host(key, args.listen, args.port)
    async with host:
        host.set_stream_handler(echo.PROTOCOL_ID, echo.handle_echo)
        if args.verbose:
            _log_connections(host)
        if args.dht is not None:
            from rapidp2p.cli.dht import serve_dht

            await serve_dht(
                host, args.dht, args.bootstrap, args.protocol, args.permissive_namespace
            )
        announce_all_interfaces(host, args.listen is not None)
        addrs = [str(a) for a in host.full_addrs]
        if out.as_json:
            out.emit("", {"peer_id": str(host.peer_id), "addrs": addrs})
        else:
            out.emit(f"peer id: {host.peer_id}", {})
            for addr in addrs:
                out.emit(f"listening on {addr}", {})
        await asyncio.Event().wait()
