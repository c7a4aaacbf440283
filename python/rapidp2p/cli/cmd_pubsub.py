"""``rapidp2p pubsub sub|pub``: GossipSub from the command line.

``sub TOPIC`` prints its own full multiaddr first, then each received message's data on its
own line. ``pub TOPIC MESSAGE --connect MA`` waits (up to ``--wait`` s) until a peer
subscribed to TOPIC is connected, publishes, and exits 0 only once at least one peer consumed
the message (read it and closed its side of our stream) or, for peers that never close their
side (js-libp2p), its libp2p stack acknowledged every byte; it says how many of each, and exits
1 when no peer did within the wait.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from rapidp2p.cli import swarm_key

NAME = "pubsub"
HELP = "publish to / subscribe to a GossipSub topic (sub TOPIC, pub TOPIC MESSAGE)"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="{sub,pub}")
    s = sub.add_parser("sub", help="subscribe and print every message's data on its own line")
    s.add_argument("topic", metavar="TOPIC")
    _common(s)
    p = sub.add_parser("pub", help="publish MESSAGE once a subscriber of TOPIC is connected")
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("message", metavar="MESSAGE")
    _common(p)
    p.add_argument(
        "--wait", type=float, default=10.0, help="seconds to wait for a subscriber (default 10)"
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--listen",
        metavar="MULTIADDR",
        action="append",
        help="address to listen on (repeatable; sub defaults to /ip4/127.0.0.1/tcp/0)",
    )
    p.add_argument(
        "--connect", metavar="MULTIADDR", action="append", default=[], help="peer to dial"
    )
    p.add_argument("--key", metavar="FILE", type=Path, help="identity key file (see `id`)")
    p.add_argument(
        "--no-sign", action="store_true", help="strict no-sign policy (default: strict sign)"
    )
    swarm_key.add_flag(p)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run

    try:
        if args.action == "sub":
            return aio_run(_sub(args))
        return aio_run(_pub(args))
    except KeyboardInterrupt:
        return 130


async def _start(args: argparse.Namespace, default_listen: list[str]) -> tuple[Any, Any]:
    from rapidp2p.crypto import load_identity
    from rapidp2p.host import Host
    from rapidp2p.pubsub import GossipSub, SignaturePolicy

    key = load_identity(args.key) if args.key is not None else None
    config = swarm_key.config(args)
    host = await Host.create(key, listen=args.listen or default_listen, config=config)
    policy = SignaturePolicy.STRICT_NO_SIGN if args.no_sign else SignaturePolicy.STRICT_SIGN
    return host, GossipSub(host, signature_policy=policy)


async def _connect_all(host: Any, addrs: list[str]) -> None:
    from rapidp2p.cli.command import CliError

    for addr in addrs:
        try:
            await host.connect(addr)
        except Exception as exc:
            raise CliError(f"cannot connect to {addr}: {exc}") from exc


async def _sub(args: argparse.Namespace) -> int:
    import sys

    host, ps = await _start(args, ["/ip4/127.0.0.1/tcp/0"])
    try:
        sub = await ps.subscribe(args.topic)
        for addr in host.full_addrs:
            print(addr, flush=True)
        await _connect_all(host, args.connect)
        out = sys.stdout.buffer
        async for msg in sub:
            out.write((msg.data or b"") + b"\n")
            out.flush()
    finally:
        with contextlib.suppress(Exception):
            await host.close()
    return 0


async def _pub(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from rapidp2p.cli.command import CliError

    if not args.connect:
        raise CliError("pub needs at least one --connect MULTIADDR")
    host, ps = await _start(args, [])
    try:
        await _connect_all(host, args.connect)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.wait
        while not ps.topic_peers(args.topic):
            if loop.time() >= deadline:
                raise CliError(f"no peer subscribed to {args.topic!r} within {args.wait} s")
            await asyncio.sleep(0.02)
        receipt = await ps.publish_confirmed(
            args.topic, args.message.encode(), timeout=max(1.0, deadline - loop.time())
        )
        sent = len(receipt.sent_to)
        consumed, received = len(receipt.consumed_by), len(receipt.received_by)
        if not receipt.delivered:
            hint = " (they may require signed messages: drop --no-sign)" if args.no_sign else ""
            raise CliError(
                f"no peer confirmed the message: sent to {sent} peer(s), none received it "
                f"within {args.wait} s{hint}"
            )
        detail = f"{consumed} read it"
        if received:
            detail += f", {received} acknowledged receipt without a sign of reading"
        print(f"delivered to {consumed + received} of {sent} peer(s): {detail}", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            await host.close()
    return 0
