"""``rapidp2p dht <op> ... --bootstrap MULTIADDR``: one Kademlia operation from a client node.

``find-peer PEER_ID`` prints the peer's full addresses (``.../p2p/<id>``), one a line;
``get-closest-peers KEY`` one peer ID a line; ``put KEY VALUE`` how many peers stored it;
``get KEY`` the value; ``provide CID`` how many peers were told (``--stay`` then keeps the
node up, so seekers can reach the provider); ``find-providers CID`` one provider a line: its
peer ID, then its full addresses. ``--json`` prints one JSON object a line instead. Exit
code 1 when the operation fails (nothing found, nobody stored it, no bootstrap peer
answered).

Records are validated as in the library: only ``/pk/`` unless ``--permissive-namespace NS``
says which other namespaces to store as-is. ``provide`` listens on all interfaces unless
``--listen`` says where (the provider record carries the listen addresses, so seekers can
dial the provider).
"""

from __future__ import annotations

import argparse
import base64
import sys
from typing import TYPE_CHECKING, Any

from rapidp2p.cli.common import (
    add_json,
    add_verbose,
    non_negative_int,
    positive_float,
    positive_int,
)

if TYPE_CHECKING:
    from rapidp2p.host import Host
    from rapidp2p.kad import KadDHT
    from rapidp2p.kad.validator import Validator
    from rapidp2p.peer import Multiaddr, PeerId

from rapidp2p.cli import swarm_key

NAME = "dht"
HELP = "Kademlia DHT operations: find-peer, get-closest-peers, put, get, provide, find-providers"

OPS = ("find-peer", "get-closest-peers", "put", "get", "provide", "find-providers")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("op", choices=OPS)
    parser.add_argument("key", metavar="KEY", help="peer ID, record key (text), or CID")
    parser.add_argument("value", metavar="VALUE", nargs="?", help="value for put (text)")
    parser.add_argument(
        "--bootstrap",
        metavar="MULTIADDR",
        action="append",
        default=[],
        required=True,
        help="peer to join through (repeatable)",
    )
    parser.add_argument(
        "--protocol",
        default=None,
        help="DHT protocol ID (default /ipfs/kad/1.0.0; kubo's LAN DHT is /ipfs/lan/kad/1.0.0)",
    )
    parser.add_argument("--quorum", type=positive_int, default=None, help="answers a get waits for")
    parser.add_argument(
        "--count", type=positive_int, default=20, help="providers to find at most (default 20)"
    )
    parser.add_argument(
        "--permissive-namespace",
        metavar="NS",
        action="append",
        default=[],
        help="namespace whose records are accepted as-is (greatest value wins; repeatable); "
        "default: none, only /pk/ records, as in the library",
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=60.0, help="seconds for the operation"
    )
    parser.add_argument(
        "--listen",
        metavar="MULTIADDR",
        action="append",
        default=None,
        help="address to listen on (repeatable; default: none, all interfaces for provide)",
    )
    parser.add_argument(
        "--port",
        type=non_negative_int,
        default=0,
        help="TCP port of provide's default listen addresses (default 0: any free port)",
    )
    parser.add_argument(
        "--stay",
        action="store_true",
        help="provide: keep the node running afterwards (seekers dial the provider's "
        "addresses; the record is republished) until interrupted",
    )
    add_verbose(parser)
    add_json(parser)
    swarm_key.add_flag(parser)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run
    from rapidp2p.cli.command import CliError
    from rapidp2p.cli.common import setup_logging

    if args.op == "put" and args.value is None:
        raise CliError("put needs a VALUE")
    if args.stay and args.op != "provide":
        raise CliError("--stay applies to provide only")
    setup_logging(args.verbose)
    try:
        return aio_run(_run(args))
    except KeyboardInterrupt:
        return 130 if not args.stay else 0


def make_validator(permissive: list[str]) -> Validator:
    """The library's default validator plus the namespaces the user named."""
    from rapidp2p.kad import PermissiveValidator, default_validator

    return default_validator({ns: PermissiveValidator() for ns in permissive})


def _full(addr: Multiaddr, peer: PeerId) -> str:
    text = str(addr)
    return text if "/p2p/" in text else f"{text}/p2p/{peer}"


def _value_record(key: str, value: bytes) -> dict[str, Any]:
    return {
        "key": key,
        "value": value.decode("utf-8", "replace"),
        "value_base64": base64.b64encode(value).decode(),
    }


async def _run(args: argparse.Namespace) -> int:
    import asyncio

    from rapidp2p.cli.command import CliError
    from rapidp2p.cli.common import Output, create_host, note
    from rapidp2p.exceptions import InvalidRecordError
    from rapidp2p.kad import KadConfig, KadDHT, provider_key
    from rapidp2p.peer import PeerId

    op, key = args.op, args.key
    # Bad input fails before any network work, in plain words.
    target = PeerId(key) if op == "find-peer" else None
    if op in ("provide", "find-providers"):
        provider_key(key)
    cfg = KadConfig(mode="client", query_timeout=args.timeout)
    if args.protocol:
        cfg.protocol = args.protocol
    validator = make_validator(args.permissive_namespace)
    listen = args.listen
    if listen is None and op != "provide":
        listen = []
    out = Output(args.json)
    host = await create_host(None, listen, args.port, config=swarm_key.config(args))
    async with host:
        dht = KadDHT(host, cfg, validator=validator)
        async with dht:
            await asyncio.wait_for(dht.bootstrap(args.bootstrap), args.timeout)
            if target is not None:
                info = await dht.find_peer(target)
                addrs = [_full(a, target) for a in info.addrs]
                if out.as_json:
                    out.emit("", {"peer_id": str(target), "addrs": addrs})
                else:
                    for a in addrs:
                        out.emit(a, {})
            elif op == "get-closest-peers":
                closest = await dht.get_closest_peers(_key_bytes(key))
                for p in closest:
                    out.emit(str(p), {"peer_id": str(p)})
                if not closest:
                    raise CliError("no peer found")
            elif op == "put":
                try:
                    n = await dht.put_value(key.encode(), args.value.encode())
                except InvalidRecordError as exc:
                    raise CliError(_namespace_hint(key, exc)) from None
                out.emit(
                    f"stored {key} on {n} peer{'s' if n != 1 else ''}",
                    {"key": key, "stored_on": n},
                )
                if n == 0:
                    raise CliError("no peer stored the record")
            elif op == "get":
                value = await dht.get_value(key.encode(), args.quorum)
                if out.as_json:
                    out.emit("", _value_record(key, value))
                else:
                    sys.stdout.buffer.write(value + b"\n")
                    sys.stdout.flush()
            elif op == "provide":
                n = await dht.provide(key)
                out.emit(
                    f"announced {host.peer_id} as a provider of {key} to "
                    f"{n} peer{'s' if n != 1 else ''}",
                    {"cid": key, "provider": str(host.peer_id), "announced_to": n},
                )
                if n == 0:
                    raise CliError("no peer accepted the provider record")
                if args.stay:
                    await _stay(host)
            else:
                found = 0
                async for prov in dht.find_providers(key, args.count):
                    addrs = [_full(a, prov.peer_id) for a in prov.addrs]
                    out.emit(
                        " ".join([str(prov.peer_id), *addrs]),
                        {"cid": key, "peer_id": str(prov.peer_id), "addrs": addrs},
                    )
                    found += 1
                if not found:
                    raise CliError("no providers found")
                note(f"{found} provider{'s' if found != 1 else ''} found")
    return 0


def _namespace_hint(key: str, exc: Exception) -> str:
    """The validator's refusal, with the CLI's way to accept the namespace."""
    from rapidp2p.kad.validator import split_namespace

    try:
        ns, _ = split_namespace(key.encode())
    except Exception:
        return str(exc)
    if "no validator for namespace" not in str(exc):
        return str(exc)
    return (
        f"no validator for namespace {ns!r}: only /pk/ records are accepted by default; "
        f"pass --permissive-namespace {ns} to store any value under /{ns}/"
    )


async def _stay(host: Host) -> None:
    import asyncio

    from rapidp2p.cli.common import note

    note("providing; reachable at:")
    for a in host.full_addrs:
        note(f"  {a}")
    note("press Ctrl-C to stop")
    await asyncio.Event().wait()


async def serve_dht(
    host: Host,
    mode: str,
    bootstrap: list[str],
    protocol: str | None = None,
    permissive: list[str] | None = None,
) -> KadDHT:
    """For ``rapidp2p listen --dht MODE [--bootstrap MULTIADDR]...``: a started DHT on
    ``host`` (bootstrapped when peers are given); the caller keeps it until exit."""
    from rapidp2p.kad import KadConfig, KadDHT

    cfg = KadConfig(mode=mode)
    if protocol:
        cfg.protocol = protocol
    dht = KadDHT(host, cfg, validator=make_validator(permissive or []))
    await dht.start()
    if bootstrap:
        await dht.bootstrap(bootstrap)
    return dht


def _key_bytes(text: str) -> bytes:
    """A peer ID's bytes when the text is one, else the text's UTF-8 bytes."""
    from rapidp2p.exceptions import DecodeError
    from rapidp2p.peer import PeerId

    try:
        return PeerId.from_string(text).to_bytes()
    except (DecodeError, ValueError):
        return text.encode()
