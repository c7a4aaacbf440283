"""DCUtR hole punching through real NATs (network namespaces, veth, nftables masquerade).

A relay R on the public network (``rapidp2p listen --relay-service``), and two LANs each behind
its own router: B (``rapidp2p listen --relay R``, which prints the hole punch's outcome) and A
(``punch_dialer.py``: connects to R, dials B through R, then pings on command). The routers
keep source ports (endpoint-independent mapping) and drop unsolicited packets, so B's
CONNECT/SYNC and the simultaneous dials open a direct path; with ``symmetric`` routers
(a random port per flow) the punch must fail cleanly and the relayed connection keep working.

Root only (namespaces); skipped with the reason elsewhere, never skipped under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from nat_topology import PUBLIC_NET, Topology, repo_python, unavailable

pytestmark = [pytest.mark.timeout(300)]

DIALER = str(Path(__file__).resolve().parent / "punch_dialer.py")
LISTEN = {"tcp": "/ip4/0.0.0.0/tcp/0", "quic": "/ip4/0.0.0.0/udp/0/quic-v1"}


class Lines:
    """A process's JSON lines, read in a thread (the test never blocks on a pipe)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.queue.put(line)
        self.queue.put(None)

    def wait_for(self, key: str, timeout: float = 90.0) -> dict[str, Any]:
        while True:
            try:
                line = self.queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {key!r} line within {timeout} s") from None
            if line is None:
                raise AssertionError(f"process exited (code {self.proc.wait()}) before {key!r}")
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and key in record:
                return record

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()


@contextmanager
def _topology(symmetric: bool) -> Iterator[dict[str, Any]]:
    reason = unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"NAT tests must run under CI: {reason}")
        pytest.skip(reason)
    with Topology() as topo:
        relay_ns, relay_ip = topo.public_host("relay")
        a_ns, _a_ip, a_pub = topo.natted_host("a", symmetric=symmetric, stealth=True)
        b_ns, _b_ip, b_pub = topo.natted_host("b", symmetric=symmetric, stealth=True)
        yield {
            "topo": topo,
            "relay": (relay_ns, relay_ip),
            "a": (a_ns, a_pub),
            "b": (b_ns, b_pub),
            "symmetric": symmetric,
        }


@pytest.fixture(params=["cone", "symmetric"])
def nat(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    with _topology(request.param == "symmetric") as t:
        yield t


@pytest.fixture
def cone_nat() -> Iterator[dict[str, Any]]:
    with _topology(False) as t:
        yield t


def _first(addrs: list[str], part: str) -> str:
    return next(a for a in addrs if part in a)


def _peer_run(name: str) -> str:
    from peers import build_peer

    return str(build_peer(name) / "run")


def start(
    t: dict[str, Any], transport: str, *, a_impl: str = "rapidp2p", b_impl: str = "rapidp2p"
) -> tuple[Lines, Lines, Lines, str]:
    """Relay, B reserved on it, A dialing B through it: (relay, B, A, B's peer id). ``a_impl``
    and ``b_impl`` pick who runs A and B (``rapidp2p`` or an interop peer's name)."""
    topo: Topology = t["topo"]
    relay_ns, relay_ip = t["relay"]
    listen = LISTEN[transport]
    relay = Lines(
        topo.popen(relay_ns, [*repo_python(), "listen", "--listen", listen, "--relay-service",
                              "--no-hole-punching", "--json"], stderr=subprocess.DEVNULL)
    )  # fmt: skip
    relay_addr = _first(relay.wait_for("addrs")["addrs"], f"/{relay_ip}/")
    b_ns, _ = t["b"]
    if b_impl == "rapidp2p":
        b_argv = [*repo_python(), "listen", "--listen", listen, "--relay", relay_addr, "--json"]
    else:
        b_argv = [_peer_run(b_impl), "holepunch", "--listen", listen, "--relay", relay_addr]
    b = Lines(topo.popen(b_ns, b_argv, stderr=subprocess.DEVNULL))
    b_ready = b.wait_for("addrs")
    if b_impl == "rapidp2p":
        circuit = _first(b_ready["addrs"], f"/{relay_ip}/")
    else:  # rust-libp2p reports one circuit address per relay address, loopback first
        circuit = f"{relay_addr}/p2p-circuit/p2p/{b_ready['peer_id']}"
    assert "/p2p-circuit/p2p/" in circuit, b_ready
    a_ns, _ = t["a"]
    if a_impl == "rapidp2p":
        a_argv = [sys.executable, DIALER, "--listen", listen, "--relay", relay_addr,
                  "--target", circuit, "--wait", "60"]  # fmt: skip
    else:
        a_argv = [_peer_run(a_impl), "holepunch", "--listen", listen, "--relay", relay_addr,
                  "--dial", circuit]  # fmt: skip
    a = Lines(topo.popen(a_ns, a_argv, stderr=subprocess.DEVNULL))
    relayed = a.wait_for("relayed")
    assert relayed["limited"] is True
    return relay, b, a, circuit.rsplit("/p2p/", 1)[1]


def _ping_after_relay_stops(relay: Lines, a: Lines) -> None:
    """The relay goes away; the direct connection carries A's ping."""
    relay.proc.terminate()
    relay.proc.wait(20)
    a.send("ping")
    pong = a.wait_for("ping", timeout=60)
    assert pong["ping"] is not None, pong
    assert pong["limited"] is False and "/p2p-circuit" not in pong["addr"], pong


@pytest.mark.parametrize("transport", ["tcp", "quic"])
def test_hole_punch_between_two_nats(nat: dict[str, Any], transport: str) -> None:
    relay, b, a, _b_id = start(nat, transport)
    a_done = a.wait_for("hole_punch", timeout=90)
    b_done = b.wait_for("hole_punch", timeout=90)
    if nat["symmetric"]:
        # A random port per flow: the addresses the relay observed lead nowhere.
        assert b_done["hole_punch"] == "failed", b_done
        assert b_done["attempts"] == 3 and b_done["initiator"] is True
        assert a_done["hole_punch"] == "failed", a_done
        a.send("ping")
        pong = a.wait_for("ping", timeout=60)
        assert pong["ping"] is not None and pong["limited"] is True, pong
        return
    assert b_done["hole_punch"] == "succeeded", b_done
    assert a_done["hole_punch"] == "succeeded", a_done
    # B reached A at A's router's public address, with the port A's NAT kept.
    _a_ns, a_pub = nat["a"]
    assert f"/ip4/{a_pub}/" in b_done["addr"], b_done
    assert b_done["addr"].startswith(f"/ip4/{PUBLIC_NET}.")
    assert ("/quic-v1" in b_done["addr"]) == (transport == "quic")
    _ping_after_relay_stops(relay, a)


def _until_success(lines: Lines, timeout: float = 90.0) -> dict[str, Any]:
    """Hole-punch lines until one says ``succeeded`` (go-libp2p reports every attempt)."""
    while True:
        record = lines.wait_for("hole_punch", timeout=timeout)
        if record["hole_punch"] == "succeeded":
            return record


@pytest.mark.interop
@pytest.mark.peers("go-peer", "rust-peer")
@pytest.mark.parametrize("transport", ["tcp", "quic"])
@pytest.mark.parametrize("side", ["initiator", "responder"])
@pytest.mark.parametrize("peer", ["go-peer", "rust-peer"])
def test_hole_punch_interop(cone_nat: dict[str, Any], transport: str, side: str, peer: str) -> None:
    """``peer`` is the initiator B (it received the relayed connection from our A) or the
    responder A (it dialed our B through the relay)."""
    b_impl, a_impl = (peer, "rapidp2p") if side == "initiator" else ("rapidp2p", peer)
    relay, b, a, _b_id = start(cone_nat, transport, a_impl=a_impl, b_impl=b_impl)
    b_done = _until_success(b)
    assert b_done["hole_punch"] == "succeeded"
    _ping_after_relay_stops(relay, a)
