"""The list of subcommand modules. To add a subcommand, write ``cli/cmd_<name>.py`` with the
attributes of :class:`rapidp2p.cli.command.Command` and add one line here.

Keyed by the command's ``NAME``, so ``rapidp2p perf ...`` imports only ``rapidp2p.cli.perf``
(``rapidp2p --help`` and an unknown command import them all)."""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    "id": "rapidp2p.cli.cmd_id",
    "listen": "rapidp2p.cli.cmd_listen",
    "ping": "rapidp2p.cli.cmd_ping",
    "identify": "rapidp2p.cli.cmd_identify",
    "demo": "rapidp2p.cli.cmd_demo",
    "pubsub": "rapidp2p.cli.cmd_pubsub",
    "perf": "rapidp2p.cli.perf",
    "dht": "rapidp2p.cli.dht",
    "rendezvous": "rapidp2p.cli.cmd_rendezvous",
    "peers": "rapidp2p.cli.cmd_peers",
    "sim": "rapidp2p.cli.cmd_sim",
}

COMMAND_MODULES: list[str] = list(COMMANDS.values())
