"""``rapidp2p dht <op> ... --bootstrap MULTIADDR``: one Kademlia operation from a client node.

``find-peer PEER_ID`` prints the addresses, ``get-closest-peers KEY`` one peer ID a line,
``put KEY VALUE`` how many peers stored it, ``get KEY`` the value, ``provide CID`` how many
peers were told, ``find-providers CID`` one provider peer ID a line. Exit code 1 when the
operation fails (nothing found, nobody stored it, no bootstrap peer answered).

``provide`` listens on ``/ip4/127.0.0.1/tcp/0`` unless ``--listen`` says where (the provider
record carries the listen addresses, so seekers can dial the provider).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

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
        "--protocol", default=None, help="DHT protocol ID (default /ipfs/kad/1.0.0)"
    )
    parser.add_argument("--quorum", type=int, default=None, help="answers a get waits for")
    parser.add_argument("--count", type=int, default=20, help="providers to find at most")
    parser.add_argument(
        "--permissive-namespace",
        metavar="NS",
        action="append",
        default=["test"],
        help="namespace whose records are accepted as-is (greatest value wins; default: test)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the operation")
    parser.add_argument(
        "--listen",
        metavar="MULTIADDR",
        action="append",
        default=None,
        help="address to listen on (repeatable; default: none, /ip4/127.0.0.1/tcp/0 for provide)",
    )
    swarm_key.add_flag(parser)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run
    from rapidp2p.cli.command import CliError

    if args.op == "put" and args.value is None:
        raise CliError("put needs a VALUE")
    return aio_run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    import asyncio

    from rapidp2p.cli.command import CliError
    from rapidp2p.host import Host
    from rapidp2p.kad import KadConfig, KadDHT, PermissiveValidator, default_validator
    from rapidp2p.peer import PeerId

    cfg = KadConfig(mode="client", query_timeout=args.timeout)
    if args.protocol:
        cfg.protocol = args.protocol
    validator = default_validator({ns: PermissiveValidator() for ns in args.permissive_namespace})
    listen = args.listen
    if listen is None:
        listen = ["/ip4/127.0.0.1/tcp/0"] if args.op == "provide" else []
    async with await Host.create(listen=listen, config=swarm_key.config(args)) as host:
        dht = KadDHT(host, cfg, validator=validator)
        async with dht:
            await asyncio.wait_for(dht.bootstrap(args.bootstrap), args.timeout)
            op, key = args.op, args.key
            if op == "find-peer":
                info = await dht.find_peer(PeerId.from_string(key))
                for a in info.addrs:
                    print(a, flush=True)
            elif op == "get-closest-peers":
                closest = await dht.get_closest_peers(_key_bytes(key))
                for p in closest:
                    print(p, flush=True)
                if not closest:
                    raise CliError("no peer found")
            elif op == "put":
                n = await dht.put_value(key.encode(), args.value.encode())
                print(n, flush=True)
                if n == 0:
                    raise CliError("no peer stored the record")
            elif op == "get":
                value = await dht.get_value(key.encode(), args.quorum)
                sys.stdout.buffer.write(value + b"\n")
                sys.stdout.flush()
            elif op == "provide":
                n = await dht.provide(key)
                print(n, flush=True)
                if n == 0:
                    raise CliError("no peer accepted the provider record")
            else:
                found = 0
                async for prov in dht.find_providers(key, args.count):
                    print(prov.peer_id, flush=True)
                    found += 1
                if not found:
                    raise CliError("no providers found")
    return 0


async def serve_dht(host: Any, mode: str, bootstrap: list[str]) -> Any:
    """For ``rapidp2p listen --dht MODE [--bootstrap MULTIADDR]...``: a started DHT on
    ``host`` (bootstrapped when peers are given); the caller keeps it until exit."""
    from rapidp2p.kad import KadConfig, KadDHT, PermissiveValidator, default_validator

    validator = default_validator({"test": PermissiveValidator()})
    dht = KadDHT(host, KadConfig(mode=mode), validator=validator)
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
