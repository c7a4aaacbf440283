"""The go-libp2p and rust-libp2p peers work with each other, and the harness in peers.py works.

The first part proves the reference peers honour the CLI contract of the brief (so a failing
rapidp2p interop test can be blamed on rapidp2p): every listener/dialer pair runs ping,
identify and a 16 MiB echo; wrong peer ids and dead addresses fail loudly; a listener stops
cleanly when its stdin closes. The second part checks peers.py and the CI no-skip policy
against fake peers made of shell scripts, so it needs no toolchain.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import peers
import pytest
from peers import (
    PeerBuildError,
    PeerError,
    PeerProcess,
    dial_from_peer,
    dial_from_peer_sync,
    find_result,
    listening_peer,
    listening_peer_sync,
    run_dial,
)

GO_RUST = ("go-peer", "rust-peer")
ECHO_BYTES = 16 * 1024 * 1024
SERVED = {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", "/echo/1.0.0"}
AGENT_PREFIX = {
    "go-peer": "rapidp2p-interop-go-peer/go-libp2p@v",
    "rust-peer": "rapidp2p-interop-rust-peer/",
}
# A valid Ed25519 peer id that no running peer has.
STRANGER_ID = "12D3KooWFVCKo3kWL4YcA6ACxRXk7VWENXGjrJE3UGeNkbrxsyhy"


def check_identify(info: dict[str, Any], listener: str, listener_addr: str) -> None:
    """The identify answer the dialer printed describes the listener, field by field."""
    assert info["agent_version"].startswith(AGENT_PREFIX[listener]), info
    assert info["protocol_version"] == "ipfs/0.1.0", info
    assert set(info["protocols"]) >= SERVED, info
    transport_addr = listener_addr.rsplit("/p2p/", 1)[0]
    assert transport_addr in info["listen_addrs"], (transport_addr, info)
    observed = info["observed_addr"]
    assert isinstance(observed, str) and observed.startswith("/ip4/127.0.0.1/tcp/"), info
    assert observed != transport_addr, "observed address must be the dialer's, not the listener's"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


PAIRS = [(listener, dialer) for listener in GO_RUST for dialer in GO_RUST]


@pytest.mark.interop
@pytest.mark.parametrize(
    ("listener", "dialer"),
    [pytest.param(lis, d, id=f"{d}-to-{lis}", marks=pytest.mark.peers(lis, d)) for lis, d in PAIRS],
)
def test_dial_ping_identify_echo(listener: str, dialer: str) -> None:
    with listening_peer_sync(listener) as addr:
        assert addr.startswith("/ip4/127.0.0.1/tcp/") and "/p2p/12D3KooW" in addr, addr
        results = dial_from_peer_sync(dialer, addr, ping=True, identify=True, echo_bytes=ECHO_BYTES)
    assert [next(iter(r)) for r in results] == ["ping_rtt_ms", "identify", "echo_bytes"], results
    rtt = find_result(results, "ping_rtt_ms")["ping_rtt_ms"]
    assert isinstance(rtt, float) and rtt > 0.0
    check_identify(find_result(results, "identify")["identify"], listener, addr)
    assert find_result(results, "echo_bytes") == {"echo_bytes": ECHO_BYTES, "ok": True}


@pytest.mark.interop
@pytest.mark.peers(*GO_RUST)
async def test_async_helpers_go_listens_rust_dials() -> None:
    """The asyncio API the rapidp2p tests use: the event loop stays free while peers run."""
    async with listening_peer("go-peer") as addr:
        results = await dial_from_peer("rust-peer", addr, ping=True, echo_bytes=1 << 20)
    assert [next(iter(r)) for r in results] == ["ping_rtt_ms", "echo_bytes"]
    assert find_result(results, "echo_bytes") == {"echo_bytes": 1 << 20, "ok": True}


@pytest.mark.interop
@pytest.mark.peers(*GO_RUST)
@pytest.mark.parametrize("dialer", GO_RUST)
def test_echo_of_nothing_and_odd_sizes(dialer: str) -> None:
    """Zero bytes (immediate half-close) and sizes that straddle frame boundaries."""
    listener = "rust-peer" if dialer == "go-peer" else "go-peer"
    with listening_peer_sync(listener) as addr:
        for size in (0, 1, 65519, 65536 + 7, 262145):
            results = dial_from_peer_sync(dialer, addr, echo_bytes=size)
            assert results == [{"echo_bytes": size, "ok": True}], (size, results)


@pytest.mark.interop
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.peers(n)) for n in GO_RUST])
def test_listen_on_a_given_port_and_stop_when_stdin_closes(name: str) -> None:
    port = free_port()
    with PeerProcess(name, f"/ip4/127.0.0.1/tcp/{port}") as peer:
        assert peer.addr.startswith(f"/ip4/127.0.0.1/tcp/{port}/p2p/"), peer.addr
        assert peer.peer_id.startswith("12D3KooW")
        assert peer.returncode is None
    # close() closed stdin first: a peer that honours the contract exits 0 on its own.
    assert peer.returncode == 0, peer.stderr_text()


@pytest.mark.interop
@pytest.mark.parametrize(
    ("listener", "dialer"),
    [pytest.param(lis, d, id=f"{d}-to-{lis}", marks=pytest.mark.peers(lis, d)) for lis, d in PAIRS],
)
def test_dial_with_the_wrong_peer_id_fails(listener: str, dialer: str) -> None:
    """Noise authenticates the listener: a dial that expects another peer id must fail."""
    with listening_peer_sync(listener) as addr:
        wrong = addr.rsplit("/p2p/", 1)[0] + "/p2p/" + STRANGER_ID
        with pytest.raises(PeerError, match="exited 1") as err:
            run_dial(dialer, wrong, "--ping", timeout=60)
    assert "stderr:" in str(err.value)


@pytest.mark.interop
@pytest.mark.parametrize("dialer", [pytest.param(n, marks=pytest.mark.peers(n)) for n in GO_RUST])
def test_dial_to_a_closed_port_fails(dialer: str) -> None:
    addr = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{STRANGER_ID}"
    with pytest.raises(PeerError, match=r"exited 1[\s\S]*stderr:\n.*\S"):
        run_dial(dialer, addr, "--ping", timeout=60)


@pytest.mark.interop
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.peers(n)) for n in GO_RUST])
def test_bad_command_line_is_a_usage_error(name: str) -> None:
    directory = peers.build_peer(name)
    for args in (["dial"], ["dial", "/ip4/127.0.0.1/tcp/1", "--echo-bytes"], ["frobnicate"]):
        proc = subprocess.run(
            [str(directory / "run"), *args], capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 2, (args, proc)
        assert "usage:" in proc.stderr, (args, proc.stderr)
        assert proc.stdout == ""


# --- the harness itself, against fake peers (shell scripts) -------------------------------


def make_fake_peer(root: Path, name: str, build: str, run: str = "exit 3") -> None:
    d = root / name
    d.mkdir()
    for script, body in (("build", build), ("run", run)):
        path = d / script
        path.write_text("#!/usr/bin/env bash\n" + textwrap.dedent(body))
        path.chmod(0o755)


@pytest.fixture
def fake_peers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private peers directory and cache, and a fresh build memo."""
    root = tmp_path / "peers"
    root.mkdir()
    monkeypatch.setattr(peers, "INTEROP_DIR", root)
    monkeypatch.setattr(peers, "_built", {})
    monkeypatch.setenv("RAPIDP2P_INTEROP_CACHE", str(tmp_path / "cache"))
    return root


def test_build_runs_once_per_session(fake_peers: Path) -> None:
    make_fake_peer(
        fake_peers, "p", 'echo built >> "$RAPIDP2P_INTEROP_CACHE/count"; echo progress >&2\n'
    )
    assert peers.available_peers() == ["p"]
    assert peers.build_peer("p") == fake_peers / "p"
    assert peers.build_peer("p") == fake_peers / "p"
    cache = Path(os.environ["RAPIDP2P_INTEROP_CACHE"])
    assert (cache / "count").read_text() == "built\n"
    assert "progress" in (cache / "p-build.log").read_text()


def test_missing_toolchain_skips_with_the_reason(fake_peers: Path) -> None:
    make_fake_peer(
        fake_peers, "p", "echo checking >&2; echo 'zig not found on PATH' >&2; exit 77\n"
    )
    with pytest.raises(pytest.skip.Exception, match="zig not found on PATH"):
        peers.build_peer("p")


def test_failed_build_raises_with_its_log(fake_peers: Path) -> None:
    make_fake_peer(fake_peers, "p", "echo 'error[E0425]: cannot find value' >&2; exit 101\n")
    with pytest.raises(PeerBuildError, match=r"exit 101[\s\S]*E0425"):
        peers.build_peer("p")
    with pytest.raises(PeerBuildError):  # remembered, not rebuilt
        peers.build_peer("p")


def test_unknown_peer_is_an_error(fake_peers: Path) -> None:
    with pytest.raises(ValueError, match="no interop peer"):
        peers.build_peer("nope")


def test_listener_that_dies_early_reports_its_stderr(fake_peers: Path) -> None:
    make_fake_peer(fake_peers, "p", "true\n", "echo 'bind: address in use' >&2; exit 1\n")
    with pytest.raises(PeerError, match=r"exited \(code 1\)[\s\S]*address in use"):
        PeerProcess("p").start()


def test_listener_that_never_listens_times_out(fake_peers: Path) -> None:
    # The peer would sleep for an hour: only the harness' own timeout can end this test, and
    # "no LISTENING line" is the timeout's message (an early exit reports "exited (code N)").
    make_fake_peer(fake_peers, "p", "true\n", "echo starting >&2; exec sleep 3600\n")
    with pytest.raises(PeerError, match=r"no LISTENING line within 0.5s[\s\S]*starting"):
        PeerProcess("p", timeout=0.5).start()


def test_listener_process_group_is_killed(fake_peers: Path, tmp_path: Path) -> None:
    """A peer that ignores stdin and leaves a child behind is still cleaned up entirely."""
    pidfile = tmp_path / "child.pid"
    make_fake_peer(
        fake_peers,
        "p",
        "true\n",
        f"""\
        sleep 300 & echo $! > {pidfile}
        trap '' TERM
        echo "LISTENING /ip4/127.0.0.1/tcp/1/p2p/{STRANGER_ID}"
        exec 0<&-
        while true; do sleep 1; done
        """,
    )
    with PeerProcess("p") as peer:
        assert peer.peer_id == STRANGER_ID
        child = int(pidfile.read_text())
        os.kill(child, 0)  # alive while the peer runs
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # A killed child may linger as a zombie of the killed (orphaned) group until reaped.
        stat = Path(f"/proc/{child}/stat")
        if stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"child {child} of the peer outlived it")


def test_dial_output_and_failures_are_parsed(fake_peers: Path) -> None:
    make_fake_peer(
        fake_peers,
        "p",
        "true\n",
        """\
        case "$*" in
          *--ping*) echo '{"ping_rtt_ms": 1.5}'; echo; echo '{"echo_bytes": 3, "ok": true}';;
          *--garbage*) echo 'not json';;
          *--slow*) exec sleep 30;;
          *) echo 'connect: refused' >&2; exit 1;;
        esac
        """,
    )
    results = run_dial("p", "/ip4/127.0.0.1/tcp/1", "--ping")
    assert results == [{"ping_rtt_ms": 1.5}, {"echo_bytes": 3, "ok": True}]
    assert find_result(results, "echo_bytes")["ok"] is True
    with pytest.raises(AssertionError, match="identify"):
        find_result(results, "identify")
    with pytest.raises(PeerError, match=r"exited 1[\s\S]*connect: refused"):
        run_dial("p", "/ip4/127.0.0.1/tcp/1")
    with pytest.raises(PeerError, match="non-JSON line"):
        run_dial("p", "/ip4/127.0.0.1/tcp/1", "--garbage")
    with pytest.raises(PeerError, match="timed out"):
        run_dial("p", "/ip4/127.0.0.1/tcp/1", "--slow", timeout=0.5)


async def test_async_dial_timeout_and_failure(fake_peers: Path) -> None:
    make_fake_peer(
        fake_peers,
        "p",
        "true\n",
        """\
        case "$*" in
          *--slow*) exec sleep 30;;
          *--ping*) echo '{"ping_rtt_ms": 2.0}';;
          *) echo 'boom' >&2; exit 4;;
        esac
        """,
    )
    assert await dial_from_peer("p", "/x", ping=True) == [{"ping_rtt_ms": 2.0}]
    with pytest.raises(PeerError, match=r"exited 4[\s\S]*boom"):
        await dial_from_peer("p", "/x")
    with pytest.raises(PeerError, match="timed out"):
        await dial_from_peer("p", "/x", extra_args=["--slow"], timeout=0.5)


# --- the CI policy in interop_policy.py ----------------------------------------------------


def run_policy_session(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    """Runs pytest on one skipping interop test, with the interop policy's hook loaded."""
    interop_conftest = Path(__file__).with_name("interop_policy.py")
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(f"""\
        import importlib.util, sys
        sys.path.insert(0, {str(interop_conftest.parent)!r})
        _path = {str(interop_conftest)!r}
        _spec = importlib.util.spec_from_file_location("interop_conftest", _path)
        _mod = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_mod)
        pytest_runtest_makereport = _mod.pytest_runtest_makereport

        def pytest_configure(config):
            config.addinivalue_line("markers", "interop: real peers")
        """)
    )
    (tmp_path / "test_policy.py").write_text(
        textwrap.dedent("""\
        import pytest

        @pytest.mark.interop
        def test_interop_skips():
            pytest.skip("frob toolchain missing")

        def test_plain_skip():
            pytest.skip("not interop")
        """)
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_interop_skip_fails_under_ci(tmp_path: Path) -> None:
    proc = run_policy_session(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed" in proc.stdout and "1 skipped" in proc.stdout, proc.stdout
    assert "interop test skipped under CI" in proc.stdout
    assert "frob toolchain missing" in proc.stdout


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_interop_skip_is_a_skip_with_reason_locally(tmp_path: Path, ci: str | None) -> None:
    proc = run_policy_session(tmp_path, ci)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 skipped" in proc.stdout, proc.stdout
    assert "frob toolchain missing" in proc.stdout  # -ra prints the reason
