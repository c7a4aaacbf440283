"""Runs rust-libp2p's official ``perf`` binary (crate ``libp2p-perf`` 0.3.0) behind the suite's
perf flags: ``python rust_perf_adapter.py PERF_COMMAND... -- [suite perf flags]``.

The binary knows only the test-plans flags, and panics on anything else, so this adapter:

* passes ``--run-server --server-address`` through (the server listens on TCP, TLS + yamux
  only, and QUIC v1 at the same port) and ``exec``\\ s it, so the server's CPU and RSS are the
  binary's own;
* fills a missing ``--upload-bytes`` / ``--download-bytes`` with 0 (the binary unwraps both);
* drops ``--security tls`` (TLS is all its TCP offers) and refuses ``--security noise`` with
  exit 3 (the suite's "unsupported"): it cannot speak Noise;
* refuses the suite's extensions (``--iterations`` > 1, ``--reuse-connection``, ``--streams``
  > 1, ``--concurrency`` > 1, ``--connect-only``) with exit 3 and the reason; the connect row
  then runs one client process per run, as it does for any test-plans-only peer;
* re-emits the client's ``final`` line in the suite's shape (``type``, ``timeSeconds``,
  ``uploadBytes``, ``downloadBytes``), checked, and turns a panic into exit 1 with its line.

Why a wrapper rather than flags in the binary: the point of the column is a peer no one here
wrote, built from the registry as published.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

EXIT_UNSUPPORTED = 3


class Unsupported(Exception):
    """The binary cannot do what the flags ask; ``str()`` is the reason (exit 3)."""


@dataclass(frozen=True)
class Plan:
    """What to run: the binary's own argv (after the command), and whether it is the server."""

    argv: list[str]
    server: bool


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--run-server", action="store_true")
    p.add_argument("--server-address")
    p.add_argument("--transport", default="tcp")
    p.add_argument("--upload-bytes", type=int, default=0)
    p.add_argument("--download-bytes", type=int, default=0)
    p.add_argument("--security", choices=["noise", "tls"])
    p.add_argument("--iterations", type=int, default=1)
    p.add_argument("--reuse-connection", action="store_true")
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--connect-only", action="store_true")
    return p


def plan(flags: Sequence[str]) -> Plan:
    """Translates the suite's perf flags into the binary's; raises :class:`Unsupported`."""
    args, rest = _parser().parse_known_args(list(flags))
    if rest:
        raise Unsupported(f"libp2p-perf 0.3.0 has no {' '.join(rest)}")
    if args.server_address is None:
        raise Unsupported("--server-address is required")
    if args.security == "noise":
        raise Unsupported("libp2p-perf 0.3.0 offers only TLS + yamux over TCP (no Noise)")
    if args.run_server:
        return Plan(["--run-server", "--server-address", args.server_address], server=True)
    missing = [
        flag
        for flag, bad in (
            ("--iterations", args.iterations != 1),
            ("--reuse-connection", args.reuse_connection),
            ("--streams", args.streams != 1),
            ("--concurrency", args.concurrency != 1),
            ("--connect-only", args.connect_only),
        )
        if bad
    ]
    if missing:
        raise Unsupported(
            f"libp2p-perf 0.3.0 has only the test-plans flags (no {', '.join(missing)})"
        )
    if args.transport not in ("tcp", "quic-v1"):
        raise Unsupported(f"libp2p-perf 0.3.0 has no transport {args.transport!r}")
    for name in ("upload_bytes", "download_bytes"):
        if getattr(args, name) < 0:
            raise Unsupported(f"--{name.replace('_', '-')} must not be negative")
    return Plan(
        [
            "--server-address",
            args.server_address,
            "--transport",
            args.transport,
            "--upload-bytes",
            str(args.upload_bytes),
            "--download-bytes",
            str(args.download_bytes),
        ],
        server=False,
    )


def final_report(stdout: str, upload: int, download: int) -> dict[str, Any]:
    """The binary's ``final`` line in the suite's shape, checked against what was asked.

    Its JSON lines are ``{"type": "intermediate"|"final", "timeSeconds": f, "uploadBytes": n,
    "downloadBytes": n}`` (the final's time includes connection setup, as the suite's clients'
    do). Raises ValueError when there is no well-formed final line or it reports other sizes.
    """
    final: dict[str, Any] | None = None
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        obj = json.loads(line)
        if isinstance(obj, dict) and obj.get("type") == "final":
            final = obj
    if final is None:
        raise ValueError("libp2p-perf printed no final line")
    seconds = final.get("timeSeconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
        raise ValueError(f"final line without a positive timeSeconds: {final}")
    got = (final.get("uploadBytes"), final.get("downloadBytes"))
    if got != (upload, download):
        raise ValueError(f"final line reports {got}, asked for {(upload, download)}")
    return {
        "type": "final",
        "timeSeconds": float(seconds),
        "uploadBytes": upload,
        "downloadBytes": download,
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: rust_perf_adapter.py PERF_COMMAND... -- [perf flags]", file=sys.stderr)
        return 2
    split = argv.index("--")
    command, flags = argv[:split], argv[split + 1 :]
    try:
        p = plan(flags)
    except Unsupported as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_UNSUPPORTED
    if p.server:
        os.execvp(command[0], [*command, *p.argv])
    proc = subprocess.run([*command, *p.argv], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        # A panic's last line is rust's "note: run with RUST_BACKTRACE=1 ...": skip it.
        lines = [
            ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("note:")
        ] or ["no stderr"]
        print(f"libp2p-perf exited {proc.returncode}: {lines[-1]}", file=sys.stderr)
        return 1
    upload, download = int(p.argv[5]), int(p.argv[7])
    try:
        report = final_report(proc.stdout, upload, download)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
