"""Argument parsing and error reporting for the ``rapidp2p`` console script."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import cast

from rapidp2p.cli.command import CliError, Command
from rapidp2p.cli.registry import COMMAND_MODULES, COMMANDS

PROG = "rapidp2p"


def load_commands(argv: Sequence[str] | None = None) -> list[Command]:
    """Imports the subcommand module ``argv`` names (its first word that is not an option),
    or every registered one (no argv, no command, or an unknown one: the help lists them)."""
    modules = COMMAND_MODULES
    if argv is not None:
        word = next((a for a in argv if not a.startswith("-")), None)
        if word in COMMANDS:
            modules = [COMMANDS[word]]
    return [cast(Command, importlib.import_module(name)) for name in modules]


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The top-level parser with one subparser per registered command."""
    parser = argparse.ArgumentParser(prog=PROG, description="libp2p tools built on rapidp2p.")
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in commands:
        sub = subparsers.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.configure(sub)
        sub.set_defaults(_run=command.run)
    return parser


class _Version(argparse.Action):
    """``--version``: reads the version from ``_core`` only when asked (loading the extension
    is most of a bare start-up)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from rapidp2p import __version__

        print(f"{PROG} {__version__}")
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns the exit code (0 ok, 1 expected error, 2 usage error)."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(load_commands(argv))
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    from rapidp2p.exceptions import Libp2pError

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
