"""``rapidp2p listen --limits FILE --allowlist CIDR|MULTIADDR`` (issue 10): the flags reach the
host (the startup record says what it runs with), a limit from the file refuses a dialer
naming its scope, and bad input fails before anything listens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rapidp2p.exceptions import Libp2pError
from rapidp2p.host import Host

CLI = [sys.executable, "-m", "rapidp2p.cli"]


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = subprocess.Popen(
        [*CLI, "listen", "--listen", "/ip4/127.0.0.1/tcp/0", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(30)
        raise AssertionError(f"listen exited: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


async def test_limits_file_and_allowlist_reach_the_listener(tmp_path: Path) -> None:
    limits = tmp_path / "limits.json"
    # Loopback is taken off the allowlist, so our dials use the (public) system scope, and
    # the file lets that scope take one inbound connection.
    limits.write_text(json.dumps({"system": {"conns_inbound": 1}}))
    proc, record = _start(
        "--limits", str(limits), "--allowlist", "none", "--allowlist", "/ip4/10.0.0.0/ipcidr/8"
    )
    first, second = await Host.create(), await Host.create()
    try:
        assert record["allowlist"] == ["10.0.0.0/8"]
        assert record["limits_file"] == str(limits)
        addr = str(record["addrs"][0])  # type: ignore[index]
        await first.connect(addr)
        with pytest.raises(Libp2pError) as info:
            await second.connect(addr)
        assert "system scope, conns_inbound" in str(info.value)
        assert "allowlisted_system" not in str(info.value)
    finally:
        await first.close()
        await second.close()
        err = _stop(proc)
    assert "system scope, conns_inbound" in err  # the listener's log names it too


def test_allowlist_adds_to_loopback() -> None:
    proc, record = _start("--allowlist", "10.0.0.0/8", "--allowlist", "/ip6/fd00::/ipcidr/8")
    try:
        assert record["allowlist"] == ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "fd00::/8"]
        assert record["limits_file"] is None
        sys_limits = record["system_limits"]
        assert isinstance(sys_limits, dict) and sys_limits["conns_inbound"] > 0
    finally:
        _stop(proc)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--allowlist", "not-a-network", "--allowlist 'not-a-network'"),
        ("--allowlist", "/dns4/example.com", "--allowlist '/dns4/example.com'"),
        ("--limits", "MISSING", "--limits"),
        ("--limits", "BAD", "unknown scope 'sytem'"),
    ],
)
def test_bad_flags_fail_before_listening(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    if value == "MISSING":
        value = str(tmp_path / "missing.json")
    elif value == "BAD":
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({"sytem": {"conns": 1}}))
        value = str(path)
    done = subprocess.run(
        [*CLI, "listen", "--listen", "/ip4/127.0.0.1/tcp/0", flag, value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done
    assert "error:" in done.stderr and message in done.stderr, done.stderr
    assert "listening on" not in done.stdout
