"""``--limits FILE`` and ``--allowlist CIDR|MULTIADDR``: the resource-manager flags of ``listen``.

Both are checked when the command starts (a bad file or network fails with a clear error
before anything listens). ``--allowlist`` adds to the default (loopback), as go-libp2p's
allowlist does; ``--allowlist none`` drops the default, so only the other entries remain.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rapidp2p.cli.command import CliError

__all__ = ["add_flags", "config_fields", "describe"]


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limits",
        metavar="FILE",
        type=Path,
        default=None,
        help="resource limits file (JSON, or TOML on Python 3.11+) over the machine's defaults",
    )
    parser.add_argument(
        "--allowlist",
        metavar="CIDR|MULTIADDR",
        action="append",
        default=[],
        help="network exempt from per-IP limits, with its own totals (repeatable; added to "
        "loopback; 'none' drops loopback)",
    )


def config_fields(args: argparse.Namespace) -> dict[str, Any]:
    """``HostConfig`` keyword arguments for the flags given (none for flags left out)."""
    from rapidp2p.resources import DEFAULT_ALLOWLIST, load_limits, parse_network

    out: dict[str, Any] = {}
    path: Path | None = getattr(args, "limits", None)
    if path is not None:
        try:
            load_limits(path)  # read now: a bad file fails before the host starts
        except (OSError, ValueError) as exc:  # JSONDecodeError and TOML errors are ValueErrors
            raise CliError(f"--limits {path}: {exc}") from None
        out["limits_file"] = str(path)
    entries: list[str] = getattr(args, "allowlist", None) or []
    if entries:
        keep_default = True
        nets: list[str] = []
        for entry in entries:
            if entry.strip().lower() == "none":
                keep_default = False
                continue
            try:
                parse_network(entry)
            except ValueError as exc:
                raise CliError(f"--allowlist {entry!r}: {exc}") from None
            nets.append(entry)
        out["allowlist"] = [*(DEFAULT_ALLOWLIST if keep_default else ()), *nets]
    return out


def describe(host: Any) -> dict[str, Any]:
    """What the listener runs with: its allowlisted networks and the system scope's limits."""
    from rapidp2p.resources import UNLIMITED

    system = host.resource_manager.limits.system
    limits = {
        "conns_inbound": system.conns_inbound,
        "conns": system.conns,
        "streams": system.streams,
        "fd": system.fd,
        "memory": system.memory,
    }
    return {
        "allowlist": [str(n) for n in host.limiter.allowlist.networks],
        "limits_file": host.config.limits_file,
        "system_limits": {k: (None if v >= UNLIMITED else v) for k, v in limits.items()},
    }
