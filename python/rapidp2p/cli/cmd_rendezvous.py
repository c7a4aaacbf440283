"""``rapidp2p rendezvous serve|register|discover``: a rendezvous server, or one client call.

* ``serve`` runs a ``/rendezvous/1.0.0`` server (plus ping and identify) until interrupted,
  printing its addresses.
* ``register SERVER NAMESPACE [--ttl S]`` registers this node's addresses and stays up (so the
  registration points at a live node), re-registering before the TTL runs out, until
  interrupted; ``--once`` exits after registering.
* ``discover SERVER [NAMESPACE] [--limit N]`` prints the registrations (one line each), and
  the cookie for a later ``--cookie``.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from rapidp2p.cli import swarm_key
from rapidp2p.cli.command import CliError
from rapidp2p.cli.common import add_json, add_listen, non_negative_int, positive_int

NAME = "rendezvous"
HELP = "rendezvous (/rendezvous/1.0.0): serve, register with a server, or discover through one"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = sub.add_parser("serve", help="run a rendezvous server")
    add_listen(serve)
    serve.add_argument(
        "--max-per-peer", type=positive_int, default=1000, help="registrations per peer"
    )
    serve.add_argument(
        "--max-total", type=positive_int, default=100_000, help="registrations in all"
    )
    reg = sub.add_parser("register", help="register this node under a namespace")
    reg.add_argument("server", metavar="SERVER", help="server multiaddr ending in /p2p/<id>")
    reg.add_argument("namespace", metavar="NAMESPACE")
    reg.add_argument("--ttl", type=positive_int, default=7200, help="seconds (default 7200)")
    reg.add_argument("--once", action="store_true", help="exit once registered")
    reg.add_argument(
        "--legacy", action="store_true", help="send rust-libp2p's record kind (for its clients)"
    )
    add_listen(reg)
    disc = sub.add_parser("discover", help="list the registrations of a namespace")
    disc.add_argument("server", metavar="SERVER", help="server multiaddr ending in /p2p/<id>")
    disc.add_argument("namespace", metavar="NAMESPACE", nargs="?", default="")
    disc.add_argument("--limit", type=non_negative_int, default=0, help="at most N (0: server's)")
    disc.add_argument("--cookie", default="", help="hex cookie of an earlier discover")
    for p in (serve, reg, disc):
        add_json(p)
        swarm_key.add_flag(p)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run

    try:
        return aio_run(_main(args))
    except KeyboardInterrupt:
        return 130


async def _main(args: argparse.Namespace) -> int:
    import asyncio

    from rapidp2p.cli.common import Output, create_host
    from rapidp2p.discovery.rendezvous import (
        RendezvousClient,
        RendezvousError,
        RendezvousServer,
        ServerLimits,
    )
    from rapidp2p.exceptions import Libp2pError
    from rapidp2p.peer import Multiaddr

    out = Output(args.json)
    listen = getattr(args, "listen", None)
    if args.action == "discover" and listen is None:
        listen = []  # a client that only asks need not listen
    host = await create_host(None, listen, getattr(args, "port", 0), config=swarm_key.config(args))
    async with host:
        if args.action == "serve":
            server = RendezvousServer(
                ServerLimits(
                    max_registrations_per_peer=args.max_per_peer,
                    max_registrations_total=args.max_total,
                )
            )
            await server.start(host)
            addrs = [str(a) for a in host.full_addrs]
            if out.as_json:
                out.emit("", {"peer_id": str(host.peer_id), "addrs": addrs})
            else:
                out.emit(f"rendezvous server {host.peer_id}", {})
                for a in addrs:
                    out.emit(f"listening on {a}", {})
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
            return 0
        client = RendezvousClient()
        await client.start(host)
        try:
            server_addr = Multiaddr(args.server)
        except Libp2pError as exc:
            raise CliError(f"bad server address {args.server!r}: {exc}") from None
        try:
            if args.action == "register":
                # staying up: keep the registration alive past its TTL (re-registered at 3/4)
                call = client.register if args.once else client.keep_registered
                ttl = await call(server_addr, args.namespace, args.ttl, legacy=args.legacy or None)
                out.emit(
                    f"registered {host.peer_id} under {args.namespace!r} for {ttl} s",
                    {"registered": args.namespace, "peer_id": str(host.peer_id), "ttl": ttl},
                )
                if not args.once:
                    await asyncio.Event().wait()
                return 0
            cookie = bytes.fromhex(args.cookie) if args.cookie else b""
            found, next_cookie = await client.discover(
                server_addr, args.namespace, limit=args.limit, cookie=cookie
            )
        except (RendezvousError, Libp2pError, ValueError) as exc:
            raise CliError(str(exc)) from None
        for d in found:
            record: dict[str, Any] = {
                "peer_id": str(d.peer.peer_id),
                "ns": d.ns,
                "ttl": d.ttl,
                "addrs": [str(a) for a in d.peer.addrs],
            }
            out.emit(f"{d.peer.peer_id} {d.ns} ttl={d.ttl} {' '.join(record['addrs'])}", record)
        out.emit(f"cookie {next_cookie.hex()}", {"cookie": next_cookie.hex(), "count": len(found)})
        return 0
