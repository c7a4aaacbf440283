"""Every example in ``examples/`` runs in one command and says what it did.

Each runs as a subprocess with a timeout (they are bounded, loopback only): in its ``--demo``
mode (all peers in one process), and for chat and file sharing also as two processes, the way
a reader would run them in two terminals. The kubo example also runs against the go-libp2p
interop peer (``interop``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

import rapidp2p

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TIMEOUT = 120
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


def _env() -> dict[str, str]:
    """The environment with the tested rapidp2p (wheel or source tree) first on the path."""
    env = dict(os.environ)
    package_parent = str(Path(rapidp2p.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


def run_example(name: str, *args: str, stdin: str = "") -> str:
    """Runs ``python examples/<name> args``; returns stdout (fails with stderr otherwise)."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(),
        check=False,
    )
    assert proc.returncode == 0, f"{name} {args} exited {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


class Background:
    """An example left running (a listener): its first ``KEY value`` lines, then its output."""

    def __init__(self, name: str, *args: str, stdin: str = "") -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives with the process)
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=_env(),
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(stdin)
        self.proc.stdin.close()
        self.lines: list[str] = []

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def wait_for(self, key: str) -> str:
        """The value of the first ``key value`` line (the process must print it)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # bounded by the pytest timeout
            self.lines.append(line)
            if line.startswith(key + " "):
                return line.split(" ", 1)[1].strip()
        raise AssertionError(f"no {key} line: {self.lines} {self.stderr()}")

    def finish(self, timeout: float = TIMEOUT) -> str:
        """Waits for the exit (must be 0); returns all of stdout."""
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()  # until the process closes it (exit)
        assert self.proc.wait(timeout=timeout) == 0, self.stderr()
        return "".join(self.lines) + out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def test_chat_demo() -> None:
    out = run_example("chat.py", "--demo")
    assert "alice got: hi alice" in out and "alice got: how are you?" in out
    assert "bob got: hello bob, you said 'how are you?'" in out
    assert "demo done: 2 lines each way" in out


def test_chat_two_processes() -> None:
    listener = Background("chat.py", "listen", "--once", stdin="hi from the listener\n")
    try:
        addr = listener.wait_for("LISTENING")
        assert "/p2p/12D3KooW" in addr
        dialer_out = run_example("chat.py", "dial", addr, stdin="hello listener\nbye\n")
        listener_out = listener.finish()
    finally:
        listener.kill()
    listener_id = addr[-8:]  # the examples name a peer by the end of its ID
    assert f"* connected to {listener_id}" in dialer_out
    assert f"<{listener_id}> hi from the listener" in dialer_out
    assert f"* {listener_id} left" in dialer_out
    joined = [ln for ln in listener_out.splitlines() if ln.endswith(" joined")]
    assert len(joined) == 1
    dialer_id = joined[0].split()[1]
    assert f"<{dialer_id}> hello listener" in listener_out
    assert f"<{dialer_id}> bye" in listener_out
    assert f"* {dialer_id} left" in listener_out


def test_chat_listener_with_stdin_from_dev_null() -> None:
    """A listener started in the background (stdin is /dev/null, which the event loop cannot
    watch) chats and exits cleanly instead of aborting."""
    listener = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "chat.py"), "listen", "--once"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert listener.stdout is not None
        addr = listener.stdout.readline().split()[1]
        dialer_out = run_example("chat.py", "dial", addr, stdin="hello\n")
        out, err = listener.communicate(timeout=TIMEOUT)
    finally:
        if listener.poll() is None:
            listener.kill()
    assert "* connected to" in dialer_out
    assert "hello" in out
    assert listener.returncode == 0, err


def test_file_share_demo() -> None:
    out = run_example("file_share.py", "--demo")
    assert "node 1 provides bafkrei" in out
    assert "fetched 262168 bytes from node 1: sha256 ok" in out


def test_file_share_two_processes(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(os.urandom(100_000))
    provider = Background("file_share.py", "provide", str(source))
    try:
        cid = provider.wait_for("CID")
        addr = provider.wait_for("LISTENING")
        target = tmp_path / "fetched"
        out = run_example("file_share.py", "fetch", cid, "--bootstrap", addr, "-o", str(target))
    finally:
        provider.kill()
    assert f"fetched 100000 bytes of {cid} from {addr.rsplit('/', 1)[1]}: sha256 ok" in out
    assert target.read_bytes() == source.read_bytes()


def test_file_share_rejects_bytes_that_do_not_match_the_cid() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import file_share
    finally:
        sys.path.remove(str(EXAMPLES))
    cid = file_share.cid_of(b"the real content")
    assert file_share.sha256_of_cid(cid) != file_share.sha256_of_cid(file_share.cid_of(b"other"))
    assert rapidp2p._core.wire.cid_encode(0x55, rapidp2p._core.wire.multihash_sha256(b"x")) == (
        file_share.cid_of(b"x")
    )


def test_pubsub_rooms_demo() -> None:
    out = run_example("pubsub_rooms.py", "--demo")
    assert "alice received 2 messages" in out
    assert "bob received 3 messages" in out
    assert "carol received 3 messages" in out
    assert "carol sees [#general] alice" in out and "bob sees [#random] carol" in out
    assert "alice sees [#random]" not in out  # alice is not in #random


def test_dht_crawler_demo() -> None:
    out = run_example("dht_crawler.py", "--demo", "--nodes", "6")
    assert "crawled 6 peers, 6 answered" in out
    rows = [ln for ln in out.splitlines() if ln.startswith("12D3KooW")]
    assert len(rows) == 6
    for row in rows:
        _peer, agent, neighbours, addr = row.split()
        assert agent.startswith("rapidp2p/") and addr.startswith("/ip4/127.0.0.1/tcp/")
        assert int(neighbours) >= 1


def test_kubo_example_demo() -> None:
    out = run_example("kubo_interop.py", "--demo")
    provider = out.split("provider ", 1)[1].split()[0]
    assert "dht protocol /ipfs/lan/kad/1.0.0" in out
    assert f"provider of {CID}: {provider}" in out
    assert f"1 providers of {CID}" in out
    assert f"provided {CID} to " in out
    assert f"the peer lists us as a provider of {CID}" in out


@pytest.mark.interop
@pytest.mark.peers("go-peer")
def test_kubo_example_against_go_libp2p() -> None:
    """The example against go-libp2p-kad-dht (what kubo runs): identify, ping, and provider
    records both ways through the go node."""
    from peers import PeerProcess, _peer_env, build_peer

    go_dir = build_peer("go-peer")
    with PeerProcess("go-peer", "/ip4/127.0.0.1/tcp/0", extra_args=["--dht", "server"]) as go:
        first = run_example("kubo_interop.py", go.addr, "--provide", CID)
        assert f"connected to {go.peer_id}" in first
        assert "go-libp2p" in first.split("agent ", 1)[1].splitlines()[0]
        assert "dht protocol /ipfs/kad/1.0.0" in first
        assert len(first.split("ping ", 1)[1].splitlines()[0].split(" ms")) == 4  # 3 RTTs
        assert f"provided {CID} to 1 peers" in first
        assert f"the peer lists us as a provider of {CID}" in first
        ours = first.split("local peer id ", 1)[1].split()[0]
        # go-libp2p-kad-dht, as a client of the go node, finds us as the provider ...
        found = subprocess.run(
            [str(go_dir / "run"), "dht", "find-providers", CID, "--bootstrap", go.addr],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=_peer_env(),
            check=False,
        )
        assert found.returncode == 0, found.stderr
        assert found.stdout.split() == [ours]
        # ... and so does a second run of the example.
        second = run_example("kubo_interop.py", go.addr, "--find-providers", CID)
        assert f"provider of {CID}: {ours}" in second


def test_browser_dashboard_demo() -> None:
    out = run_example("browser_dashboard.py", "--demo")
    assert "lists 2 addresses" in out
    for kind in ("ws", "webtransport"):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{kind}: connected"))
        assert line.endswith("1 MiB echo intact"), line
    assert "demo done" in out


def test_browser_dashboard_serves_its_page() -> None:
    node = Background("browser_dashboard.py")
    try:
        url = node.wait_for("DASHBOARD")
        addrs = [node.wait_for("LISTENING"), node.wait_for("LISTENING")]

        with urllib.request.urlopen(url, timeout=30) as resp:
            text = resp.read().decode()
        assert all(a in text for a in addrs) and "WebTransport" in text
        assert any("/quic-v1/webtransport/certhash/" in a for a in addrs)
        assert any(a.split("/p2p/")[0].endswith("/ws") for a in addrs)
        with urllib.request.urlopen(url + "addrs.json", timeout=30) as resp:
            assert sorted(json.loads(resp.read())["addrs"]) == sorted(addrs)
    finally:
        node.kill()
