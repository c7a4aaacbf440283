"""``rapidp2p perf``: the test-plans command line and its JSON output, as real processes."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rapidp2p.cli.main import main
from rapidp2p.protocols.perf import SERVER_PEER_ID

CLI = [sys.executable, "-m", "rapidp2p.cli", "perf"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _server() -> Iterator[str]:
    port = _free_port()
    address = f"127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*CLI, "--run-server", "--server-address", address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == f"/ip4/127.0.0.1/tcp/{port}/p2p/{SERVER_PEER_ID}", proc.stderr
        # QUIC v1 at the same port number, as the test-plans servers.
        line = proc.stdout.readline().strip()
        assert line == f"/ip4/127.0.0.1/udp/{port}/quic-v1/p2p/{SERVER_PEER_ID}", proc.stderr
        yield address
    finally:
        proc.kill()
        proc.wait()


def _client(address: str, *extra: str, transport: str = "tcp") -> list[dict[str, object]]:
    out = subprocess.run(
        [*CLI, "--server-address", address, "--transport", transport, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert all(isinstance(obj, dict) for obj in lines)
    return lines


def _check_report(obj: dict[str, object]) -> None:
    assert list(obj) == ["type", "timeSeconds", "uploadBytes", "downloadBytes"]
    assert obj["type"] in ("intermediary", "final")
    assert isinstance(obj["timeSeconds"], float) and obj["timeSeconds"] > 0
    assert isinstance(obj["uploadBytes"], int) and isinstance(obj["downloadBytes"], int)


def test_cli_client_prints_runner_json() -> None:
    with _server() as address:
        lines = _client(address, "--upload-bytes", "100000", "--download-bytes", "300001")
        for obj in lines:
            _check_report(obj)
        assert [o["type"] for o in lines][-1] == "final"
        assert all(o["type"] == "intermediary" for o in lines[:-1])
        final = lines[-1]
        assert (final["uploadBytes"], final["downloadBytes"]) == (100000, 300001)

        many = _client(
            address,
            "--upload-bytes",
            "1",
            "--download-bytes",
            "1",
            "--iterations",
            "3",
            "--concurrency",
            "2",
        )
        assert [o["type"] for o in many] == ["final"] * 3 + ["summary"]
        for obj in many[:3]:
            _check_report(obj)
        assert many[3]["iterations"] == 3

        streams = _client(address, "--upload-bytes", "1000", "--streams", "20")
        assert streams[-1]["uploadBytes"] == 20000

        # Servers with a fresh identity (rust-libp2p's perf binary): accept what is proven.
        anyone = _client(address, "--upload-bytes", "7", "--server-peer-id", "any")
        assert anyone[-1]["uploadBytes"] == 7
        same = _client(address, "--upload-bytes", "7", "--server-peer-id", SERVER_PEER_ID)
        assert same[-1]["uploadBytes"] == 7
        # Another identity than the server proves: the dial fails.
        other = "12D3KooWHk4o6mZRgbsLRxsFDAhPNUWWwrwMNdmF9Ahh7RGr3hDP"
        wrong = subprocess.run(
            [*CLI, "--server-address", address, "--upload-bytes", "7", "--server-peer-id", other],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert wrong.returncode != 0
        assert not any('"final"' in line for line in wrong.stdout.splitlines())


def test_cli_client_over_quic() -> None:
    """``--transport quic-v1`` dials the server's QUIC address: one run, then fresh
    connections (the bench suite's QUIC rows)."""
    with _server() as address:
        lines = _client(address, "--upload-bytes", "100000", "--download-bytes", "300001",
                        transport="quic-v1")  # fmt: skip
        final = lines[-1]
        _check_report(final)
        assert (final["uploadBytes"], final["downloadBytes"]) == (100000, 300001)
        many = _client(address, "--upload-bytes", "1", "--download-bytes", "1",
                       "--iterations", "3", transport="quic-v1")  # fmt: skip
        assert [o["type"] for o in many] == ["final"] * 3 + ["summary"]


@pytest.mark.parametrize(
    ("transport", "needle", "hashes"),
    [
        ("webtransport", "/quic-v1/webtransport/certhash/", 2),
        ("webrtc-direct", "/udp/", 1),
        ("ws", "/tcp/", 0),
    ],
)
def test_cli_client_over_extension_transport(transport: str, needle: str, hashes: int) -> None:
    """``--transport webtransport|webrtc-direct|ws`` (rapidp2p's extensions, the bench suite's
    rows of those names): the server also listens there, at an ephemeral port, and prints the
    address (with its /certhash values); the client dials that address, and refuses a
    HOST:PORT it cannot derive the port (or hashes) from."""
    port = _free_port()
    proc = subprocess.Popen(
        [*CLI, "--run-server", "--server-address", f"127.0.0.1:{port}",
         "--transport", transport],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        (addr,) = [ln for ln in lines if f"/{transport}/" in ln]
        assert needle in addr and f"/{port}/" not in addr  # its own ephemeral port
        assert addr.endswith(f"/p2p/{SERVER_PEER_ID}") and addr.count("/certhash/") == hashes
        out = _client(addr, "--upload-bytes", "100000", "--download-bytes", "300001",
                      "--iterations", "2", transport=transport)  # fmt: skip
        assert [o["type"] for o in out] == ["final", "final", "summary"]
        assert (out[0]["uploadBytes"], out[0]["downloadBytes"]) == (100000, 300001)
        refused = subprocess.run(
            [*CLI, "--server-address", f"127.0.0.1:{port}", "--transport", transport],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode != 0 and f"full /{transport} multiaddr" in refused.stderr
        assert ("/certhash" in refused.stderr) == (hashes > 0)
    finally:
        proc.kill()
        proc.wait()


def test_cli_refuses_unknown_transport_and_missing_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["perf", "--server-address", "127.0.0.1:1", "--transport", "webrtc"]) == 1
    err = capsys.readouterr().err
    assert "'webrtc'" in err and "webrtc-direct, ws" in err  # the ones it does speak
    swarm = ["--swarm-key", "/nonexistent", "--transport", "quic-v1"]
    assert main(["perf", "--server-address", "127.0.0.1:1", *swarm]) == 1
    assert "private network" in capsys.readouterr().err
    assert main(["perf"]) == 1
    assert "--server-address" in capsys.readouterr().err
    assert main(["perf", "--server-address", "127.0.0.1:1", "--upload-bytes", "-1"]) == 1
    capsys.readouterr()
    assert main(["perf", "--server-address", "127.0.0.1:1", "--server-peer-id", "nope"]) == 1
    assert "--server-peer-id" in capsys.readouterr().err


def test_perf_host_config_limits_and_no_resource_limits() -> None:
    """The perf peer keeps the machine's memory and connection limits (streams unlimited, no
    trimming); ``--no-resource-limits`` lifts every scope (the overhead rows' "off")."""
    import argparse

    from rapidp2p.cli.perf import configure, host_config
    from rapidp2p.resources.limits import UNLIMITED, autoscale

    parser = argparse.ArgumentParser()
    configure(parser)
    default = host_config(parser.parse_args([]))
    lim = default.resource_limits
    assert lim.system.memory == autoscale().system.memory < UNLIMITED
    assert lim.system.streams_inbound == UNLIMITED
    assert default.connmgr.high_water >= 1 << 20
    off = host_config(parser.parse_args(["--no-resource-limits"])).resource_limits
    for scope in ("system", "transient", "peer", "conn", "stream", "protocol", "service"):
        sl = getattr(off, scope)
        assert sl.memory == sl.conns == sl.streams == sl.fd == UNLIMITED, scope
