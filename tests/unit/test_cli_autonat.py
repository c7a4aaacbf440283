"""``rapidp2p listen --autonat-service`` answers dial-back requests, and ``rapidp2p listen``
prints its reachability and the addresses it advertises (two processes on loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CLI = [sys.executable, "-m", "rapidp2p.cli", "listen", "--listen", "/ip4/127.0.0.1/tcp/0"]


@contextmanager
def _listen(*args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _json_line(proc: subprocess.Popen[str], key: str, limit: int = 50) -> dict[str, object]:
    assert proc.stdout is not None
    for _ in range(limit):
        line = proc.stdout.readline()
        if not line:
            break
        record = json.loads(line)
        if key in record:
            return dict(record)
    raise AssertionError(f"no line with {key!r}")


@pytest.mark.parametrize("version", ["1", "2"])
def test_listen_prints_reachability_learned_from_an_autonat_service(version: str) -> None:
    flags = ["--autonat-v2"] if version == "2" else []
    with _listen("--autonat-service", "--autonat-allow-private", "--json") as server:
        addr = _json_line(server, "addrs")["addrs"]
        assert isinstance(addr, list)
        with _listen("--bootstrap", addr[0], "--autonat-delay", "0", "--json", *flags) as client:
            own = _json_line(client, "addrs")["addrs"]
            change = _json_line(client, "reachability")
            assert change["reachability"] == "public"
            assert change["previous"] == "unknown"
            assert change["via"] == f"autonat/{version}"
            assert change["addrs"] == own  # every advertised address is printed
            dialed = change["dialed_at"]
            assert isinstance(dialed, str) and isinstance(own, list)
            assert own[0].startswith(dialed + "/p2p/")
