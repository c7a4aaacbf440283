"""What a subcommand module provides, and the error type for expected failures.

A subcommand module is imported every time the CLI starts, so it must import heavy things
(asyncio hosts, transports) inside ``run``, not at module level.
"""

from __future__ import annotations

import argparse
from typing import Protocol


class Command(Protocol):
    """The module-level attributes of a subcommand module."""

    NAME: str
    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None:
        """Adds the subcommand's arguments."""

    def run(self, args: argparse.Namespace) -> int:
        """Runs the subcommand; returns the exit code. Raise CliError for expected failures."""


class CliError(Exception):
    """An expected failure: printed as ``rapidp2p: error: <message>``, exit code 1."""
