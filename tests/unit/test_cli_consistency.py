"""Issue 13 points 6-7 and "CLI consistency": every command takes --json, data on stdout and
diagnostics on stderr, ``listen`` on all interfaces by default (dialled on loopback only),
``-v`` connection logs, ``listen --dht --protocol``, argparse errors for bad numbers."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rapidp2p.cli.main import build_parser, load_commands

CLI = [sys.executable, "-m", "rapidp2p.cli"]


def _parsers(
    parser: argparse.ArgumentParser, path: str = ""
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _parsers(sub, f"{path} {name}".strip())


def test_every_command_takes_json() -> None:
    root = build_parser(load_commands())
    leaves = dict(_parsers(root))
    assert {
        "id",
        "listen",
        "ping",
        "identify",
        "demo",
        "perf",
        "dht",
        "pubsub sub",
        "pubsub pub",
    } <= set(leaves)
    for name, parser in leaves.items():
        flags = {opt for a in parser._actions for opt in a.option_strings}
        assert "--json" in flags, name


def test_perf_byte_options_have_help() -> None:
    out = subprocess.run([*CLI, "perf", "--help"], capture_output=True, text=True, timeout=60)
    assert "bytes the client sends" in out.stdout and "bytes the client asks" in out.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--pings", "0"],
        ["demo", "--mib", "-1"],
        ["ping", "-i", "-1", "/ip4/127.0.0.1/tcp/1"],
        ["ping", "-c", "0", "/ip4/127.0.0.1/tcp/1"],
    ],
)
def test_bad_numbers_are_usage_errors(args: list[str]) -> None:
    res = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "error: argument" in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_bad_ids_in_plain_words() -> None:
    res = subprocess.run(
        [*CLI, "dht", "find-providers", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbd",
         "--bootstrap", "/ip4/127.0.0.1/tcp/1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1
    assert "not a valid CID" in res.stderr and "truncated" in res.stderr
    res = subprocess.run(
        [*CLI, "ping", "/ip4/127.0.0.1/tcp/1/p2p/hello"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1 and "not a valid peer id: 'hello'" in res.stderr
    assert "multibase" not in res.stderr
    res = subprocess.run(
        [*CLI, "perf", "--server-address", "127.0.0.1:1", "--upload-bytes", "-1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1 and "u64" not in res.stderr and "whole number" in res.stderr


def test_dial_error_names_the_address_once() -> None:
    addr = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
    res = subprocess.run([*CLI, "ping", addr], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr.count("/ip4/127.0.0.1/tcp/1") == 1, res.stderr


@pytest.fixture
def listener() -> Iterator[tuple[subprocess.Popen[str], dict[str, object]]]:
    proc = subprocess.Popen(
        [*CLI, "listen", "--json", "-v", "--dht", "server", "--protocol", "/ipfs/lan/kad/1.0.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc, json.loads(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()


def test_listen_defaults_json_verbose_and_dht_protocol(
    listener: tuple[subprocess.Popen[str], dict[str, object]],
) -> None:
    proc, info = listener
    addrs = info["addrs"]
    assert isinstance(addrs, list) and addrs
    assert not any("/0.0.0.0/" in a or "/ip6/::/" in a for a in addrs)
    loopback = next(a for a in addrs if a.startswith("/ip4/127.0.0.1/"))
    ping = subprocess.run(
        [*CLI, "ping", loopback, "-c", "2", "-i", "0", "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ping.returncode == 0, ping.stderr
    kinds = [json.loads(line)["type"] for line in ping.stdout.splitlines()]
    assert kinds == ["connected", "pong", "pong", "summary"]
    ident = subprocess.run(
        [*CLI, "identify", loopback, "--json"], capture_output=True, text=True, timeout=60
    )
    assert ident.returncode == 0, ident.stderr
    assert "/ipfs/lan/kad/1.0.0" in json.loads(ident.stdout)["protocols"]
    proc.kill()
    _, err = proc.communicate(timeout=30)
    assert "listening on all interfaces" in err
    connected = [line for line in err.splitlines() if "connection opened" in line]
    assert len(connected) >= 2, err  # the ping and the identify connections, logged at INFO
