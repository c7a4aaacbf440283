"""``rapidp2p listen --relay-service``, ``listen --relay MULTIADDR`` and ``ping`` through the
relay, as three processes on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

CLI = [sys.executable, "-m", "rapidp2p.cli"]


@contextmanager
def listener(*args: str) -> Iterator[list[str]]:
    """A ``listen --json`` process; yields the addresses it printed."""
    proc = subprocess.Popen(
        [*CLI, "listen", "--listen", "/ip4/127.0.0.1/tcp/0", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"listen exited: {proc.stderr.read() if proc.stderr else ''}"
        yield list(json.loads(line)["addrs"])
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_relay_service_listen_relay_and_ping_through_it() -> None:
    with listener("--relay-service") as relay_addrs:
        relay = relay_addrs[0]
        with listener("--relay", relay) as addrs:
            circuit = [a for a in addrs if "/p2p-circuit/" in a]
            assert circuit, addrs
            assert circuit[0].startswith(relay + "/p2p-circuit/p2p/")
            done = subprocess.run(
                [*CLI, "ping", circuit[0], "-c", "2", "-i", "0", "--json"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            records = [json.loads(x) for x in done.stdout.splitlines()]
            assert records[0]["type"] == "connected" and records[0]["limited"] is True
            assert records[-1]["received"] == 2


def test_relay_flag_refused_names_the_relay() -> None:
    with listener() as plain_addrs:  # not a relay: the reservation fails
        proc = subprocess.run(
            [*CLI, "listen", "--listen", "/ip4/127.0.0.1/tcp/0", "--relay", plain_addrs[0]],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode != 0
        assert "cannot reserve on relay" in proc.stderr
