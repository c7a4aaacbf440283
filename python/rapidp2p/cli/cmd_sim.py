"""``rapidp2p sim kad|gossipsub``: the network simulator (same as ``python -m rapidp2p.sim``)."""

from __future__ import annotations

import argparse
import sys

NAME = "sim"
HELP = "simulate hundreds of nodes on a virtual clock (Kademlia, GossipSub) and write a report"


def configure(parser: argparse.ArgumentParser) -> None:
    """The simulator's own subcommands and options (see ``docs/sim/index.md``)."""
    from rapidp2p.sim.cli import add_arguments

    add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Runs the scenario; from the console script, first pins ``PYTHONHASHSEED`` (a re-exec)
    so that the same seed gives the same ``results.json``."""
    from rapidp2p.sim.cli import pin_hash_seed, run_command

    if sys.argv[1:2] == [NAME]:
        pin_hash_seed(sys.argv[1:], "rapidp2p.cli")
    return run_command(args)
