"""``rapidp2p pubsub sub|pub`` as separate processes over TCP loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import IO

import pytest

CLI = [sys.executable, "-m", "rapidp2p.cli"]


def _loopback_addr(stderr: IO[bytes]) -> str:
    """The subscriber's own loopback address, from its stderr (stdout is for messages)."""
    for raw in stderr:
        line = raw.decode().strip()
        if line.startswith("/ip4/127.0.0.1/tcp/") and "/p2p/" in line:
            return line
    raise AssertionError("subscriber printed no loopback address")


def test_pub_reaches_sub_with_sender() -> None:
    # Default listen: all interfaces; the test dials the loopback address only.
    sub = subprocess.Popen(
        [*CLI, "pubsub", "sub", "chat"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert sub.stdout is not None and sub.stderr is not None
        addr = _loopback_addr(sub.stderr)
        sub_peer = addr.rsplit("/", 1)[-1]
        for text in ("hello world", "second"):
            pub = subprocess.run(
                [*CLI, "pubsub", "pub", "chat", text, "--connect", addr, "--json"],
                capture_output=True,
                timeout=60,
            )
            assert pub.returncode == 0, pub.stderr.decode()
            result = json.loads(pub.stdout)
            assert result["topic"] == "chat" and result["subscribers"] == 1
            assert result["delivered_to"] == 1
            sender, _, data = sub.stdout.readline().decode().rstrip("\n").partition(": ")
            assert data == text
            assert sender.startswith("12D3KooW") and sender != sub_peer
        human = subprocess.run(
            [*CLI, "pubsub", "pub", "chat", "third", "--connect", addr],
            capture_output=True,
            timeout=60,
        )
        assert human.returncode == 0, human.stderr.decode()
        assert human.stdout.decode() == (
            "published 5 bytes to 'chat': delivered to 1 of 1 peer (1 subscribed)\n"
        )
    finally:
        sub.kill()
        sub.wait()


def test_sub_json_messages() -> None:
    sub = subprocess.Popen(
        [*CLI, "pubsub", "sub", "room", "--listen", "/ip4/127.0.0.1/tcp/0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert sub.stdout is not None and sub.stderr is not None
        addr = _loopback_addr(sub.stderr)
        pub = subprocess.run(
            [*CLI, "pubsub", "pub", "room", "héllo", "--connect", addr],
            capture_output=True,
            timeout=60,
        )
        assert pub.returncode == 0, pub.stderr.decode()
        msg = json.loads(sub.stdout.readline())
        assert msg["topic"] == "room" and msg["data"] == "héllo"
        assert msg["from"].startswith("12D3KooW") and msg["seqno"]
    finally:
        sub.kill()
        sub.wait()


def test_pub_without_subscriber_times_out() -> None:
    sub = subprocess.Popen(
        [*CLI, "pubsub", "sub", "other", "--listen", "/ip4/127.0.0.1/tcp/0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert sub.stderr is not None
        addr = _loopback_addr(sub.stderr)
        pub = subprocess.run(
            [*CLI, "pubsub", "pub", "chat", "x", "--connect", addr, "--wait", "0.5"],
            capture_output=True,
            timeout=60,
        )
        assert pub.returncode == 1
        assert b"no peer subscribed" in pub.stderr
    finally:
        sub.kill()
        sub.wait()


def test_no_sign_pub_to_a_signing_subscriber_explains_itself() -> None:
    sub = subprocess.Popen(
        [*CLI, "pubsub", "sub", "chat", "--listen", "/ip4/127.0.0.1/tcp/0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert sub.stderr is not None
        addr = _loopback_addr(sub.stderr)
        pub = subprocess.run(
            [*CLI, "pubsub", "pub", "chat", "x", "--connect", addr, "--no-sign", "--wait", "3"],
            capture_output=True,
            timeout=60,
        )
        # Whatever the exit code (issue 19 decides it from delivery), the likely cause is named.
        assert b"--no-sign messages carry no author and no signature" in pub.stderr
        assert b"drop them" in pub.stderr
    finally:
        sub.kill()
        sub.wait()


@pytest.mark.xfail(
    strict=True,
    reason="issue 13 point 7, open: GossipSub has no negative acknowledgement, so `pub` sees "
    "the signing subscriber read the unsigned message (stream consumed) but not that its "
    "validator dropped it; pub exits 0 after the warning on stderr",
)
def test_no_sign_pub_to_a_signing_subscriber_exits_non_zero() -> None:
    sub = subprocess.Popen(
        [*CLI, "pubsub", "sub", "chat", "--listen", "/ip4/127.0.0.1/tcp/0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert sub.stderr is not None
        addr = _loopback_addr(sub.stderr)
        pub = subprocess.run(
            [*CLI, "pubsub", "pub", "chat", "x", "--connect", addr, "--no-sign", "--wait", "3"],
            capture_output=True,
            timeout=60,
        )
        assert pub.returncode != 0, pub.stdout
    finally:
        sub.kill()
        sub.wait()
