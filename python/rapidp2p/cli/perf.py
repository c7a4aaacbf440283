"""``rapidp2p perf``: the libp2p perf benchmark, in the shape the test-plans runner drives.

Server: ``rapidp2p perf --run-server [--server-address HOST:PORT]`` listens with the shared
fixed identity (Ed25519 from an all-zero seed) on TCP and QUIC v1 at the same port (as the
test-plans servers do; TCP only in a private network) and serves ``/perf/1.0.0`` until killed.
Client: ``rapidp2p perf --server-address HOST:PORT --transport tcp|quic-v1 --upload-bytes N
--download-bytes N`` prints one JSON object a second (``"type": "intermediary"``) and a final
one (``"type": "final"``, time including connection setup) on stdout; logs go to stderr.

Extensions used by rapidp2p's benchmark suite (the runner never passes them):
``--iterations N`` repeats the run (a fresh connection each time unless ``--reuse-connection``)
and prints one ``final`` per iteration, then ``{"type": "summary", "iterations": N,
"elapsedSeconds": T}``; ``--streams K`` runs K perf streams at once on the connection (the
``final`` sums their bytes); ``--concurrency C`` splits the iterations over C dialers, each with
its own host; ``--connect-only`` makes an iteration establish a connection and close it;
``--security noise|tls`` offers that one security protocol (default: the host's defaults);
``--server-peer-id ID|any`` is the identity the client requires of the server (default the
shared fixed one; ``any``: whatever the server proves, as the test-plans clients dial, for
servers with a fresh identity per run such as rust-libp2p's own perf binary);
``--transport webtransport``: a server also listens on WebTransport (an ephemeral UDP port,
printed with its ``/certhash`` values), and a client dials the full ``/webtransport``
multiaddr it is given as ``--server-address`` (the hashes cannot be derived from HOST:PORT);
``--transport webrtc-direct`` likewise (an ephemeral UDP port, its DTLS ``/certhash``), and
``--transport ws`` (WebSocket, an ephemeral TCP port: the printed ``/tcp/P/ws`` address).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from typing import Any

from rapidp2p.cli import swarm_key

NAME = "perf"
HELP = "libp2p perf (/perf/1.0.0): run a server, or measure against one (test-plans CLI)"

DEFAULT_SERVER_ADDRESS = "127.0.0.1:4001"
#: The test-plans ``--transport`` values rapidp2p speaks.
TRANSPORTS = ("tcp", "quic-v1")
#: rapidp2p's extensions (the server address is then the full multiaddr the server printed):
#: each maps to the listen suffix a server adds and what a client's address must contain.
EXTENSION_TRANSPORTS = {
    "webtransport": ("udp/0/quic-v1/webtransport", "/quic-v1/webtransport/certhash/"),
    "webrtc-direct": ("udp/0/webrtc-direct", "/webrtc-direct/certhash/"),
    "ws": ("tcp/0/ws", "/ws/"),
}
#: Streams one connection may carry in the suite's concurrent-streams row, plus headroom.
MAX_STREAMS = 4096


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-server", action="store_true", help="serve /perf/1.0.0")
    parser.add_argument(
        "--server-address",
        metavar="HOST:PORT",
        help=f"server to measure, or to listen on (server default {DEFAULT_SERVER_ADDRESS})",
    )
    parser.add_argument(
        "--transport",
        default="tcp",
        help="what the client dials: tcp (default) or quic-v1; the server listens on both "
        "(webtransport, webrtc-direct, ws: see the module doc)",
    )
    parser.add_argument(
        "--upload-bytes",
        type=int,
        default=0,
        metavar="N",
        help="bytes the client sends to the server (default 0)",
    )
    parser.add_argument(
        "--download-bytes",
        type=int,
        default=0,
        metavar="N",
        help="bytes the client asks the server to send back (default 0)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="accepted for consistency: reports are always JSON lines (the test-plans "
        "format); with --run-server the listen addresses are printed as JSON too",
    )
    ext = parser.add_argument_group("extensions (rapidp2p benchmark suite)")
    ext.add_argument("--iterations", type=int, default=1, metavar="N")
    ext.add_argument("--reuse-connection", action="store_true")
    ext.add_argument("--streams", type=int, default=1, metavar="K")
    ext.add_argument("--concurrency", type=int, default=1, metavar="C")
    ext.add_argument("--connect-only", action="store_true")
    ext.add_argument(
        "--security",
        choices=["noise", "tls"],
        default=None,
        help="offer only this security protocol (default: the host's defaults)",
    )
    ext.add_argument(
        "--server-peer-id",
        default=None,
        metavar="ID|any",
        help="the server's peer ID (default: the shared fixed one); any: accept whichever "
        "identity the server proves (servers with a fresh identity, e.g. rust-libp2p's perf)",
    )
    ext.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    ext.add_argument(
        "--metrics",
        action="store_true",
        help="keep Prometheus metrics in-process (measures their cost; needs prometheus_client)",
    )
    ext.add_argument(
        "--no-resource-limits",
        action="store_true",
        help="every resource scope unlimited (the accounting still runs: measures its cost)",
    )
    swarm_key.add_flag(parser)


def run(args: argparse.Namespace) -> int:
    from rapidp2p._aio.runner import run as aio_run
    from rapidp2p.cli.command import CliError
    from rapidp2p.protocols.perf import MAX_U64, parse_server_address

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    for name in ("upload_bytes", "download_bytes"):
        if not 0 <= getattr(args, name) <= MAX_U64:
            raise CliError(
                f"--{name.replace('_', '-')} must be a whole number of bytes from 0 to {MAX_U64}"
            )
    for name in ("iterations", "streams", "concurrency"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name} must be at least 1")
    expected = getattr(args, "server_peer_id", None)
    if expected not in (None, "any"):
        from rapidp2p.peer.peer_id import PeerId

        try:
            PeerId.from_string(expected)
        except ValueError as exc:
            raise CliError(f"--server-peer-id: {exc}") from None
    if args.transport not in (*TRANSPORTS, *EXTENSION_TRANSPORTS):
        known = ", ".join((*TRANSPORTS, *EXTENSION_TRANSPORTS))
        raise CliError(f"--transport {args.transport!r} is not supported ({known})")
    address = args.server_address
    if address is None:
        if not args.run_server:
            raise CliError("--server-address is required for the client")
        address = DEFAULT_SERVER_ADDRESS
    if args.transport in EXTENSION_TRANSPORTS and not args.run_server:
        needle = EXTENSION_TRANSPORTS[args.transport][1]
        if not address.startswith("/") or needle not in address + "/":
            what = "" if args.transport == "ws" else " (with its /certhash values)"
            raise CliError(
                f"--transport {args.transport} needs the server's full /{args.transport} "
                f"multiaddr{what} as --server-address"
            )
        with contextlib.suppress(KeyboardInterrupt):
            return aio_run(client(address, args))
        return 130
    try:
        multiaddr = parse_server_address(address)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.transport == "quic-v1" and not args.run_server:
        if getattr(args, "swarm_key", None) is not None:
            raise CliError("--transport quic-v1 cannot carry a private network (--swarm-key)")
        multiaddr = quic_multiaddr(multiaddr)
    with contextlib.suppress(KeyboardInterrupt):
        if args.run_server:
            aio_run(serve(multiaddr, args))
            return 0
        return aio_run(client(multiaddr, args))
    return 130


def quic_multiaddr(tcp: str) -> str:
    """``/ip4/H/tcp/P`` to ``/ip4/H/udp/P/quic-v1``: the QUIC address at the same port."""
    return tcp.replace("/tcp/", "/udp/") + "/quic-v1"


SECURITY_IDS = {"noise": "/noise", "tls": "/tls/1.0.0"}


def _perf_resource_limits(unlimited: bool = False) -> Any:
    """The machine's autoscaled limits with streams unlimited in every scope a perf stream is
    counted in: the bench's memory row holds 10,000 idle perf streams on one node, beyond the
    default system, peer, service and protocol stream limits (connections, fds and memory
    keep their defaults). ``unlimited``: no limit in any scope (``--no-resource-limits``)."""
    from rapidp2p.protocols.perf import PROTOCOL_ID
    from rapidp2p.resources.limits import ResourceLimits, ScopeLimit, autoscale

    if unlimited:
        none = ScopeLimit()
        return ResourceLimits(none, none, none, none, none, none, none, none, none)

    many = {kind: "unlimited" for kind in ("streams_inbound", "streams_outbound", "streams")}
    scopes = ("system", "allowlisted_system", "transient", "allowlisted_transient", "peer")
    return autoscale().apply(
        {
            **{scope: many for scope in scopes},
            "service": many,
            "protocol": many,
            "services": {"libp2p.perf": many},
            "protocols": {PROTOCOL_ID: many},
        }
    )


def host_config(args: argparse.Namespace | None = None) -> Any:
    """Limits for a benchmark peer: no per-IP rate cap, thousands of streams per connection,
    no connection trimming (the memory row holds 1,000 idle connections for longer than the
    connection manager's grace period on a loaded machine);
    ``--security`` (noise or tls) restricts the security protocol to that one,
    ``--swarm-key`` puts the host in that private network, and with ``--metrics`` it keeps a
    Prometheus registry of its own (never served)."""
    from rapidp2p.host import Limits, MuxerOptions
    from rapidp2p.host.connmgr import ConnManagerConfig

    args = args or argparse.Namespace()
    security = getattr(args, "security", None)
    sink = None
    if getattr(args, "metrics", False):
        from rapidp2p.metrics import Metrics

        sink = Metrics()
    return swarm_key.config(
        args,
        security_protocols=None if security is None else [SECURITY_IDS[security]],
        limits=Limits(
            max_connections=1 << 20,
            max_pending_handshakes=4096,
            max_connections_per_ip=1 << 20,
            connection_rate_per_ip=1e9,
            connection_burst_per_ip=1 << 30,
            max_streams_per_connection=MAX_STREAMS,
            max_inbound_streams_per_protocol=1 << 20,
        ),
        muxer=MuxerOptions(max_streams=MAX_STREAMS, ack_backlog=MAX_STREAMS),
        connmgr=ConnManagerConfig(low_water=1 << 20, high_water=1 << 20),
        resource_limits=_perf_resource_limits(getattr(args, "no_resource_limits", False)),
        dial_timeout=60.0,
        upgrade_timeout=60.0,
        negotiation_timeout=60.0,
        metrics=sink,
    )


async def serve(multiaddr: str, args: argparse.Namespace | None = None) -> None:
    """Listens with the shared perf identity on TCP, and on QUIC at the same port when the
    host has QUIC (not in a private network); prints the full address(es) on stdout."""
    import asyncio

    from rapidp2p.exceptions import TransportError
    from rapidp2p.host import Host
    from rapidp2p.protocols.perf import PerfService, server_key
    from rapidp2p.transport.quic import QuicTransport

    async with await Host.create(
        server_key(), listen=[multiaddr], config=host_config(args)
    ) as host:
        if "/tcp/" in multiaddr and any(isinstance(t, QuicTransport) for t in host.transports):
            port = multiaddr.rsplit("/", 1)[-1]
            if port == "0":  # the same number as the TCP port the kernel chose
                port = str(host.listen_addrs[0]).rsplit("/", 1)[-1]
            quic = quic_multiaddr(multiaddr.rsplit("/", 1)[0] + "/" + port)
            try:
                await host.listen(quic)
            except TransportError as exc:  # UDP port taken: TCP still serves
                print(f"rapidp2p perf: not listening on {quic}: {exc}", file=sys.stderr)
        extension = EXTENSION_TRANSPORTS.get(getattr(args, "transport", None) or "tcp")
        if extension is not None:  # an ephemeral port: the client dials the printed address
            family, host_ip = multiaddr.split("/")[1:3]
            await host.listen(f"/{family}/{host_ip}/{extension[0]}")
        await host.add_service(PerfService(host))
        for addr in host.full_addrs:
            as_json = bool(getattr(args, "json", False))
            print(json.dumps({"addr": str(addr)}) if as_json else addr, flush=True)
        await asyncio.Event().wait()


def _emit(report: Any) -> None:
    sys.stdout.write(report.to_json() + "\n")
    sys.stdout.flush()


async def client(multiaddr: str, args: argparse.Namespace) -> int:
    """Runs the requested iterations; prints reports; 0 when every exchange succeeded."""
    import asyncio
    import time

    from rapidp2p.host import Host
    from rapidp2p.protocols.perf import SERVER_PEER_ID

    expected = getattr(args, "server_peer_id", None) or SERVER_PEER_ID
    known = expected == "any" or "/p2p/" in multiaddr  # a full address names its peer
    target = multiaddr if known else f"{multiaddr}/p2p/{expected}"
    clock = time.monotonic
    per_dialer = [args.iterations // args.concurrency] * args.concurrency
    for i in range(args.iterations % args.concurrency):
        per_dialer[i] += 1
    emit_intermediary = args.iterations == 1 and args.streams == 1

    async def dialer(count: int) -> None:
        async with Host(config=host_config(args)) as host:
            for _ in range(count):
                _emit(await _iteration(host, target, args, clock, emit_intermediary))
                if not args.reuse_connection:
                    for conn in host.connections():
                        await conn.close()

    start = clock()
    await asyncio.gather(*(dialer(n) for n in per_dialer if n))
    if args.iterations > 1:
        summary = {
            "type": "summary",
            "iterations": args.iterations,
            "elapsedSeconds": clock() - start,
        }
        print(json.dumps(summary), flush=True)
    return 0


async def _iteration(
    host: Any, target: str, args: argparse.Namespace, clock: Any, emit_intermediary: bool
) -> Any:
    import asyncio

    from rapidp2p.protocols.perf import PROTOCOL_ID, Progress, perf_on_stream

    start = clock()
    conn = await host.connect(target)
    progress = Progress(start)
    if args.connect_only:
        return progress.final(clock())

    async def one(prog: Progress | None) -> Progress:
        stream = await host.new_stream(conn.remote_peer, PROTOCOL_ID)
        return await perf_on_stream(
            stream,
            args.upload_bytes,
            args.download_bytes,
            progress=prog,
            emit=_emit if emit_intermediary else None,
            clock=clock,
        )

    if args.streams == 1:
        await one(progress)
    else:
        for done in await asyncio.gather(*(one(None) for _ in range(args.streams))):
            progress.upload += done.upload
            progress.download += done.download
    return progress.final(clock())
