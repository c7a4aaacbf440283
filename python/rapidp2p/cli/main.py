"""Argument parsing and error reporting for the ``rapidp2p`` console script."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import cast

from rapidp2p.cli.command import CliError, Command
from rapidp2p.cli.registry import COMMAND_MODULES
from rapidp2p.exceptions import Libp2pError

PROG = "rapidp2p"


def load_commands() -> list[Command]:
    """Imports every registered subcommand module."""
    return [cast(Command, importlib.import_module(name)) for name in COMMAND_MODULES]


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The top-level parser with one subparser per registered command."""
    from rapidp2p import __version__

    parser = argparse.ArgumentParser(prog=PROG, description="libp2p tools built on rapidp2p.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in commands:
        sub = subparsers.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.configure(sub)
        sub.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns the exit code (0 ok, 1 expected error, 2 usage error)."""
    parser = build_parser(load_commands())
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(run(args))
    except (CliError, Libp2pError, OSError) as e:
        print(f"{PROG}: error: {_describe(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _describe(error: BaseException) -> str:
    """A one-line message; OSError's str() already names the file."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.filename}: {error.strerror}"
    return str(error) or type(error).__name__
