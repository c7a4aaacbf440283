"""The ``rapidp2p`` console script: ``rapidp2p id``, and subcommands other modules register
in :mod:`rapidp2p.cli.registry`."""

from __future__ import annotations

from rapidp2p.cli.command import CliError, Command
from rapidp2p.cli.main import build_parser, main

__all__ = ["CliError", "Command", "build_parser", "main"]
