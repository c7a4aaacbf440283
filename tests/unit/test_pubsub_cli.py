"""``rapidp2p pubsub sub|pub`` as separate processes over TCP loopback."""

from __future__ import annotations

import subprocess
import sys

CLI = [sys.executable, "-m", "rapidp2p.cli"]


def test_pub_reaches_sub() -> None:
    sub = subprocess.Popen(
        [*CLI, "pubsub", "sub", "chat"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert sub.stdout is not None
        addr = sub.stdout.readline().decode().strip()
        assert addr.startswith("/ip4/127.0.0.1/tcp/") and "/p2p/" in addr
        for text in ("hello world", "second"):
            pub = subprocess.run(
                [*CLI, "pubsub", "pub", "chat", text, "--connect", addr],
                capture_output=True,
                timeout=60,
            )
            assert pub.returncode == 0, pub.stderr.decode()
            assert sub.stdout.readline().decode() == text + "\n"
    finally:
        sub.kill()
        sub.wait()


def test_pub_without_subscriber_times_out() -> None:
    sub = subprocess.Popen(
        [*CLI, "pubsub", "sub", "other"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert sub.stdout is not None
        addr = sub.stdout.readline().decode().strip()
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
