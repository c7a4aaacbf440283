"""``rapidp2p pubsub sub|pub``: GossipSub from the command line.

``sub TOPIC`` prints its own full multiaddrs on stderr (it listens on all interfaces unless
``--listen`` says otherwise), then each received message on stdout as ``SENDER: DATA`` (one
JSON object a message with ``--json``). ``pub TOPIC MESSAGE --connect MA`` waits (up to
``--wait`` s) until a peer subscribed to TOPIC is connected, publishes, and exits 0 only once
at least one peer consumed the message (read it and closed its side of our stream) or, for
peers that never close their side (js-libp2p), its libp2p stack acknowledged every byte; it
says how many of each (stdout: a sentence, or a JSON object), and exits 1 when no peer did
within the wait.
``sub --connect MA`` prints its addresses only once it shares a mesh with a member (at most
:data:`MESH_WAIT` s, about one heartbeat in practice), so a publisher that starts after that
reaches it through the room.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rapidp2p.cli.common import add_json, add_verbose, positive_float

if TYPE_CHECKING:
    from rapidp2p.host import Host
    from rapidp2p.pubsub import GossipSub, Message

from rapidp2p.cli import swarm_key

NAME = "pubsub"
HELP = "publish to / subscribe to a GossipSub topic (sub TOPIC, pub TOPIC MESSAGE)"

#: Seconds ``sub --connect`` waits to be meshed with a member before it goes on with a warning.
MESH_WAIT = 10.0

NO_SIGN_HINT = (
    "--no-sign messages carry no author and no signature; peers with the default policy "
    "(strict signing, as in go-, rust-, js- and py-libp2p) drop them"
)


def configure(parser: argparse.ArgumentParser) -> None:
    from rapidp2p.cli.common import add_listen

    sub = parser.add_subparsers(dest="action", required=True, metavar="{sub,pub}")
    s = sub.add_parser("sub", help="subscribe and print every message (sender and data)")
    s.add_argument("topic", metavar="TOPIC")
    add_listen(s)
    _common(s)
    p = sub.add_parser("pub", help="publish MESSAGE once a subscriber of TOPIC is connected")
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("message", metavar="MESSAGE")
    p.add_argument(
        "--listen",
        metavar="MULTIADDR",
        action="append",
        help="address to listen on (repeatable; default: none, pub only dials)",
    )
    _common(p)
    p.add_argument(
        "--wait",
        type=positive_float,
        default=10.0,
        help="seconds to wait for a subscriber (default 10)",
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--connect", metavar="MULTIADDR", action="append", default=[], help="peer to dial"
    )
    p.add_argument("--key", metavar="FILE", type=Path, help="identity key file (see `id`)")
    p.add_argument(
        "--no-sign",
        action="store_true",
        help="strict no-sign policy: no author, no signature (default: strict sign, what "
        "every other libp2p uses; peers on one policy drop the other's messages)",
    )
    add_verbose(p)
    add_json(p)
    swarm_key.add_flag(p)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run
    from rapidp2p.cli.common import setup_logging

    setup_logging(args.verbose)
    try:
        if args.action == "sub":
            return aio_run(_sub(args))
        return aio_run(_pub(args))
    except KeyboardInterrupt:
        return 130


async def _start(args: argparse.Namespace, listen: list[str] | None) -> tuple[Host, GossipSub]:
    from rapidp2p.cli.common import create_host
    from rapidp2p.crypto import load_identity
    from rapidp2p.pubsub import GossipSub, SignaturePolicy

    key = load_identity(args.key) if args.key is not None else None
    host = await create_host(key, listen, getattr(args, "port", 0), config=swarm_key.config(args))
    policy = SignaturePolicy.STRICT_NO_SIGN if args.no_sign else SignaturePolicy.STRICT_SIGN
    return host, await host.add_service(GossipSub(host, signature_policy=policy))


async def _connect_all(host: Host, addrs: list[str]) -> None:
    from rapidp2p.cli.command import CliError

    for addr in addrs:
        try:
            await host.connect(addr)
        except Exception as exc:
            raise CliError(f"cannot connect to {addr}: {exc}") from exc


async def _join_mesh(ps: GossipSub, topic: str) -> None:
    """Waits (up to :data:`MESH_WAIT` s) for a mesh peer; warns and goes on without one."""
    from rapidp2p.cli.common import note
    from rapidp2p.exceptions import NoSubscribersError

    try:
        await ps.wait_for_subscribers(topic, timeout=MESH_WAIT)
        await ps.wait_for_mesh(topic, timeout=MESH_WAIT)
    except NoSubscribersError as exc:
        note(f"warning: not meshed yet ({exc}); messages may arrive late or be missed")


def _sender(msg: Message) -> str:
    """The author's peer ID; unsigned messages name the peer that forwarded them."""
    from rapidp2p.peer import PeerId

    if msg.from_:
        with contextlib.suppress(Exception):
            return str(PeerId.from_bytes(msg.from_))
    return f"anonymous (via {msg.received_from})" if msg.received_from else "anonymous"


def message_record(msg: Message) -> dict[str, Any]:
    """The JSON form of a received message (data as text and base64)."""
    import base64

    data = msg.data or b""
    return {
        "topic": msg.topic,
        "from": _sender(msg),
        "data": data.decode("utf-8", "replace"),
        "data_base64": base64.b64encode(data).decode(),
        "seqno": msg.seqno.hex() if msg.seqno else None,
    }


async def _sub(args: argparse.Namespace) -> int:
    import json
    import sys

    from rapidp2p.cli.common import announce_all_interfaces, note

    host, ps = await _start(args, args.listen)
    try:
        sub = await ps.subscribe(args.topic)
        # Members named by --connect first, then meshed with one of them: a member forwards
        # a message only to its mesh, so once the addresses are printed we are in the room.
        await _connect_all(host, args.connect)
        if args.connect:
            await _join_mesh(ps, args.topic)
        announce_all_interfaces(host, args.listen is not None)
        note(f"subscribed to {args.topic!r}; publishers can --connect to:")
        for addr in host.full_addrs:
            note(f"  {addr}")
        if args.no_sign:
            note(f"note: {NO_SIGN_HINT}")
        out = sys.stdout.buffer
        async for msg in sub:
            if args.json:
                out.write(json.dumps(message_record(msg)).encode() + b"\n")
            else:
                out.write(_sender(msg).encode() + b": " + (msg.data or b"") + b"\n")
            out.flush()
    finally:
        with contextlib.suppress(Exception):
            await host.close()
    return 0


async def _pub(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from rapidp2p.cli.command import CliError
    from rapidp2p.cli.common import Output, note
    from rapidp2p.exceptions import NoSubscribersError

    if not args.connect:
        raise CliError("pub needs at least one --connect MULTIADDR")
    hint = f" ({NO_SIGN_HINT})" if args.no_sign else ""
    if args.no_sign:
        note(f"note: {NO_SIGN_HINT}")
    host, ps = await _start(args, args.listen or [])
    try:
        await _connect_all(host, args.connect)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.wait
        try:
            peers = await ps.wait_for_subscribers(args.topic, timeout=args.wait)
        except NoSubscribersError:
            raise CliError(
                f"no peer subscribed to {args.topic!r} within {args.wait} s{hint}"
            ) from None
        receipt = await ps.publish_confirmed(
            args.topic, args.message.encode(), timeout=max(1.0, deadline - loop.time())
        )
        sent = len(receipt.sent_to)
        consumed, received = len(receipt.consumed_by), len(receipt.received_by)
        if not receipt.delivered:
            raise CliError(
                f"no peer confirmed the message: sent to {sent} peer(s), none received it "
                f"within {args.wait} s{hint}"
            )
        detail = f"{consumed} read it"
        if received:
            detail += f", {received} acknowledged receipt without a sign of reading"
        print(f"delivered to {consumed + received} of {sent} peer(s): {detail}", file=sys.stderr)
        size = len(args.message.encode())
        Output(args.json).emit(
            f"published {size} bytes to {args.topic!r}: delivered to {consumed + received} "
            f"of {sent} peer{'s' if sent != 1 else ''} ({len(peers)} subscribed)",
            {
                "topic": args.topic,
                "bytes": size,
                "subscribers": len(peers),
                "sent_to": sent,
                "delivered_to": consumed + received,
                "consumed_by": consumed,
                "received_by": received,
            },
        )
    finally:
        with contextlib.suppress(Exception):
            await host.close()
    return 0
