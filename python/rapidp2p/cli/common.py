"""What every subcommand shares: ``--json`` output, ``-v`` logging, argument types, and the
default listen addresses (all interfaces, as go-libp2p and kubo listen).

Data goes to stdout (one JSON object a line with ``--json``, sentences otherwise);
diagnostics (our own addresses for a subscriber, progress, logs) go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rapidp2p.crypto import PrivateKey
    from rapidp2p.host import Host

__all__ = [
    "ALL_INTERFACES",
    "QUIC_INTERFACES",
    "Output",
    "add_json",
    "add_listen",
    "add_verbose",
    "create_host",
    "non_negative_float",
    "non_negative_int",
    "note",
    "positive_float",
    "positive_int",
    "setup_logging",
]

#: The default listen addresses of ``listen``, ``pubsub sub`` and ``dht provide``.
ALL_INTERFACES = ("/ip4/0.0.0.0/tcp/{port}", "/ip6/::/tcp/{port}")
#: QUIC v1 beside TCP on the same port number (as go-libp2p, kubo and the test-plans servers).
QUIC_INTERFACES = ("/ip4/0.0.0.0/udp/{port}/quic-v1", "/ip6/::/udp/{port}/quic-v1")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object a line instead of text"
    )


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log to stderr (-v: connections and notable events, -vv: debug)",
    )


def add_listen(parser: argparse.ArgumentParser, *, default: str = "all interfaces") -> None:
    parser.add_argument(
        "--listen",
        metavar="MULTIADDR",
        action="append",
        help=f"address to listen on (repeatable; default: {default}, i.e. "
        "/ip4/0.0.0.0/tcp/PORT, /ip6/::/tcp/PORT and the same on /udp/PORT/quic-v1; "
        "/ip4/127.0.0.1/tcp/0 for this machine only)",
    )
    parser.add_argument(
        "--port",
        type=non_negative_int,
        default=0,
        help="TCP and UDP (QUIC) port of the default listen addresses (default 0: any free port)",
    )


def setup_logging(verbosity: int) -> None:
    """``-v``: rapidp2p's INFO logs on stderr; ``-vv``: DEBUG; none: warnings only."""
    level = logging.DEBUG if verbosity >= 2 else logging.INFO if verbosity else logging.WARNING
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s"
    )
    logging.getLogger("rapidp2p").setLevel(level)


def note(text: str) -> None:
    """A diagnostic line on stderr."""
    print(text, file=sys.stderr, flush=True)


class Output:
    """Data lines on stdout: ``text`` normally, ``record`` as one JSON object with --json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, text: str, record: dict[str, Any]) -> None:
        line = json.dumps(record) if self.as_json else text
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _number(
    convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str
) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    parse.__name__ = what  # argparse names the type in its own messages
    return parse


positive_int = _number(int, lambda v: v >= 1, "a whole number of at least 1")
non_negative_int = _number(int, lambda v: v >= 0, "a whole number of at least 0")
positive_float = _number(float, lambda v: v > 0 and v != float("inf"), "a positive number")
non_negative_float = _number(
    float, lambda v: v >= 0 and v != float("inf"), "a number of at least 0"
)


async def create_host(
    key: PrivateKey | None, listen: list[str] | None, port: int = 0, **kwargs: Any
) -> Host:
    """A started host on ``listen``, or on all interfaces (IPv4 and IPv6, ``port``) when
    ``listen`` is None; a machine without IPv6 just skips ``::``."""
    from rapidp2p.exceptions import TransportError
    from rapidp2p.host import Host
    from rapidp2p.transport.quic import QuicTransport

    if listen is not None:
        return await Host.create(key, listen=listen, **kwargs)
    v4, v6 = (a.format(port=port) for a in ALL_INTERFACES)
    host = await Host.create(key, listen=[v4], **kwargs)
    try:
        await host.listen(v6)
    except TransportError as exc:
        note(f"not listening on IPv6: {exc}")
    if any(isinstance(t, QuicTransport) for t in host.transports):
        for quic in QUIC_INTERFACES:
            try:
                await host.listen(quic.format(port=port))
            except TransportError as exc:
                note(f"not listening on {quic.format(port=port)}: {exc}")
    return host


def announce_all_interfaces(host: Host, explicit: bool) -> None:
    """Says on stderr that the host listens on every interface (when it does by default)."""
    if explicit:
        return
    ports = sorted({str(a).rsplit("/", 1)[-1] for a in host.listen_addrs if "/tcp/" in str(a)})
    udp = sorted(
        {str(a).split("/udp/")[1].split("/")[0] for a in host.listen_addrs if "/udp/" in str(a)}
    )
    quic = f", QUIC port {', '.join(udp)}" if udp else ""
    note(
        f"listening on all interfaces (TCP port {', '.join(ports)}{quic}, IPv4 and IPv6); "
        "pass --listen /ip4/127.0.0.1/tcp/0 to stay on this machine"
    )
