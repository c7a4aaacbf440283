"""``--swarm-key FILE``: the private-network flag shared by every command that connects."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_flag(parser: argparse.ArgumentParser) -> None:
    """Adds ``--swarm-key FILE`` (a ``/key/swarm/psk/1.0.0/`` file, kubo's ``swarm.key``)."""
    parser.add_argument(
        "--swarm-key",
        metavar="FILE",
        type=Path,
        default=None,
        help="join the private network of this /key/swarm/psk/1.0.0/ key file (swarm.key)",
    )


def config(args: argparse.Namespace, **overrides: Any) -> Any:
    """A ``HostConfig`` with the PSK of ``--swarm-key`` (read now: a bad file fails early)."""
    from rapidp2p.host import HostConfig
    from rapidp2p.pnet import PreSharedKey

    path = getattr(args, "swarm_key", None)
    psk = PreSharedKey.from_file(path) if path is not None else None
    return HostConfig(psk=psk, **overrides)
