"""Discovery flags shared by ``listen`` and ``peers``: ``--mdns``, ``--bootstrap`` (with
``/dnsaddr``), ``--rendezvous``, ``--auto-dial``, and the lines printed for each peer found
and connected."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from rapidp2p.cli.command import CliError
from rapidp2p.cli.common import non_negative_int

if TYPE_CHECKING:
    from rapidp2p.cli.common import Output
    from rapidp2p.host.host import Host


def add_flags(parser: argparse.ArgumentParser, *, bootstrap: bool = True) -> None:
    group = parser.add_argument_group("discovery")
    group.add_argument(
        "--mdns", action="store_true", help="find peers on the local network with mDNS"
    )
    group.add_argument(
        "--mdns-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="mDNS query interval (default 10)",
    )
    if bootstrap:
        group.add_argument(
            "--bootstrap",
            metavar="MULTIADDR",
            action="append",
            default=[],
            help="peer to connect to at start and when few are connected (repeatable; "
            "/dnsaddr/<domain> allowed); with --dht, also the DHT's bootstrap peers",
        )
    group.add_argument(
        "--rendezvous",
        metavar="MULTIADDR",
        help="rendezvous server to register with and discover through (see --namespace)",
    )
    group.add_argument(
        "--namespace", default="rapidp2p", help="rendezvous namespace (default rapidp2p)"
    )
    group.add_argument(
        "--dns-server",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="DNS server for /dnsaddr (repeatable; default: /etc/resolv.conf)",
    )
    group.add_argument(
        "--auto-dial",
        type=non_negative_int,
        default=8,
        metavar="N",
        help="connect to discovered peers while fewer than N are connected (0: never; default 8)",
    )


def _dns_servers(texts: list[str]) -> list[tuple[str, int]] | None:
    if not texts:
        return None
    out: list[tuple[str, int]] = []
    for text in texts:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise CliError(f"--dns-server wants HOST:PORT, not {text!r}")
        out.append((host.strip("[]"), int(port)))
    return out


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.mdns or getattr(args, "bootstrap", None) or args.rendezvous)


async def start(host: Host, args: argparse.Namespace, out: Output, *, dht: bool = False) -> Any:
    """Starts the sources the flags ask for and a task printing what they find; returns an
    object whose ``close()`` stops them all."""
    from rapidp2p.discovery import AutoDialer, PeerDiscovered
    from rapidp2p.host.events import PeerConnected

    services: list[Any] = []
    found: dict[Any, str] = {}

    def on_event(ev: Any) -> None:
        if isinstance(ev, PeerDiscovered):
            new = ev.peer_id not in found
            found.setdefault(ev.peer_id, ev.source)
            if new:
                addrs = [str(a) for a in ev.addrs]
                out.emit(
                    f"discovered {ev.peer_id} via {ev.source}",
                    {
                        "event": "discovered",
                        "peer_id": str(ev.peer_id),
                        "source": ev.source,
                        "addrs": addrs,
                    },
                )
        elif isinstance(ev, PeerConnected) and ev.peer_id in found:
            out.emit(
                f"connected {ev.peer_id}",
                {"event": "connected", "peer_id": str(ev.peer_id), "source": found[ev.peer_id]},
            )

    host.events.on(PeerDiscovered, on_event)
    host.events.on(PeerConnected, on_event)
    if args.auto_dial:
        dialer = AutoDialer(args.auto_dial)
        await dialer.start(host)
        services.append(dialer)
    if args.mdns:
        from rapidp2p.discovery.mdns import MdnsService

        mdns = MdnsService(query_interval=args.mdns_interval)
        await mdns.start(host)
        services.append(mdns)
    boot = [b for b in getattr(args, "bootstrap", []) if b]
    if boot and not dht:
        from rapidp2p.discovery.bootstrap import BootstrapSource
        from rapidp2p.discovery.dnsaddr import DnsaddrResolver

        source = BootstrapSource(boot, resolver=DnsaddrResolver(_dns_servers(args.dns_server)))
        await source.start(host)
        services.append(source)
    if args.rendezvous:
        from rapidp2p.discovery.rendezvous import RendezvousClient
        from rapidp2p.peer import Multiaddr

        client = RendezvousClient()
        await client.start(host)
        server = Multiaddr(args.rendezvous)
        try:
            await client.keep_registered(server, args.namespace)
        except Exception as exc:
            out.emit(f"rendezvous register failed: {exc}", {"event": "error", "error": str(exc)})
        client.watch(server, args.namespace, interval=10.0)
        services.append(client)
    return _Group(services)


async def resolve_bootstrap(args: argparse.Namespace) -> list[str]:
    """``--bootstrap`` with ``/dnsaddr`` entries resolved (for the DHT's bootstrap list)."""
    from rapidp2p.discovery.dnsaddr import DnsaddrError, DnsaddrResolver, is_dnsaddr
    from rapidp2p.peer import Multiaddr

    resolver = DnsaddrResolver(_dns_servers(args.dns_server))
    out: list[str] = []
    for text in args.bootstrap:
        addr = Multiaddr(text)
        if not is_dnsaddr(addr):
            out.append(text)
            continue
        try:
            out += [str(a) for a in await resolver.resolve(addr)]
        except DnsaddrError as exc:
            raise CliError(f"cannot resolve {text}: {exc}") from None
    return out


class _Group:
    def __init__(self, services: list[Any]) -> None:
        self.services = services

    async def close(self) -> None:
        for service in reversed(self.services):
            await service.close()
        await asyncio.sleep(0)
