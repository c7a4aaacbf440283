"""Perf (/perf/1.0.0) between rapidp2p and the go-libp2p / rust-libp2p peers, both directions.

The peers' ``run perf`` has the command line of ``rapidp2p perf`` (test-plans shape plus the
benchmark suite's extensions); these tests pin that contract with small sizes: the byte counts
in the ``final`` JSON lines, the ``summary`` line, the shared server identity, exit code 3 for
an unsupported transport, and the peers against each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from peers import _peer_env, build_peer

from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.perf import SERVER_PEER_ID, PerfService, run_perf, server_key

GO_RUST = ("go-peer", "rust-peer")
UP, DOWN = 300_001, 700_003  # not multiples of any block size
TIMEOUT = 120.0

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def peer_server(name: str) -> Iterator[str]:
    """``run perf --run-server`` on a free port; yields HOST:PORT once its address is printed."""
    directory = build_peer(name)
    address = f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [str(directory / "run"), "perf", "--run-server", "--server-address", address],
            cwd=directory,
            env=_peer_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()  # the peer prints its full address(es)
            err.seek(0)
            assert line, f"{name} perf server printed nothing: {err.read().decode()}"
            assert line == f"/ip4/{address.replace(':', '/tcp/')}/p2p/{SERVER_PEER_ID}", line
            yield address
        finally:
            proc.kill()
            proc.wait(timeout=10)


def parse_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


async def peer_client(
    name: str, address: str, *flags: str, transport: str = "tcp"
) -> list[dict[str, Any]]:
    """``run perf --server-address ADDRESS --transport T FLAGS``, awaited; its JSON lines."""
    directory = build_peer(name)
    proc = await asyncio.create_subprocess_exec(
        str(directory / "run"),
        "perf",
        "--server-address",
        address,
        "--transport",
        transport,
        *flags,
        cwd=directory,
        env=_peer_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, (flags, err.decode())
    return parse_lines(out.decode())


def finals(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if o.get("type") == "final"]


def check_final(obj: dict[str, Any], up: int, down: int) -> None:
    assert set(obj) == {"type", "timeSeconds", "uploadBytes", "downloadBytes"}, obj
    assert obj["type"] == "final"
    assert (obj["uploadBytes"], obj["downloadBytes"]) == (up, down), obj
    assert isinstance(obj["timeSeconds"], float) and obj["timeSeconds"] > 0, obj


@contextlib.asynccontextmanager
async def rapidp2p_server(quic: bool = False) -> AsyncIterator[tuple[str, PerfService]]:
    port = free_port()
    listen = [f"/ip4/127.0.0.1/tcp/{port}"]
    if quic:
        listen.append(f"/ip4/127.0.0.1/udp/{port}/quic-v1")
    async with await Host.create(server_key(), listen=listen) as host:
        assert str(host.peer_id) == SERVER_PEER_ID
        yield f"127.0.0.1:{port}", await host.add_service(PerfService(host))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.peers(n)) for n in GO_RUST])
async def test_rapidp2p_client_to_peer_server(name: str) -> None:
    with peer_server(name) as address:
        target = Multiaddr(f"/ip4/{address.replace(':', '/tcp/')}/p2p/{SERVER_PEER_ID}")
        async with Host() as host:
            conn = await host.connect(target)
            assert conn.remote_peer == PeerId.from_string(SERVER_PEER_ID)
            for up, down in ((UP, DOWN), (0, 0), (1, 0), (0, 1 << 20)):
                report = await run_perf(host, conn.remote_peer, up, down)
                assert (report.type, report.upload_bytes, report.download_bytes) == (
                    "final",
                    up,
                    down,
                )
            # Several perf streams at once on the one connection.
            reports = await asyncio.gather(
                *(run_perf(host, conn.remote_peer, 4096 * i, 8192 * i) for i in range(1, 9))
            )
            assert [(r.upload_bytes, r.download_bytes) for r in reports] == [
                (4096 * i, 8192 * i) for i in range(1, 9)
            ]


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.peers(n)) for n in GO_RUST])
async def test_peer_client_to_rapidp2p_server(name: str) -> None:
    async with rapidp2p_server() as (address, service):
        objs = await peer_client(
            name, address, "--upload-bytes", str(UP), "--download-bytes", str(DOWN)
        )
        (final,) = finals(objs)
        check_final(final, UP, DOWN)
        assert all(o["type"] == "intermediary" for o in objs[:-1]), objs
        assert (service.requests, service.bytes_received, service.bytes_sent) == (1, UP, DOWN)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.peers(n)) for n in GO_RUST])
async def test_perf_over_quic_both_ways(name: str) -> None:
    """``--transport quic-v1`` (the suite's QUIC rows): the peer's client against rapidp2p's
    server, then rapidp2p against the peer's server at its QUIC address (same port as TCP)."""
    async with rapidp2p_server(quic=True) as (address, service):
        objs = await peer_client(
            name, address, "--upload-bytes", str(UP), "--download-bytes", str(DOWN),
            "--iterations", "2", transport="quic-v1",
        )  # fmt: skip
        for final in finals(objs):
            check_final(final, UP, DOWN)
        assert (service.requests, service.bytes_received, service.bytes_sent) == (
            2,
            2 * UP,
            2 * DOWN,
        )
    with peer_server(name) as address:
        quic = address.replace(":", "/udp/")
        target = Multiaddr(f"/ip4/{quic}/quic-v1/p2p/{SERVER_PEER_ID}")
        async with Host() as host:
            conn = await host.connect(target)
            assert "/quic-v1" in str(conn.remote_addr)
            report = await run_perf(host, conn.remote_peer, UP, DOWN)
            assert (report.upload_bytes, report.download_bytes) == (UP, DOWN)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.peers(n)) for n in GO_RUST])
async def test_peer_client_suite_extensions(name: str) -> None:
    """The suite's extensions: iterations, reused connection, streams, concurrency, connect-only."""
    async with rapidp2p_server() as (address, service):
        objs = await peer_client(
            name, address, "--upload-bytes", "1000", "--download-bytes", "3000",
            "--iterations", "3", "--reuse-connection", "--streams", "4",
        )  # fmt: skip
        assert [o["type"] for o in objs] == ["final"] * 3 + ["summary"], objs
        for final in finals(objs):
            check_final(final, 4000, 12000)
        assert objs[-1]["iterations"] == 3 and objs[-1]["elapsedSeconds"] > 0
        assert (service.requests, service.bytes_received, service.bytes_sent) == (12, 12000, 36000)

        objs = await peer_client(
            name, address, "--connect-only", "--iterations", "5", "--concurrency", "2"
        )
        assert [o["type"] for o in objs] == ["final"] * 5 + ["summary"], objs
        for final in finals(objs):
            check_final(final, 0, 0)
        assert service.requests == 12  # connect-only opens no perf stream

        objs = await peer_client(
            name, address, "--upload-bytes", "1", "--download-bytes", "1", "--iterations", "2"
        )
        assert [o["type"] for o in objs] == ["final", "final", "summary"], objs
        # Every client process has exited: no connection of theirs is left open.
        deadline = time.monotonic() + 10
        while service.host.connections() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert service.host.connections() == []


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.peers(n)) for n in GO_RUST])
def test_unsupported_transport_and_bad_flags(name: str) -> None:
    directory = build_peer(name)
    run = [str(directory / "run"), "perf"]
    proc = subprocess.run(
        [*run, "--server-address", "127.0.0.1:1", "--transport", "quic"],
        capture_output=True, text=True, timeout=60, env=_peer_env(),
    )  # fmt: skip
    assert proc.returncode == 3, proc
    assert "quic" in proc.stderr and proc.stdout == ""
    for bad in (
        ["--upload-bytes", "1"],  # a client needs --server-address
        ["--server-address", "127.0.0.1:1", "--iterations", "0"],
        ["--server-address", "127.0.0.1:1", "--upload-bytes", "-1"],
        ["--server-address", "nohost", "--upload-bytes", "1"],
        ["--frobnicate"],
    ):
        proc = subprocess.run([*run, *bad], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (bad, proc)
        assert "usage:" in proc.stderr, (bad, proc.stderr)
    proc = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--run-server" in proc.stdout, proc


@pytest.mark.parametrize(
    ("server", "client"),
    [
        pytest.param(s, c, id=f"{c}-to-{s}", marks=pytest.mark.peers(s, c))
        for s in GO_RUST
        for c in GO_RUST
        if s != c
    ],
)
async def test_peers_with_each_other(server: str, client: str) -> None:
    with peer_server(server) as address:
        objs = await peer_client(
            client, address, "--upload-bytes", str(UP), "--download-bytes", str(DOWN)
        )
        check_final(finals(objs)[-1], UP, DOWN)


@pytest.mark.peers("go-peer")
async def test_go_perf_over_websocket() -> None:
    """``--transport ws`` (the suite's ``*_ws`` rows' go column): go's server also listens on
    /ws at an ephemeral port and prints it; go's client and rapidp2p's both move data there."""
    directory = build_peer("go-peer")
    address = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [str(directory / "run"), "perf", "--run-server", "--server-address", address,
         "--transport", "ws"],
        cwd=directory, env=_peer_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        ws = [line for line in lines if "/ws/" in line]
        assert len(ws) == 1 and ws[0].endswith(f"/ws/p2p/{SERVER_PEER_ID}"), lines
        objs = await peer_client("go-peer", ws[0], "--upload-bytes", str(UP),
                                 "--download-bytes", str(DOWN), transport="ws")  # fmt: skip
        assert len(finals(objs)) == 1
        check_final(finals(objs)[0], UP, DOWN)
        async with Host() as host:
            conn = await host.connect(Multiaddr(ws[0]))
            assert "/ws" in str(conn.remote_addr)
            report = await run_perf(host, conn.remote_peer, UP, DOWN)
            assert (report.upload_bytes, report.download_bytes) == (UP, DOWN)
    finally:
        proc.kill()
        proc.wait(timeout=10)
