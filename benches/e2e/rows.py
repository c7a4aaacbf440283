"""The suite's rows: each measures one figure for one stack through its command line.

A row function returns a dict of figures (``value`` first) or raises :class:`Unavailable`
with the reason; it never invents a number.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from benches.e2e.stacks import (
    CpuMeter,
    Stack,
    Unavailable,
    finals,
    run_client,
    server,
    summary,
)

GIB = 1 << 30
MIB = 1 << 20


@dataclass
class Config:
    bulk_bytes: int = GIB
    #: py-libp2p moves ~10 MB/s: it gets a smaller transfer (the table says so).
    py_bulk_bytes: int = 64 * MIB
    latency_runs: int = 100
    rr_iterations: int = 2000
    py_rr_iterations: int = 200
    handshakes: int = 1000
    py_handshakes: int = 100
    dialers: int = 8
    streams: int = 1000
    stream_bytes: int = MIB
    idle_connections: int = 1000
    idle_streams: int = 10_000
    #: GossipSub mesh rows (benches/pubsub_mesh.py, setup "multi"): nodes per mesh.
    mesh_nodes: int = 20
    #: Kademlia rows (benches/kad_mixed.py): nodes per implementation in the mixed network,
    #: lookups per implementation, lookups in flight.
    kad_nodes: int = 17
    kad_lookups: int = 300
    kad_concurrency: int = 8
    #: Fewer rates and messages in the mesh ladder (``--quick``).
    quick: bool = False


@dataclass
class Row:
    id: str
    label: str
    unit: str
    higher_is_better: bool
    measure: Callable[[Stack, Config], dict[str, Any]]
    #: Stacks the row applies to (None: every perf stack; baselines listed explicitly).
    stacks: tuple[str, ...] | None = None
    chart: str | None = None  # "throughput" | "latency" | None


def _bulk(stack: Stack, cfg: Config) -> int:
    return cfg.py_bulk_bytes if stack.name == "py-libp2p" else cfg.bulk_bytes


def cpu_per_gib(meter: CpuMeter, nbytes: int) -> dict[str, float]:
    """CPU seconds per GiB moved, client and server: the fairest figure on a shared 2-core
    machine (wall clock there measures the neighbours as much as the stack)."""
    gib = nbytes / GIB
    return {"cpu_client_s_per_gib": meter.client / gib, "cpu_server_s_per_gib": meter.server / gib}


def _iperf3(address: str, nbytes: int, reverse: bool) -> float:
    host, port = address.rsplit(":", 1)
    argv = ["iperf3", "-c", host, "-p", port, "-n", str(nbytes), "-J"]
    if reverse:
        argv.append("-R")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    data = json.loads(proc.stdout)
    if "error" in data:
        raise RuntimeError(f"iperf3: {data['error']}")
    end = data["end"]
    seconds = float(end["sum_received"]["seconds"])
    return float(end["sum_received"]["bytes"]) * 8 / seconds / 1e9


def throughput(direction: str) -> Callable[[Stack, Config], dict[str, Any]]:
    def measure(stack: Stack, cfg: Config) -> dict[str, Any]:
        nbytes = _bulk(stack, cfg)
        with server(stack) as srv:
            if stack.name == "iperf3":
                with CpuMeter(srv) as meter:
                    gbps = _iperf3(srv.address, nbytes, direction == "download")
                return {"value": gbps, "bytes": nbytes, **cpu_per_gib(meter, nbytes)}
            flag = "--upload-bytes" if direction == "upload" else "--download-bytes"
            with CpuMeter(srv) as meter:
                (final,) = finals(run_client(stack, srv.address, flag, str(nbytes)))[-1:]
        got = final["uploadBytes"] if direction == "upload" else final["downloadBytes"]
        if got != nbytes:
            raise RuntimeError(f"moved {got} of {nbytes} bytes")
        return {
            "value": nbytes * 8 / final["timeSeconds"] / 1e9,
            "bytes": nbytes,
            "seconds": final["timeSeconds"],
            **cpu_per_gib(meter, nbytes),
        }

    return measure


def over_tls(measure: Callable[[Stack, Config], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """The same measurement with server and client offering only TLS 1.3 (``--security tls``,
    which rapidp2p's perf and the go/rust interop peers accept; rust-libp2p's perf binary
    offers nothing else on TCP, its adapter drops the flag)."""

    def wrapped(stack: Stack, cfg: Config) -> dict[str, Any]:
        tls = ["--security", "tls"]
        serve = None if stack.server_argv is None else [*stack.server_argv, *tls]
        return measure(replace(stack, argv=[*stack.argv, *tls], server_argv=serve), cfg)

    return wrapped


def over_quic(measure: Callable[[Stack, Config], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """The same measurement with the client dialling QUIC v1 (``--transport quic-v1``; every
    server listens on TCP and QUIC at the same port). A client that refuses the flag exits 3,
    and its cell says why."""

    def wrapped(stack: Stack, cfg: Config) -> dict[str, Any]:
        return measure(replace(stack, transport="quic-v1"), cfg)

    return wrapped


def over_transport(
    transport: str, measure: Callable[[Stack, Config], dict[str, Any]]
) -> Callable[..., dict[str, Any]]:
    """The same measurement with the client dialling one of rapidp2p's extension transports
    (``--transport webtransport|webrtc-direct|ws``: the server also listens there, at an
    ephemeral port, and the client dials the address it printed, with any /certhash)."""

    def wrapped(stack: Stack, cfg: Config) -> dict[str, Any]:
        return measure(replace(stack, transport=transport), cfg)

    return wrapped


def over_webtransport(
    measure: Callable[[Stack, Config], dict[str, Any]],
) -> Callable[..., dict[str, Any]]:
    """The same measurement with the client dialling WebTransport (``--transport
    webtransport``, rapidp2p's extension: the server also listens on WebTransport and the
    client dials the address it printed, with its /certhash values)."""
    return over_transport("webtransport", measure)


#: The rows measured over rapidp2p's other extension transports: (row suffix, --transport,
#: label, stacks). WebSocket's figures are also given as a ratio to the TCP row of the same
#: run; go-peer's perf also speaks /ws (tests/interop/go-peer/perf.go), so go-libp2p runs them.
EXTENSION_ROWS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("ws", "ws", "WebSocket /ws", ("rapidp2p", "go-libp2p")),
    ("webrtc_direct", "webrtc-direct", "WebRTC-direct", ("rapidp2p",)),
)


def metrics_overhead(stack: Stack, cfg: Config) -> dict[str, Any]:
    """Single-stream upload with Prometheus metrics off and on (both peers), alternated on
    fresh servers in this one run (off-on, then on-off, ...). The value is the median on/off
    ratio of the transfer's CPU time per byte (user + system of both processes, minus the same
    variant's 1-byte run: start-up, imports and handshake are not the data path; 1.0: no
    cost). CPU time is what a busy shared machine disturbs least; the throughput ratio is kept
    too. Needs prometheus_client (``rapidp2p[metrics]``)."""
    _need_prometheus()
    return _upload_overhead(stack, cfg, off=[], on=["--metrics"])


def rcmgr_overhead(stack: Stack, cfg: Config) -> dict[str, Any]:
    """Single-stream upload with the resource manager at its defaults ("on") and effectively
    off (``--no-resource-limits``: every scope unlimited, the accounting still runs), measured
    as :func:`metrics_overhead` does: the median on/off ratio of CPU per byte."""
    return _upload_overhead(stack, cfg, off=["--no-resource-limits"], on=[])


def _need_prometheus() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise Unavailable("prometheus_client not installed (rapidp2p[metrics])") from None


def _upload_overhead(stack: Stack, cfg: Config, off: list[str], on: list[str]) -> dict[str, Any]:
    """Upload with the ``off`` and ``on`` flags, alternated (see :func:`metrics_overhead`)."""
    import resource

    rounds = 4
    upload = throughput("upload")
    tiny = replace(cfg, bulk_bytes=1)
    variants = {
        "off": replace(stack, argv=[*stack.argv, *off]),
        "on": replace(stack, argv=[*stack.argv, *on]),
    }
    gbps: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}

    def cpu_of(variant: Stack, c: Config) -> tuple[float, dict[str, Any]]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures = upload(variant, c)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), figures

    for i in range(rounds):
        for which in ("off", "on") if i % 2 == 0 else ("on", "off"):
            fixed, _ = cpu_of(variants[which], tiny)
            used, figures = cpu_of(variants[which], cfg)
            gbps[which].append(figures["value"])
            cpu[which].append(max(used - fixed, 1e-9) / (figures["bytes"] / GIB))
    cpu_ratios = [b / a for a, b in zip(cpu["off"], cpu["on"], strict=True)]
    tput_ratios = [b / a for a, b in zip(gbps["off"], gbps["on"], strict=True)]
    return {
        "value": statistics.median(cpu_ratios),
        "cpu_ratios": [round(x, 3) for x in cpu_ratios],
        "throughput_ratio": statistics.median(tput_ratios),
        "cpu_s_per_gib_off": statistics.median(cpu["off"]),
        "cpu_s_per_gib_on": statistics.median(cpu["on"]),
        "off_gbps": [round(x, 3) for x in gbps["off"]],
        "on_gbps": [round(x, 3) for x in gbps["on"]],
        "bytes": _bulk(stack, cfg),
    }


def metrics_overhead_handshakes(stack: Stack, cfg: Config) -> dict[str, Any]:
    """Handshakes (8 dialers) with metrics off and on: the median on/off ratio of the
    server's CPU per connection (the accept path; the client's includes its start-up)."""
    _need_prometheus()
    return _handshake_overhead(stack, cfg, off=[], on=["--metrics"])


def rcmgr_overhead_handshakes(stack: Stack, cfg: Config) -> dict[str, Any]:
    """Handshakes with the resource manager at its defaults / effectively off: the median
    on/off ratio of the server's CPU per connection."""
    return _handshake_overhead(stack, cfg, off=["--no-resource-limits"], on=[])


def _handshake_overhead(stack: Stack, cfg: Config, off: list[str], on: list[str]) -> dict[str, Any]:
    rounds = 4
    variants = {
        "off": replace(stack, argv=[*stack.argv, *off]),
        "on": replace(stack, argv=[*stack.argv, *on]),
    }
    server_ms: dict[str, list[float]] = {"off": [], "on": []}
    client_ms: dict[str, list[float]] = {"off": [], "on": []}
    rate: dict[str, list[float]] = {"off": [], "on": []}
    for i in range(rounds):
        for which in ("off", "on") if i % 2 == 0 else ("on", "off"):
            figures = handshakes(variants[which], cfg)
            server_ms[which].append(figures["cpu_server_ms_per_conn"])
            client_ms[which].append(figures["cpu_client_ms_per_conn"])
            rate[which].append(figures["value"])
    ratios = [b / a for a, b in zip(server_ms["off"], server_ms["on"], strict=True)]
    return {
        "value": statistics.median(ratios),
        "cpu_ratios": [round(x, 3) for x in ratios],
        "cpu_server_ms_per_conn_off": statistics.median(server_ms["off"]),
        "cpu_server_ms_per_conn_on": statistics.median(server_ms["on"]),
        "cpu_client_ms_per_conn_off": statistics.median(client_ms["off"]),
        "cpu_client_ms_per_conn_on": statistics.median(client_ms["on"]),
        "handshakes_per_s_off": [round(x, 1) for x in rate["off"]],
        "handshakes_per_s_on": [round(x, 1) for x in rate["on"]],
    }


def connect_rtt(stack: Stack, cfg: Config) -> dict[str, Any]:
    """A fresh connection + a 1-byte perf exchange, per run; median and p95 (ms).

    With the ``--iterations`` extension (one client process) the CPU per connection is kept
    too, as a marginal figure: (CPU of the N-run process - CPU of a 1-run process) / (N - 1),
    client and server, so the client's process start-up (~0.1-0.3 s of Python imports) is
    not spread over the runs. A peer run once per iteration gets none."""
    n = cfg.latency_runs if stack.name != "py-libp2p" else min(cfg.latency_runs, 30)
    cpu: dict[str, float] = {}
    one_run = ("--upload-bytes", "1", "--download-bytes", "1")
    with server(stack) as srv:
        try:
            with CpuMeter(srv) as single:
                run_client(stack, srv.address, *one_run)
            with CpuMeter(srv) as meter:
                objs = run_client(
                    stack,
                    srv.address,
                    "--upload-bytes",
                    "1",
                    "--download-bytes",
                    "1",
                    "--iterations",
                    str(n),
                )
            times = [f["timeSeconds"] for f in finals(objs)]
            cpu = {
                "cpu_client_ms_per_conn": (meter.client - single.client) / (n - 1) * 1e3,
                "cpu_server_ms_per_conn": (meter.server - single.server) / (n - 1) * 1e3,
            }
        except (Unavailable, RuntimeError):
            # A peer with only the test-plans flags: one process per run (time is internal).
            times = []
            for _ in range(n):
                (f,) = finals(run_client(stack, srv.address, *one_run))[-1:]
                times.append(f["timeSeconds"])
    if len(times) != n:
        raise RuntimeError(f"{len(times)} of {n} runs reported")
    times.sort()
    return {
        "value": statistics.median(times) * 1e3,
        "p95": times[int(0.95 * (n - 1))] * 1e3,
        "runs": n,
        **cpu,
    }


def request_response(size: int) -> Callable[[Stack, Config], dict[str, Any]]:
    def measure(stack: Stack, cfg: Config) -> dict[str, Any]:
        n = cfg.py_rr_iterations if stack.name == "py-libp2p" else cfg.rr_iterations
        with server(stack) as srv, CpuMeter(srv) as meter:
            objs = run_client(
                stack,
                srv.address,
                "--upload-bytes",
                str(size),
                "--download-bytes",
                str(size),
                "--iterations",
                str(n),
                "--reuse-connection",
            )
        times = [f["timeSeconds"] for f in finals(objs)][1:]  # the first one includes connect
        if len(times) != n - 1:
            raise RuntimeError(f"{len(times) + 1} of {n} exchanges reported")
        return {
            "value": len(times) / sum(times),
            "iterations": n,
            "median_us": statistics.median(times) * 1e6,
            # Whole-process CPU (start-up and connect included) per exchange.
            "cpu_client_us_per_req": meter.client / n * 1e6,
            "cpu_server_us_per_req": meter.server / n * 1e6,
        }

    return measure


def handshakes(stack: Stack, cfg: Config) -> dict[str, Any]:
    n = cfg.py_handshakes if stack.name == "py-libp2p" else cfg.handshakes
    with server(stack) as srv, CpuMeter(srv) as meter:
        objs = run_client(
            stack,
            srv.address,
            "--connect-only",
            "--iterations",
            str(n),
            "--concurrency",
            str(cfg.dialers),
        )
    s = summary(objs)
    if len(finals(objs)) != n:
        raise RuntimeError(f"{len(finals(objs))} of {n} connections reported")
    return {
        "value": n / s["elapsedSeconds"],
        "connections": n,
        "dialers": cfg.dialers,
        # The server's CPU is the accept path alone; the client's includes its start-up.
        "cpu_server_ms_per_conn": meter.server / n * 1e3,
        "cpu_client_ms_per_conn": meter.client / n * 1e3,
    }


def many_streams(stack: Stack, cfg: Config) -> dict[str, Any]:
    with server(stack) as srv, CpuMeter(srv) as meter:
        objs = run_client(
            stack,
            srv.address,
            "--upload-bytes",
            str(cfg.stream_bytes),
            "--streams",
            str(cfg.streams),
        )
    (final,) = finals(objs)[-1:]
    total = cfg.streams * cfg.stream_bytes
    if final["uploadBytes"] != total:
        raise RuntimeError(f"moved {final['uploadBytes']} of {total} bytes")
    return {
        "value": total * 8 / final["timeSeconds"] / 1e9,
        "streams": cfg.streams,
        "bytes": total,
        **cpu_per_gib(meter, total),
    }


def ping_rtt(stack: Stack, cfg: Config) -> dict[str, Any]:
    """Round trips on an open connection, the client in this process on uvloop (us).

    rapidp2p: /ipfs/ping/1.0.0 (32 bytes each way) against a rapidp2p server. raw-tcp: the
    same 32 bytes each way over plain TCP on uvloop (a 16-byte request header + 32 bytes up,
    32 bytes echoed down by benches/e2e/rawtcp_perf.py): the floor for any Python stack.
    """
    from rapidp2p._aio.runner import run

    if stack.name == "raw-tcp":
        with server(stack) as srv:
            rtts = sorted(run(_raw_ping(srv.address, 500)))
    else:
        with server(stack) as srv:
            rtts = sorted(run(_libp2p_ping(srv.address)))
    return {"value": statistics.median(rtts) * 1e6, "p95": rtts[int(0.95 * (len(rtts) - 1))] * 1e6}


async def _libp2p_ping(address: str) -> list[float]:
    from rapidp2p.host import Host
    from rapidp2p.protocols.perf import SERVER_PEER_ID, parse_server_address

    async with Host() as host:
        await host.connect(f"{parse_server_address(address)}/p2p/{SERVER_PEER_ID}")
        await host.ping(host.connections()[0].remote_peer, 20)  # warm up
        return await host.ping(host.connections()[0].remote_peer, 500)


async def _raw_ping(address: str, count: int) -> list[float]:
    import asyncio
    import sys

    from benches.e2e.stacks import HERE

    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # rawtcp_perf imports its sibling perf_flags
    import rawtcp_perf

    host, port = rawtcp_perf._split(address)
    _, proto = await asyncio.get_running_loop().create_connection(
        rawtcp_perf.ClientProtocol, host, port
    )
    await proto.connected
    rtts = []
    try:
        for i in range(20 + count):  # 20 warm-up round trips, as the libp2p ping
            start = time.perf_counter()
            await proto.request(32, 32)
            if i >= 20:
                rtts.append(time.perf_counter() - start)
    finally:
        proto.transport.close()
    return rtts


def memory(stack: Stack, cfg: Config) -> dict[str, Any]:
    """Server RSS: idle, with N idle connections, with M idle perf streams over them.

    The client is rapidp2p (one host per connection) whatever the server is: only the
    server's memory is measured. An idle stream has negotiated /perf/1.0.0 and sent its
    8-byte header; the server waits for the upload's end. ``stack.transport`` is what the
    connections use (``quic-v1``: the same count over QUIC, each host its own UDP socket).
    """
    from rapidp2p._aio.runner import run

    with server(stack) as srv:
        time.sleep(1.0)
        idle = srv.rss_bytes()
        figures: dict[str, Any] = {"idle_node_mib": idle / MIB}
        run(_hold(srv, cfg, idle, figures, stack.transport))
    figures["value"] = figures["per_connection_kib"]
    return figures


async def _hold(
    srv: Any, cfg: Config, idle: int, figures: dict[str, Any], transport: str = "tcp"
) -> None:
    import asyncio

    from rapidp2p.cli.perf import quic_multiaddr
    from rapidp2p.host import Host
    from rapidp2p.protocols.perf import (
        PROTOCOL_ID,
        SERVER_PEER_ID,
        encode_header,
        parse_server_address,
    )

    addr = parse_server_address(srv.address)
    if transport == "quic-v1":
        addr = quic_multiaddr(addr)
    target = f"{addr}/p2p/{SERVER_PEER_ID}"
    hosts: list[Host] = []
    gate = asyncio.Semaphore(16)
    errors: list[str] = []

    async def connect() -> None:
        async with gate:
            h = Host()
            hosts.append(h)
            try:
                await h.connect(target)
            except Exception as exc:
                errors.append(str(exc))

    async def open_streams(h: Host, k: int) -> None:
        async with gate:
            try:
                conn = h.connections()[0]
                for _ in range(k):
                    s = await h.new_stream(conn.remote_peer, PROTOCOL_ID, lazy=False)
                    s.write(encode_header(0))
                    await s.drain()
                    streams.append(s)
            except Exception as exc:
                errors.append(str(exc))

    streams: list[Any] = []
    try:
        await asyncio.gather(*(connect() for _ in range(cfg.idle_connections)))
        live = [h for h in hosts if h.connections()]
        if len(live) < cfg.idle_connections // 10:
            raise RuntimeError(
                f"{len(errors)} of {cfg.idle_connections} connections failed: {errors[0]}"
            )
        if errors:  # measured over the connections the server accepted; the table says so
            figures["refused"] = f"{len(errors)} of {cfg.idle_connections} refused: {errors[0]}"
            errors.clear()
        await asyncio.sleep(2.0)
        with_conns = srv.rss_bytes()
        figures["per_connection_kib"] = (with_conns - idle) / len(live) / 1024
        per = cfg.idle_streams // cfg.idle_connections
        await asyncio.gather(*(open_streams(h, per) for h in live))
        if not streams:
            raise RuntimeError(f"no stream opened: {errors[0] if errors else '?'}")
        if errors:
            figures["stream_errors"] = f"{len(errors)} batches failed: {errors[0]}"
        await asyncio.sleep(2.0)
        with_streams = srv.rss_bytes()
        figures["per_stream_kib"] = (with_streams - with_conns) / len(streams) / 1024
        figures["connections"] = len(live)
        figures["streams"] = len(streams)
    finally:
        await asyncio.gather(*(h.close() for h in hosts), return_exceptions=True)


#: One mesh per implementation and one mixed Kademlia network per suite run: the rows below
#: read their figures from these (keyed by stack name), measured on first use.
_MESH: dict[str, dict[str, Any]] = {}
_KAD: dict[str, Any] = {}
#: The implementations in the mixed Kademlia network (each with its own worker process).
KAD_STACKS = ("rapidp2p", "go-libp2p", "rust-libp2p")
#: Other builds of rapidp2p in this run (``--stacks rapidp2p@PYTHON``): stack name ->
#: interpreter. Their mesh runs their workers; their nodes join the one Kademlia network.
RAPIDP2P_BUILDS: dict[str, str] = {}


def _impl(stack: Stack) -> str:
    """The implementation name the mesh and Kademlia drivers know ``stack`` by."""
    python = RAPIDP2P_BUILDS.get(stack.name)
    return stack.name if python is None else f"rapidp2p@{python}"


def _mesh(stack: Stack, cfg: Config) -> dict[str, Any]:
    """This implementation's GossipSub mesh figures (benches/pubsub_mesh.py, setup "multi":
    the publisher alone in one process, the other nodes over two; strict signing)."""
    if stack.name not in _MESH:
        import argparse

        from benches import pubsub_mesh

        a = argparse.Namespace(
            nodes=cfg.mesh_nodes, procs=2, heartbeat=0.5, latency_rate=0.5, quick=cfg.quick
        )
        try:
            _MESH[stack.name] = pubsub_mesh.bench_impl(_impl(stack), "multi", a)
        except Exception as exc:
            _MESH[stack.name] = {"error": f"{type(exc).__name__}: {exc}"}
    res = _MESH[stack.name]
    if "error" in res:
        raise RuntimeError(res["error"])
    return res


def pubsub_rate(size_key: str) -> Callable[[Stack, Config], dict[str, Any]]:
    def measure(stack: Stack, cfg: Config) -> dict[str, Any]:
        r = _mesh(stack, cfg)[size_key]
        return {
            "value": r["msgs_per_s"],
            "delivered": r["delivered"],
            "tries": r.get("tries"),
            "nodes": cfg.mesh_nodes,
        }

    return measure


def pubsub_latency(key: str) -> Callable[[Stack, Config], dict[str, Any]]:
    def measure(stack: Stack, cfg: Config) -> dict[str, Any]:
        r = _mesh(stack, cfg)["latency_1KiB"]
        if key not in r:
            raise RuntimeError(f"no message delivered (delivered {r.get('delivered')})")
        return {"value": r[key], "delivered": r["delivered"], "rate": r.get("rate")}

    return measure


def _kad(stack: Stack, cfg: Config) -> dict[str, Any]:
    """This implementation's figures in the mixed network (benches/kad_mixed.py), which is
    built once, with every implementation's nodes, on the first Kademlia row."""
    if not _KAD:
        from benches import kad_mixed

        builds = {f"rapidp2p@{py}": name for name, py in RAPIDP2P_BUILDS.items()}
        try:
            res = kad_mixed.run(
                [*KAD_STACKS, *builds], cfg.kad_nodes, cfg.kad_lookups, cfg.kad_concurrency
            )
            _KAD.update({builds.get(k, k): v for k, v in res.items()})
        except Exception as exc:
            _KAD["error"] = f"{type(exc).__name__}: {exc}"
    if "error" in _KAD:
        raise RuntimeError(_KAD["error"])
    res = _KAD.get(stack.name)
    if res is None:
        raise Unavailable(f"{stack.name} has no Kademlia bench worker")
    if "error" in res:
        raise RuntimeError(res["error"])
    return {**res, "network_nodes": _KAD["network"]["nodes"]}


def kad_lookups(stack: Stack, cfg: Config) -> dict[str, Any]:
    r = _kad(stack, cfg)
    return {"value": r["lookups_per_s"], **r}


def kad_latency(key: str) -> Callable[[Stack, Config], dict[str, Any]]:
    def measure(stack: Stack, cfg: Config) -> dict[str, Any]:
        r = _kad(stack, cfg)
        return {"value": r[key], "found_median": r["found_median"], "failed": r["failed"]}

    return measure


LIBP2P = ("rapidp2p", "go-libp2p", "rust-libp2p", "py-libp2p")
#: The stacks whose perf command dials QUIC v1 (issue 11).
QUIC = ("rapidp2p", "go-libp2p", "rust-libp2p")
#: rust-libp2p's own perf binary and the cross columns (client>server): TLS and QUIC rows.
REF = ("rust-libp2p-perf", "rapidp2p>rust-perf", "rust-perf>rapidp2p")
#: Single-stream rows also run rapidp2p in a private network (the PSK's cost, same run).
BULK = ("rapidp2p", "rapidp2p+psk", "iperf3", "raw-tcp", "go-libp2p", "go-libp2p+psk", *LIBP2P[2:])

ROWS: list[Row] = [
    Row(
        "upload",
        "single stream upload",
        "Gbit/s",
        True,
        throughput("upload"),
        BULK,
        "throughput",
    ),
    Row(
        "download",
        "single stream download",
        "Gbit/s",
        True,
        throughput("download"),
        BULK,
        "throughput",
    ),
    Row(
        "upload_tls",
        "single stream upload, TLS 1.3 instead of Noise",
        "Gbit/s",
        True,
        over_tls(throughput("upload")),
        ("rapidp2p", "go-libp2p", "rust-libp2p", *REF),
        "throughput",
    ),
    Row(
        "download_tls",
        "single stream download, TLS 1.3 instead of Noise",
        "Gbit/s",
        True,
        over_tls(throughput("download")),
        ("rapidp2p", "go-libp2p", "rust-libp2p", *REF),
        "throughput",
    ),
    Row(
        "upload_quic",
        "single stream upload, QUIC v1",
        "Gbit/s",
        True,
        over_quic(throughput("upload")),
        (*QUIC, *REF),
        "throughput",
    ),
    Row(
        "download_quic",
        "single stream download, QUIC v1",
        "Gbit/s",
        True,
        over_quic(throughput("download")),
        (*QUIC, *REF),
        "throughput",
    ),
    Row(
        "upload_webtransport",
        "single stream upload, WebTransport (rapidp2p client and server)",
        "Gbit/s",
        True,
        over_webtransport(throughput("upload")),
        ("rapidp2p",),
        "throughput",
    ),
    Row(
        "download_webtransport",
        "single stream download, WebTransport (rapidp2p client and server)",
        "Gbit/s",
        True,
        over_webtransport(throughput("download")),
        ("rapidp2p",),
        "throughput",
    ),
    *(
        Row(
            f"{direction}_{suffix}",
            f"single stream {direction}, {label} (each stack's client and server)",
            "Gbit/s",
            True,
            over_transport(transport, throughput(direction)),
            stacks,
            "throughput",
        )
        for suffix, transport, label, stacks in EXTENSION_ROWS
        for direction in ("upload", "download")
    ),
    Row(
        "metrics_overhead",
        "single stream upload, metrics on / off: CPU per byte (4 alternated pairs, median)",
        "ratio",
        False,
        metrics_overhead,
        ("rapidp2p",),
    ),
    Row(
        "rcmgr_overhead",
        "single stream upload, resource manager defaults / unlimited: CPU per byte (median)",
        "ratio",
        False,
        rcmgr_overhead,
        ("rapidp2p",),
    ),
    Row(
        "metrics_overhead_handshakes",
        "handshakes, metrics on / off: server CPU per connection (4 alternated pairs, median)",
        "ratio",
        False,
        metrics_overhead_handshakes,
        ("rapidp2p",),
    ),
    Row(
        "rcmgr_overhead_handshakes",
        "handshakes, resource manager defaults / unlimited: server CPU per connection (median)",
        "ratio",
        False,
        rcmgr_overhead_handshakes,
        ("rapidp2p",),
    ),
    Row(
        "connect_rtt",
        "fresh connection + 1-byte round trip (median)",
        "ms",
        False,
        connect_rtt,
        ("rapidp2p", "raw-tcp", *LIBP2P[1:]),
        "latency",
    ),
    Row(
        "connect_rtt_tls",
        "fresh connection + 1-byte round trip, TLS 1.3 instead of Noise (median)",
        "ms",
        False,
        over_tls(connect_rtt),
        ("rapidp2p", "go-libp2p", "rust-libp2p", *REF),
        "latency",
    ),
    Row(
        "connect_rtt_quic",
        "fresh QUIC v1 connection + 1-byte round trip (median)",
        "ms",
        False,
        over_quic(connect_rtt),
        (*QUIC, *REF),
        "latency",
    ),
    Row(
        "connect_rtt_webtransport",
        "fresh WebTransport connection + 1-byte round trip (median)",
        "ms",
        False,
        over_webtransport(connect_rtt),
        ("rapidp2p",),
        "latency",
    ),
    *(
        Row(
            f"connect_rtt_{suffix}",
            f"fresh {label} connection + 1-byte round trip (median)",
            "ms",
            False,
            over_transport(transport, connect_rtt),
            stacks,
            "latency",
        )
        for suffix, transport, label, stacks in EXTENSION_ROWS
    ),
    Row(
        "rr_1b",
        "request/response on one connection, 1 B",
        "req/s",
        True,
        request_response(1),
        ("rapidp2p", "raw-tcp", *LIBP2P[1:]),
    ),
    Row(
        "rr_1kib",
        "request/response on one connection, 1 KiB",
        "req/s",
        True,
        request_response(1024),
        ("rapidp2p", "raw-tcp", *LIBP2P[1:]),
    ),
    Row(
        "handshakes",
        "handshakes per second, 8 dialers",
        "conn/s",
        True,
        handshakes,
        ("rapidp2p", "raw-tcp", *LIBP2P[1:]),
    ),
    Row(
        "streams",
        "1000 streams x 1 MiB on one connection (aggregate)",
        "Gbit/s",
        True,
        many_streams,
        LIBP2P,
        "throughput",
    ),
    Row(
        "ping",
        "ping RTT on an open connection (median; raw-tcp: 32-byte echo on uvloop)",
        "us",
        False,
        ping_rtt,
        ("rapidp2p", "raw-tcp"),
        "latency",
    ),
    Row("memory", "RSS per idle connection (server; 1000 conns)", "KiB", False, memory, LIBP2P),
    Row(
        "memory_quic",
        "RSS per idle QUIC v1 connection (server; 1000 conns)",
        "KiB",
        False,
        over_quic(memory),
        QUIC,
    ),
    Row(
        "pubsub_1kib",
        "GossipSub mesh, 20 nodes, strict signing: 1 KiB msgs/s every subscriber got",
        "msg/s",
        True,
        pubsub_rate("throughput_1KiB"),
        KAD_STACKS,
    ),
    Row(
        "pubsub_64kib",
        "GossipSub mesh, 20 nodes, strict signing: 64 KiB msgs/s every subscriber got",
        "msg/s",
        True,
        pubsub_rate("throughput_64KiB"),
        KAD_STACKS,
    ),
    Row(
        "pubsub_latency_p50",
        "GossipSub mesh: 1 KiB delivery latency p50 (0.5 msg/s)",
        "ms",
        False,
        pubsub_latency("p50_ms"),
        KAD_STACKS,
    ),
    Row(
        "pubsub_latency_p99",
        "GossipSub mesh: 1 KiB delivery latency p99 (0.5 msg/s)",
        "ms",
        False,
        pubsub_latency("p99_ms"),
        KAD_STACKS,
    ),
    Row(
        "kad_lookups",
        "Kademlia lookups/s in one mixed rapidp2p+go+rust network (8 in flight)",
        "lookup/s",
        True,
        kad_lookups,
        KAD_STACKS,
    ),
    Row(
        "kad_latency_p50",
        "Kademlia lookup latency p50 (mixed network)",
        "ms",
        False,
        kad_latency("p50_ms"),
        KAD_STACKS,
    ),
    Row(
        "kad_latency_p99",
        "Kademlia lookup latency p99 (mixed network)",
        "ms",
        False,
        kad_latency("p99_ms"),
        KAD_STACKS,
    ),
]
