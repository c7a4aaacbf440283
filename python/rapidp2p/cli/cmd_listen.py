"""``rapidp2p listen``: run a host that serves ping, identify and echo until interrupted.

By default it listens on all interfaces (``/ip4/0.0.0.0`` and ``/ip6/::``, TCP and QUIC v1 on
the same port number) as go-libp2p and kubo do, and prints the addresses other machines can
dial (interface addresses, never ``0.0.0.0``). Logs connections (opened/closed) and protocol
events (identify results, protocol changes) at INFO on stderr (``--log-format json`` for
machines, ``-v``/``-q`` for more or less), and with ``--metrics HOST:PORT`` serves Prometheus
metrics at ``http://HOST:PORT/metrics``. ``--limits FILE`` and ``--allowlist CIDR|MULTIADDR``
set the resource manager's limits and allowlist (see ``docs/how-to/limits.md``). ``--mdns``,
``--bootstrap`` (``/dnsaddr`` allowed) and ``--rendezvous`` find peers (a line for each one
discovered and connected). ``--relay-service`` serves as a Circuit Relay v2 relay;
``--relay MULTIADDR`` (repeatable) reserves a slot on that relay and listens on its
``/p2p-circuit`` address (printed with the others). A peer that reaches us through a relay
is then upgraded to a direct connection by DCUtR hole punching when the NATs allow it: a line
``direct connection to <peer> at <addr> (hole punch ...)`` or ``hole punch with <peer> failed``
says how it went (``--no-hole-punching`` turns it off).
AutoNAT finds out whether other machines can dial us: a line
``reachability: public|private|unknown`` and the advertised addresses are printed at each
change (learned with AutoNAT v1, or v2 with ``--autonat-v2``); ``--autonat-service`` also
answers other peers' AutoNAT v1 and v2 requests.
``--nat-portmap`` maps the listen ports on the LAN's gateway (UPnP IGD, PCP, NAT-PMP; see
``rapidp2p.nat``) and prints each mapped address (``port_mapping`` lines with ``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path
from typing import Any

from rapidp2p.cli import discovery_flags, limits_flags, logsetup, swarm_key
from rapidp2p.cli.command import CliError
from rapidp2p.cli.common import add_json, add_listen, non_negative_float

NAME = "listen"
HELP = "listen (all interfaces by default), print the addresses, serve ping, identify and echo"


def configure(parser: argparse.ArgumentParser) -> None:
    add_listen(parser)
    parser.add_argument("--key", metavar="FILE", type=Path, help="identity key file (see `id`)")
    parser.add_argument(
        "--dht",
        choices=["server", "client", "auto"],
        help="also run a Kademlia DHT node (see `dht`); auto serves once reachable",
    )
    parser.add_argument(
        "--protocol",
        default=None,
        help="DHT protocol ID (default /ipfs/kad/1.0.0; kubo's LAN DHT is /ipfs/lan/kad/1.0.0)",
    )
    parser.add_argument(
        "--permissive-namespace",
        metavar="NS",
        action="append",
        default=[],
        help="DHT namespace whose records are stored as-is (greatest value wins); default: "
        "none, only /pk/ records are accepted, as in the library",
    )
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (needs prometheus_client)",
    )
    parser.add_argument(
        "--relay-service",
        action="store_true",
        help="serve as a Circuit Relay v2 relay (/libp2p/circuit/relay/0.2.0/hop)",
    )
    parser.add_argument(
        "--relay",
        metavar="MULTIADDR",
        action="append",
        default=[],
        help="reserve on this relay (.../p2p/<relay id>) and listen on its /p2p-circuit "
        "address; repeatable",
    )
    parser.add_argument(
        "--no-hole-punching",
        action="store_true",
        help="do not upgrade relayed connections to direct ones (DCUtR hole punching)",
    )
    parser.add_argument(
        "--autonat-service",
        action="store_true",
        help="answer AutoNAT dial-back requests from other peers (v1 /libp2p/autonat/1.0.0 "
        "and v2 /libp2p/autonat/2/dial-request)",
    )
    parser.add_argument(
        "--autonat-v2",
        action="store_true",
        help="learn our reachability with AutoNAT v2 (one address per check, verified by a "
        "nonce) instead of v1",
    )
    parser.add_argument(
        "--autonat-allow-private",
        action="store_true",
        help="with --autonat-service: also dial back peers on private (non-global) IPs, "
        "for a LAN or a test network",
    )
    parser.add_argument(
        "--autonat-delay",
        metavar="SECONDS",
        type=non_negative_float,
        default=15.0,
        help="seconds before the first AutoNAT probe of our reachability (default 15)",
    )
    parser.add_argument(
        "--nat-portmap",
        action="store_true",
        help="map the listen ports on the LAN's gateway (UPnP IGD, PCP, NAT-PMP) and "
        "advertise the mapped addresses",
    )
    parser.add_argument(
        "--nat-portmap-via",
        choices=["any", "upnp", "natpmp"],
        default="any",
        help="with --nat-portmap: the gateway protocol (natpmp: PCP, else NAT-PMP; "
        "default any, UPnP preferred)",
    )
    swarm_key.add_flag(parser)
    limits_flags.add_flags(parser)
    discovery_flags.add_flags(parser)
    logsetup.add_arguments(parser)
    add_json(parser)


def _metrics_endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise CliError(f"--metrics wants HOST:PORT (like 127.0.0.1:9100), not {text!r}")
    return host, int(port)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run

    logsetup.configure_logging(args)
    resources = limits_flags.config_fields(args)  # a bad file or network fails here
    endpoint = _metrics_endpoint(args.metrics) if getattr(args, "metrics", None) else None
    metrics = None
    if endpoint is not None:
        from rapidp2p.metrics import MetricsUnavailable

        try:
            from rapidp2p.metrics import Metrics

            metrics = Metrics()
        except MetricsUnavailable as exc:
            raise CliError(str(exc)) from None
    if getattr(args, "nat_portmap", False):
        # A service manager stops us with SIGTERM: close as on Ctrl-C, so the router's
        # mappings are removed rather than left until their lease runs out.
        import signal

        def _terminate(_signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _terminate)
    with contextlib.suppress(KeyboardInterrupt):
        aio_run(_serve(args, metrics=metrics, metrics_endpoint=endpoint, resources=resources))
    return 0


async def _serve(
    args: argparse.Namespace,
    *,
    metrics: Any = None,
    metrics_endpoint: tuple[str, int] | None = None,
    resources: dict[str, Any] | None = None,
) -> None:
    import asyncio

    from rapidp2p.cli.common import Output, announce_all_interfaces, create_host
    from rapidp2p.crypto import load_identity
    from rapidp2p.protocols import echo

    key = load_identity(args.key) if args.key is not None else None
    out = Output(args.json)
    overrides: dict[str, Any] = dict(resources or {})
    overrides["enable_hole_punching"] = not getattr(args, "no_hole_punching", False)
    if getattr(args, "nat_portmap", False):
        from rapidp2p.nat import PortMapConfig

        via = getattr(args, "nat_portmap_via", "any")
        methods = ("upnp", "natpmp") if via == "any" else (via,)
        overrides["port_mapping"] = PortMapConfig(methods=methods)
    host = await create_host(
        key,
        args.listen,
        args.port,
        metrics=metrics,
        config=swarm_key.config(args, **overrides),
    )
    async with host:
        events = asyncio.ensure_future(_log_events(host))
        mapped = asyncio.ensure_future(_print_mappings(host, out))
        punches = asyncio.ensure_future(_print_hole_punches(host, out))
        reach = asyncio.ensure_future(_print_reachability(host, out))
        await _start_autonat(host, args)
        host.set_stream_handler(echo.PROTOCOL_ID, echo.handle_echo)
        server = None
        discovery = None
        if metrics is not None and metrics_endpoint is not None:
            from rapidp2p.metrics import serve_metrics

            server = await serve_metrics(metrics, *metrics_endpoint)
        try:
            if args.dht is not None:
                from rapidp2p.cli.dht import serve_dht

                boot = await discovery_flags.resolve_bootstrap(args)
                await serve_dht(host, args.dht, boot, args.protocol, args.permissive_namespace)
            await _start_relay(host, args)
            announce_all_interfaces(host, args.listen is not None)
            addrs = [str(a) for a in host.full_addrs]
            murl = None
            if server is not None:
                mhost = metrics_endpoint[0] if metrics_endpoint else "127.0.0.1"
                murl = f"http://{mhost}:{server.port}/metrics"
            running = limits_flags.describe(host)
            if out.as_json:
                record: dict[str, Any] = {"peer_id": str(host.peer_id), "addrs": addrs}
                if murl is not None:
                    record["metrics"] = murl
                out.emit("", record | running)
            else:
                out.emit(f"peer id: {host.peer_id}", {})
                for addr in addrs:
                    out.emit(f"listening on {addr}", {})
                if murl is not None:
                    out.emit(f"metrics on {murl}", {})
                out.emit(f"allowlisted: {', '.join(running['allowlist']) or 'none'}", {})
                if running["limits_file"] is not None:
                    out.emit(f"limits from {running['limits_file']}", {})
            if discovery_flags.wanted(args):
                discovery = await discovery_flags.start(host, args, out, dht=args.dht is not None)
            await asyncio.Event().wait()
        finally:
            events.cancel()
            reach.cancel()
            mapped.cancel()
            punches.cancel()
            if discovery is not None:
                await discovery.close()
            if server is not None:
                await server.close()


async def _start_relay(host: Any, args: argparse.Namespace) -> None:
    """``--relay-service`` and ``--relay``: serve as a relay, reserve on relays."""
    from rapidp2p.exceptions import Libp2pError

    if getattr(args, "relay_service", False):
        from rapidp2p.relay import RelayService

        await host.add_service(RelayService(host))
    for relay in getattr(args, "relay", []):
        addr = relay if relay.rstrip("/").endswith("/p2p-circuit") else f"{relay}/p2p-circuit"
        try:
            await host.listen(addr)
        except (Libp2pError, ValueError) as exc:
            raise CliError(f"cannot reserve on relay {relay}: {exc}") from None


async def _start_autonat(host: Any, args: argparse.Namespace) -> None:
    """The AutoNAT client (and server with ``--autonat-service``) on ``host``."""
    from rapidp2p.protocols.autonat import AutoNAT, AutoNATConfig, AutoNATv2, AutoNATv2Config

    serve = bool(getattr(args, "autonat_service", False))
    allow_private = bool(getattr(args, "autonat_allow_private", False))
    delay = float(getattr(args, "autonat_delay", 15.0))
    v2 = bool(getattr(args, "autonat_v2", False))
    cfg = AutoNATConfig(serve=serve, probe=not v2, allow_private=allow_private, boot_delay=delay)
    await host.add_service(AutoNAT(host, cfg))
    cfg2 = AutoNATv2Config(serve=serve, probe=v2, allow_private=allow_private, boot_delay=delay)
    await host.add_service(AutoNATv2(host, cfg2))


async def _print_reachability(host: Any, out: Any) -> None:
    """A line per reachability change, then every address the host now advertises; the
    advertised addresses again whenever they change (an observed address confirmed)."""
    from rapidp2p.host.events import LocalAddressesChanged, ReachabilityChanged

    with host.events.subscribe(ReachabilityChanged, LocalAddressesChanged) as sub:
        async for ev in sub:
            if isinstance(ev, LocalAddressesChanged):
                advertised = [str(a) for a in host.full_addrs]
                if out.as_json:
                    out.emit("", {"advertising": advertised})
                else:
                    for addr in advertised:
                        out.emit(f"advertising {addr}", {})
                continue
            if not isinstance(ev, ReachabilityChanged):
                continue
            addrs = [str(a) for a in host.full_addrs]
            record = {
                "reachability": str(ev.reachability),
                "previous": str(ev.previous),
                "via": ev.via,
                "dialed_at": str(ev.addr) if ev.addr is not None else None,
                "addrs": addrs,
            }
            if out.as_json:
                out.emit("", record)
                continue
            seen = f" (dialed at {ev.addr})" if ev.addr is not None else ""
            out.emit(f"reachability: {ev.reachability} via {ev.via}{seen}", record)
            for addr in addrs:
                out.emit(f"advertising {addr}", record)


async def _print_mappings(host: Any, out: Any) -> None:
    """A line per port mapping that appears or goes (``--nat-portmap``)."""
    from rapidp2p.nat import PortMapper, PortMappingChanged

    mapper = host.services.find(PortMapper)
    if mapper is None:
        return
    with host.events.subscribe(PortMappingChanged) as sub:
        pending = [
            PortMappingChanged(
                host.peer_id,
                m.protocol,
                m.internal_port,
                m.external_port,
                m.external_ip,
                mapper.addrs_of(m),
                True,
                m.via,
            )
            for m in mapper.mappings
        ]
        seen: set[tuple[str, int, int, bool]] = set()
        while True:
            ev = pending.pop(0) if pending else await sub.get()
            if not isinstance(ev, PortMappingChanged):
                continue
            tag = (ev.protocol, ev.internal_port, ev.external_port, ev.mapped)
            if tag in seen:
                continue
            seen.add(tag)
            seen.discard((ev.protocol, ev.internal_port, ev.external_port, not ev.mapped))
            addrs = [f"{a}/p2p/{host.peer_id}" for a in ev.addrs]
            record = {
                "port_mapping": "mapped" if ev.mapped else "unmapped",
                "protocol": ev.protocol,
                "internal_port": ev.internal_port,
                "external_ip": ev.external_ip,
                "external_port": ev.external_port,
                "via": ev.via,
                "addrs": addrs,
            }
            if out.as_json:
                out.emit("", record)
                continue
            verb = "mapped" if ev.mapped else "unmapped"
            out.emit(
                f"{verb} {ev.protocol} port {ev.internal_port} -> "
                f"{ev.external_ip}:{ev.external_port} via {ev.via}",
                record,
            )
            for addr in addrs:
                out.emit(f"{'advertising' if ev.mapped else 'no longer advertising'} {addr}", {})


async def _print_hole_punches(host: Any, out: Any) -> None:
    """A line per DCUtR outcome: the direct connection a relayed peer was upgraded to, or
    the failure (the relayed connection stays)."""
    from rapidp2p.host.events import HolePunchFailed, HolePunchSucceeded

    with host.events.subscribe(HolePunchSucceeded, HolePunchFailed) as sub:
        async for ev in sub:
            if isinstance(ev, HolePunchSucceeded):
                record: dict[str, Any] = {
                    "hole_punch": "succeeded",
                    "peer": str(ev.peer_id),
                    "addr": str(ev.addr),
                    "attempt": ev.attempt,
                    "seconds": round(ev.elapsed, 4),
                    "initiator": ev.initiator,
                }
                text = (
                    f"direct connection to {ev.peer_id} at {ev.addr} (hole punch, attempt "
                    f"{ev.attempt}, {ev.elapsed:.3f} s)"
                )
            elif isinstance(ev, HolePunchFailed):
                record = {
                    "hole_punch": "failed",
                    "peer": str(ev.peer_id),
                    "attempts": ev.attempts,
                    "error": str(ev.error),
                    "initiator": ev.initiator,
                }
                text = (
                    f"hole punch with {ev.peer_id} failed after {ev.attempts} attempt(s): "
                    f"{ev.error}; staying on the relayed connection"
                )
            else:
                continue
            out.emit(text, record)


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
