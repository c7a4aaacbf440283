"""The js-libp2p and py-libp2p interop peers work, with each other and with the go peer.

These tests prove the peers themselves (not rapidp2p) honour the CLI contract of the brief, so
a failing rapidp2p interop test can be blamed on rapidp2p. Every pair below runs one ``dial``
with ``--ping --identify --echo-bytes N`` against a ``listen``; the go peer is the reference
for the go/rust helpers and is included when its directory is present.

Echo is 16 MiB for every pair, py-libp2p included: it moves 16 MiB over Noise + yamux on
loopback in a few seconds here, so no smaller size is needed for it.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from peers import (
    PeerError,
    available_peers,
    build_peer,
    dial_from_peer_sync,
    find_result,
    listening_peer_sync,
)

MINE = ("js-peer", "py-peer")
ECHO_BYTES = 16 * 1024 * 1024
AGENT_MARK = {"js-peer": "js-libp2p/", "py-peer": "py-libp2p/", "go-peer": "go-libp2p"}
# A valid Ed25519 peer id (identity multihash of a public key) that no peer here has.
SOME_PEER_ID = "12D3KooWFVCKo3kWL4YcA6ACxRXk7VWENXGjrJE3UGeNkbrxsyhy"
SERVED = {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", "/echo/1.0.0"}

# Every (listener, dialer) pair with at least one of our peers in it; go<->go belongs to the
# go/rust sanity tests.
PAIRS = [
    (listener, dialer)
    for listener in (*MINE, "go-peer")
    for dialer in (*MINE, "go-peer")
    if listener in MINE or dialer in MINE
]


def require(*names: str) -> None:
    """Skips (a failure under CI, see conftest) when a peer directory is not there at all."""
    present = set(available_peers())
    for name in names:
        if name not in present:
            pytest.skip(f"interop peer {name} is not in tests/interop/")


def check_identify(info: dict[str, Any], listener: str, listener_addr: str) -> None:
    """The listener's identify answer, as the dialer printed it, describes the listener."""
    assert AGENT_MARK[listener] in info["agent_version"], info
    assert info["protocol_version"] == "ipfs/0.1.0", info
    assert isinstance(info["protocols"], list)
    assert set(info["protocols"]) >= SERVED, info
    transport_addr = listener_addr.rsplit("/p2p/", 1)[0]
    assert transport_addr in info["listen_addrs"], (transport_addr, info)
    observed = info["observed_addr"]
    assert isinstance(observed, str) and observed.startswith("/ip4/127.0.0.1/tcp/"), info


@pytest.mark.interop
@pytest.mark.parametrize(
    ("listener", "dialer"),
    [pytest.param(lis, d, id=f"{d}-to-{lis}", marks=pytest.mark.peers(lis, d)) for lis, d in PAIRS],
)
def test_dial_ping_identify_echo(listener: str, dialer: str) -> None:
    require(listener, dialer)
    with listening_peer_sync(listener) as addr:
        assert addr.startswith("/ip4/127.0.0.1/tcp/") and "/p2p/12D3KooW" in addr, addr
        results = dial_from_peer_sync(dialer, addr, ping=True, identify=True, echo_bytes=ECHO_BYTES)
    assert [next(iter(r)) for r in results] == ["ping_rtt_ms", "identify", "echo_bytes"], results
    rtt = find_result(results, "ping_rtt_ms")["ping_rtt_ms"]
    assert isinstance(rtt, float) and rtt > 0.0
    check_identify(find_result(results, "identify")["identify"], listener, addr)
    assert find_result(results, "echo_bytes") == {"echo_bytes": ECHO_BYTES, "ok": True}


@pytest.mark.interop
@pytest.mark.peers(*MINE)
@pytest.mark.parametrize(("listener", "dialer"), [("js-peer", "py-peer"), ("py-peer", "js-peer")])
def test_echo_sizes_at_frame_and_window_edges(listener: str, dialer: str) -> None:
    """Echo lengths around a Noise frame (65519) and yamux's 256 KiB window, and zero.

    One listener serves every size (one connection per dial), which keeps the test short.
    """
    sizes = [0, 1, 65519, 65520, 262144, 262145]
    with listening_peer_sync(listener) as addr:
        got = [dial_from_peer_sync(dialer, addr, echo_bytes=n) for n in sizes]
    assert got == [[{"echo_bytes": n, "ok": True}] for n in sizes]


@pytest.mark.interop
@pytest.mark.peers(*MINE)
@pytest.mark.parametrize(("listener", "dialer"), [("js-peer", "py-peer"), ("py-peer", "js-peer")])
def test_ipv6_loopback(listener: str, dialer: str) -> None:
    """``--listen /ip6/::1/tcp/0`` works; pins py-libp2p's empty observed address on IPv6.

    py-libp2p 0.8.1 sends ``observed_addr`` present but empty on IPv6 connections (it expects
    ``getpeername()`` to return a 2-tuple); the peers report that as null.
    """
    with listening_peer_sync(listener, "/ip6/::1/tcp/0") as addr:
        assert addr.startswith("/ip6/::1/tcp/"), addr
        results = dial_from_peer_sync(dialer, addr, identify=True, echo_bytes=1 << 20)
    info = find_result(results, "identify")["identify"]
    assert addr.rsplit("/p2p/", 1)[0] in info["listen_addrs"], info
    if listener == "py-peer":
        assert info["observed_addr"] is None, info
    else:
        assert info["observed_addr"].startswith("/ip6/::1/tcp/"), info
    assert find_result(results, "echo_bytes") == {"echo_bytes": 1 << 20, "ok": True}


def closed_port() -> int:
    """A loopback TCP port that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.interop
@pytest.mark.peers(*MINE)
@pytest.mark.parametrize("dialer", MINE)
def test_dial_refused_exits_nonzero(dialer: str) -> None:
    """A failed dial is a non-zero exit with a message, never a hang or a silent 0."""
    target = f"/ip4/127.0.0.1/tcp/{closed_port()}/p2p/{SOME_PEER_ID}"
    with pytest.raises(PeerError, match="exited"):
        dial_from_peer_sync(dialer, target, ping=True)


@pytest.mark.interop
@pytest.mark.peers(*MINE)
@pytest.mark.parametrize("name", MINE)
def test_listener_stops_when_stdin_closes(name: str) -> None:
    """``run listen`` exits 0 by itself once its stdin closes (the harness' polite stop)."""
    directory: Path = build_peer(name)
    proc = subprocess.Popen(
        [str(directory / "run"), "listen"],
        cwd=directory,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        assert line.startswith("LISTENING /ip4/127.0.0.1/tcp/"), (line, proc.stderr)
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
