"""``rapidp2p id``: create an identity (optionally saving it) or show a saved one's peer ID."""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

from rapidp2p.cli.command import CliError

NAME = "id"
HELP = "print a new peer ID (optionally saving its key), or the peer ID of a saved key"

KEY_TYPE_NAMES = {"ed25519": 1, "secp256k1": 2, "ecdsa": 3, "rsa": 0}


def configure(parser: argparse.ArgumentParser) -> None:
    """--save/--key choose between a new and an existing identity."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--save", metavar="FILE", type=Path, help="store the new key in FILE")
    source.add_argument("--key", metavar="FILE", type=Path, help="read an existing key from FILE")
    parser.add_argument(
        "--type",
        choices=sorted(KEY_TYPE_NAMES),
        default=None,
        help="key type of a new key (default: ed25519)",
    )
    parser.add_argument("--bits", type=int, default=None, help="RSA modulus size (default 2048)")
    parser.add_argument("--force", action="store_true", help="let --save overwrite FILE")
    from rapidp2p.cli.common import add_json

    add_json(parser)


def run(args: argparse.Namespace) -> int:
    """Prints the peer ID (or a JSON description) on stdout."""
    from rapidp2p.crypto import KeyType, generate_keypair, load_identity, save_identity
    from rapidp2p.peer import PeerId

    if args.key is not None:
        if args.type is not None or args.bits is not None or args.force:
            raise CliError("--type, --bits and --force apply to new keys, not to --key")
        key = load_identity(args.key)
        path: Path | None = args.key
    else:
        key_type = KeyType(KEY_TYPE_NAMES[args.type or "ed25519"])
        if args.bits is not None and key_type is not KeyType.RSA:
            raise CliError("--bits applies to --type rsa only")
        key = generate_keypair(key_type, bits=args.bits or 2048)
        path = args.save
        if path is not None:
            try:
                save_identity(path, key, overwrite=args.force)
            except FileExistsError:
                raise CliError(f"{path} exists; use --force to overwrite it") from None
    peer_id = str(PeerId.from_public_key(key.public_key()))
    if args.json:
        print(
            json.dumps(
                {
                    "peer_id": peer_id,
                    "key_type": KeyType(key.key_type).name.lower(),
                    "public_key": base64.b64encode(key.public_key().to_protobuf()).decode(),
                    "file": str(path) if path is not None else None,
                }
            )
        )
    else:
        print(peer_id)
    return 0
