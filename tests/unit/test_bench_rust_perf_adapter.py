"""The bench suite's adapter for rust-libp2p's official perf binary (benches/e2e/
rust_perf_adapter.py): flag translation, parsing the binary's JSON lines, and its exit codes,
against a stand-in program that prints what libp2p-perf 0.3.0 prints (the real binary is
built only by the benchmark session, never in CI)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ADAPTER = Path(__file__).resolve().parents[2] / "benches" / "e2e" / "rust_perf_adapter.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rust_perf_adapter", ADAPTER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rust_perf_adapter"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


adapter = _load()

# What libp2p-perf 0.3.0's client prints (serde, camelCase), one intermediate and the final.
REAL_OUTPUT = (
    '{"type":"intermediate","timeSeconds":1.000042,"uploadBytes":52428800,"downloadBytes":0}\n'
    '{"type":"final","timeSeconds":1.734,"uploadBytes":104857600,"downloadBytes":0}\n'
)


def test_plan_server_and_client_flags() -> None:
    srv = adapter.plan(["--run-server", "--server-address", "127.0.0.1:9", "--security", "tls"])
    assert srv == adapter.Plan(["--run-server", "--server-address", "127.0.0.1:9"], server=True)
    # A missing size becomes 0 (the binary unwraps both); --transport passes through.
    cli = adapter.plan(["--server-address", "127.0.0.1:9", "--transport", "quic-v1",
                        "--upload-bytes", "5"])  # fmt: skip
    assert cli.server is False
    assert cli.argv == ["--server-address", "127.0.0.1:9", "--transport", "quic-v1",
                        "--upload-bytes", "5", "--download-bytes", "0"]  # fmt: skip
    # --iterations 1 is what a single run is: accepted.
    assert adapter.plan(["--server-address", "h:1", "--iterations", "1"]).server is False


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--security", "noise"], "Noise"),
        (["--iterations", "30"], "--iterations"),
        (["--reuse-connection", "--iterations", "2"], "--reuse-connection"),
        (["--streams", "1000"], "--streams"),
        (["--concurrency", "8", "--connect-only"], "--connect-only"),
        (["--swarm-key", "/k"], "--swarm-key"),
        (["--transport", "webrtc"], "webrtc"),
    ],
)
def test_plan_refuses_what_the_binary_cannot_do(flags: list[str], reason: str) -> None:
    with pytest.raises(adapter.Unsupported, match=reason):
        adapter.plan(["--server-address", "127.0.0.1:9", *flags])


def test_final_report_parses_the_binary_output() -> None:
    got = adapter.final_report(REAL_OUTPUT, 104857600, 0)
    assert got == {"type": "final", "timeSeconds": 1.734, "uploadBytes": 104857600,
                   "downloadBytes": 0}  # fmt: skip
    with pytest.raises(ValueError, match="no final"):
        adapter.final_report(REAL_OUTPUT.splitlines()[0], 104857600, 0)
    with pytest.raises(ValueError, match="asked for"):
        adapter.final_report(REAL_OUTPUT, 1, 0)
    bad_time = '{"type":"final","timeSeconds":0,"uploadBytes":1,"downloadBytes":0}'
    with pytest.raises(ValueError, match="timeSeconds"):
        adapter.final_report(bad_time, 1, 0)


def _fake_perf(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "perf.py"
    script.write_text(textwrap.dedent(body))
    return [sys.executable, str(script)]


def _run(command: list[str], *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ADAPTER), *command, "--", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_adapter_runs_the_client_and_reemits_its_final(tmp_path: Path) -> None:
    # The stand-in checks it got the binary's own flags, then prints libp2p-perf's lines.
    command = _fake_perf(
        tmp_path,
        f"""
        import sys
        assert sys.argv[1:] == ["--server-address", "127.0.0.1:9", "--transport", "tcp",
                                "--upload-bytes", "104857600", "--download-bytes", "0"], sys.argv
        sys.stdout.write({REAL_OUTPUT!r})
        """,
    )
    proc = _run(command, "--server-address", "127.0.0.1:9", "--transport", "tcp",
                "--upload-bytes", "104857600", "--security", "tls")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert json.loads(line)["timeSeconds"] == 1.734


def test_adapter_exit_codes(tmp_path: Path) -> None:
    panics = _fake_perf(
        tmp_path,
        """
        import sys
        sys.stderr.write("thread 'tokio-runtime-worker' panicked at src/bin/perf.rs:1:1:\\n"
                         "Outgoing connection error: Transport\\n"
                         "note: run with `RUST_BACKTRACE=1` to display a backtrace\\n")
        sys.exit(101)
        """,
    )
    proc = _run(panics, "--server-address", "127.0.0.1:9", "--upload-bytes", "1")
    assert proc.returncode == 1
    assert "exited 101: Outgoing connection error" in proc.stderr
    # Unsupported: exit 3 (the suite's "n/a") without running the binary at all.
    proc = _run(["/nonexistent/perf"], "--server-address", "127.0.0.1:9", "--streams", "4")
    assert proc.returncode == adapter.EXIT_UNSUPPORTED
    assert "--streams" in proc.stderr
    assert _run(["/nonexistent/perf"]).returncode == adapter.EXIT_UNSUPPORTED
