"""The list of subcommand modules. To add a subcommand, write ``cli/cmd_<name>.py`` with the
attributes of :class:`rapidp2p.cli.command.Command` and add one line here."""

from __future__ import annotations

COMMAND_MODULES: list[str] = [
    "rapidp2p.cli.cmd_id",
    "rapidp2p.cli.cmd_listen",
    "rapidp2p.cli.cmd_ping",
    "rapidp2p.cli.cmd_identify",
    "rapidp2p.cli.cmd_demo",
    "rapidp2p.cli.cmd_pubsub",
    "rapidp2p.cli.perf",
    "rapidp2p.cli.dht",
    "rapidp2p.cli.cmd_rendezvous",
    "rapidp2p.cli.cmd_peers",
    "rapidp2p.cli.cmd_sim",
]
