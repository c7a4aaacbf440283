"""``rapidp2p identify MULTIADDR``: print the remote's identify record."""

from __future__ import annotations

import argparse
from typing import Any

from rapidp2p.cli import swarm_key

NAME = "identify"
HELP = "connect to a peer and print its identify record (/ipfs/id/1.0.0)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("addr", metavar="MULTIADDR", help="peer address ending in /p2p/<id>")
    from rapidp2p.cli.common import add_json

    add_json(parser)
    swarm_key.add_flag(parser)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run

    return aio_run(_identify(args.addr, args.json, swarm_key.config(args)))


async def _identify(addr: str, as_json: bool, config: Any = None) -> int:
    import json

    from rapidp2p.cli.command import CliError
    from rapidp2p.host import Host

    async with Host(config=config) as host:
        ident = host.identify
        if ident is None:
            raise CliError("identify is not available in this build")
        conn = await host.connect(addr)
        info = await ident.identify_peer(conn)
        record = {
            "peer_id": str(conn.remote_peer),
            "agent_version": info.agent_version,
            "protocol_version": info.protocol_version,
            "protocols": list(info.protocols),
            "listen_addrs": [str(a) for a in info.listen_addrs],
            "observed_addr": str(info.observed_addr) if info.observed_addr else None,
        }
        if as_json:
            print(json.dumps(record))
        else:
            for key, value in record.items():
                if isinstance(value, list):
                    print(f"{key}:")
                    for item in value:
                        print(f"  {item}")
                else:
                    print(f"{key}: {value}")
    return 0
