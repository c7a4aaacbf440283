"""``rapidp2p listen``: run a host that serves ping, identify and echo until interrupted.

Logs connections (opened/closed) and protocol events (identify results, protocol changes) at
INFO on stderr (``--log-format json`` for machines, ``-v``/``-q`` for more or less), and with
``--metrics HOST:PORT`` serves Prometheus metrics at ``http://HOST:PORT/metrics``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path
from typing import Any

from rapidp2p.cli import logsetup
from rapidp2p.cli.command import CliError

NAME = "listen"
HELP = "listen on multiaddrs, print them (with /p2p/), serve ping, identify and /echo/1.0.0"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        metavar="MULTIADDR",
        action="append",
        help="address to listen on (repeatable; default /ip4/127.0.0.1/tcp/0)",
    )
    parser.add_argument("--key", metavar="FILE", type=Path, help="identity key file (see `id`)")
    parser.add_argument(
        "--dht",
        choices=["server", "client", "auto"],
        help="also run a Kademlia DHT node (see `dht`); auto serves once reachable",
    )
    parser.add_argument(
        "--bootstrap", metavar="MULTIADDR", action="append", default=[], help="DHT peer to join"
    )
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (needs prometheus_client)",
    )
    logsetup.add_arguments(parser)


def _metrics_endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise CliError(f"--metrics wants HOST:PORT (like 127.0.0.1:9100), not {text!r}")
    return host, int(port)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run

    logsetup.configure_logging(args)
    endpoint = _metrics_endpoint(args.metrics) if getattr(args, "metrics", None) else None
    metrics = None
    if endpoint is not None:
        from rapidp2p.metrics import MetricsUnavailable

        try:
            from rapidp2p.metrics import Metrics

            metrics = Metrics()
        except MetricsUnavailable as exc:
            raise CliError(str(exc)) from None
    with contextlib.suppress(KeyboardInterrupt):
        aio_run(
            _serve(
                args.listen or ["/ip4/127.0.0.1/tcp/0"],
                args.key,
                getattr(args, "dht", None),
                getattr(args, "bootstrap", []),
                metrics=metrics,
                metrics_endpoint=endpoint,
            )
        )
    return 0


async def _serve(
    listen: list[str],
    key_file: Path | None,
    dht_mode: str | None = None,
    bootstrap: list[str] | None = None,
    *,
    metrics: Any = None,
    metrics_endpoint: tuple[str, int] | None = None,
) -> None:
    import asyncio

    from rapidp2p.crypto import load_identity
    from rapidp2p.host import Host

    key = load_identity(key_file) if key_file is not None else None
    async with await Host.create(key, listen=listen, metrics=metrics) as host:
        from rapidp2p.protocols import echo

        events = asyncio.ensure_future(_log_events(host))
        host.set_stream_handler(echo.PROTOCOL_ID, echo.handle_echo)
        server = None
        if metrics is not None and metrics_endpoint is not None:
            from rapidp2p.metrics import serve_metrics

            server = await serve_metrics(metrics, *metrics_endpoint)
        try:
            if dht_mode is not None:
                from rapidp2p.cli.dht import serve_dht

                await serve_dht(host, dht_mode, bootstrap or [])
            print(f"peer id: {host.peer_id}", flush=True)
            for addr in host.full_addrs:
                print(f"listening on {addr}", flush=True)
            if server is not None:
                mhost = metrics_endpoint[0] if metrics_endpoint else "127.0.0.1"
                print(f"metrics on http://{mhost}:{server.port}/metrics", flush=True)
            await asyncio.Event().wait()
        finally:
            events.cancel()
            if server is not None:
                await server.close()


async def _log_events(host: Any) -> None:
    """Protocol events at INFO on ``rapidp2p.events`` (connections log themselves)."""
    from rapidp2p.host import connlog
    from rapidp2p.host.events import PeerIdentified, ProtocolsChanged

    log = logging.getLogger("rapidp2p.events")
    with host.events.subscribe(PeerIdentified, ProtocolsChanged) as sub:
        async for ev in sub:
            if not log.isEnabledFor(logging.INFO):
                continue
            if isinstance(ev, PeerIdentified):
                fields: dict[str, Any] = {
                    "peer": str(ev.peer_id),
                    "agent": ev.agent_version or "",
                    "protocols": len(ev.protocols),
                    "listen_addrs": len(ev.listen_addrs),
                    "observed_addr": str(ev.observed_addr or ""),
                }
                event = "peer_identified"
            elif isinstance(ev, ProtocolsChanged):
                fields = {
                    "peer": str(ev.peer_id),
                    "added": ",".join(ev.added),
                    "removed": ",".join(ev.removed),
                }
                event = "protocols_changed"
            else:
                continue
            log.info(
                "%s %s",
                event.replace("_", " "),
                connlog.fields_text(fields),
                extra={"event": event, "fields": fields},
            )
