"""Every stack is a command line with the ``rapidp2p perf`` flags: start its server, run its
client, read its JSON lines. Nothing here knows which library is behind a command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
INTEROP = ROOT / "tests" / "interop"
EXIT_UNSUPPORTED = 3


#: rapidp2p's extension transports: its server also listens there (an ephemeral port) and
#: prints the address, which holds this; the client dials that address.
PRINTED = {"webtransport": "/webtransport/", "webrtc-direct": "/webrtc-direct/", "ws": "/ws/"}


class Unavailable(Exception):
    """This stack cannot run this row here; ``str()`` is the reason printed in the table."""


@dataclass
class Stack:
    """A perf implementation reachable through a command line (``argv`` + perf flags)."""

    name: str
    argv: list[str]
    #: A ceiling (iperf3, raw TCP) rather than a libp2p implementation.
    baseline: bool = False
    reason: str | None = None  # why it is unavailable (None: available)
    notes: list[str] = field(default_factory=list)
    #: Another build of this stack (``rapidp2p@PYTHON``): it runs the rows its base runs.
    variant_of: str | None = None
    #: What the client dials (``--transport``): ``tcp`` or ``quic-v1`` (the servers listen on
    #: both at the same port, as the test-plans servers do), or ``webtransport``,
    #: ``webrtc-direct`` or ``ws`` (rapidp2p's extensions, :data:`PRINTED`: its server also
    #: listens there and the client dials the printed address).
    transport: str = "tcp"
    #: The server's command line when it is another program than the client's (a cross
    #: column such as ``rapidp2p>rust-perf``: rapidp2p's client against rust-libp2p's perf
    #: server). None: ``argv`` serves too.
    server_argv: list[str] | None = None

    @property
    def available(self) -> bool:
        return self.reason is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: IO[bytes], limit: int = 600) -> str:
    path.flush()
    path.seek(0)
    text = path.read().decode(errors="replace").strip()
    return text[-limit:]


class Server:
    """A stack's ``--run-server`` process, ready once its TCP port accepts connections."""

    def __init__(self, stack: Stack, timeout: float = 60.0) -> None:
        self.stack = stack
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        if stack.name == "iperf3":
            argv = ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(self.port)]
        else:
            serve = stack.argv if stack.server_argv is None else stack.server_argv
            argv = [*serve, "--run-server", "--server-address", self.address]
            if stack.transport in PRINTED:  # rapidp2p's extensions (see cli/perf.py)
                argv += ["--transport", stack.transport]
        self._out: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise Unavailable(
                    f"server exited with {self.proc.returncode}: {_tail(self._err) or 'no output'}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise Unavailable(f"server did not listen within {timeout:.0f} s")
            time.sleep(0.05)
        if stack.transport in PRINTED:
            # The client dials the printed address (its ephemeral port, its /certhash values).
            self.address = self._printed_addr(PRINTED[stack.transport], deadline)
        time.sleep(0.2)  # the probe connection above must not count in what follows

    def _printed_addr(self, needle: str, deadline: float) -> str:
        while True:
            self._out.seek(0)
            for line in self._out.read().decode(errors="replace").splitlines():
                if needle in line:
                    return line.strip()
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise Unavailable(f"server printed no {needle} address")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_bytes(self) -> int:
        """Resident set of the server (and its children: wrapper scripts exec, but be safe)."""
        total = 0
        for pid in _tree(self.proc.pid):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU of the server's process tree so far (every thread, plus reaped
        children), from ``/proc/<pid>/stat``: what a 2-core shared machine disturbs least."""
        return sum(proc_cpu_seconds(pid) for pid in _tree(self.proc.pid))

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._err.close()
        if hasattr(self, "_out"):
            self._out.close()


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` (0.0 once it is gone or on non-Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(x) for x in fields[11:15]) / _TICK


def children_cpu_seconds() -> float:
    """User + system CPU of this process's reaped children (getrusage RUSAGE_CHILDREN)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class CpuMeter:
    """CPU seconds the client (a child this process waits for) and the server (a live child
    read through /proc) spent between ``__enter__`` and ``__exit__``. Only the client may be
    reaped inside the block, so the RUSAGE_CHILDREN delta is the client's alone."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.client = 0.0
        self.server = 0.0

    def __enter__(self) -> CpuMeter:
        self._c0, self._s0 = children_cpu_seconds(), self.srv.cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client = children_cpu_seconds() - self._c0
        self.server = self.srv.cpu_seconds() - self._s0


def _tree(pid: int) -> list[int]:
    out = [pid]
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            out.extend(_tree(int(child)))
    return out


@contextlib.contextmanager
def server(stack: Stack) -> Iterator[Server]:
    srv = Server(stack)
    try:
        yield srv
    finally:
        srv.stop()


def run_client(
    stack: Stack, address: str, *flags: str, timeout: float = 600.0
) -> list[dict[str, Any]]:
    """Runs the client; its JSON objects. Raises Unavailable (unsupported) or RuntimeError."""
    argv = [*stack.argv, "--server-address", address, "--transport", stack.transport, *flags]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"client timed out after {timeout:.0f} s") from None
    if proc.returncode == EXIT_UNSUPPORTED:
        raise Unavailable(
            proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "unsupported"
        )
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-3:] if proc.stderr.strip() else ["no stderr"]
        raise RuntimeError(f"client exited {proc.returncode}: {' | '.join(last)}")
    out = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def finals(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if o.get("type") == "final"]


def summary(objs: list[dict[str, Any]]) -> dict[str, Any]:
    found = [o for o in objs if o.get("type") == "summary"]
    if not found:
        raise Unavailable("client printed no summary (needs the --iterations extension)")
    return found[-1]


# ---- discovery -----------------------------------------------------------------------------


def _interop_peer(name: str, label: str) -> Stack:
    run = INTEROP / name / "run"
    stack = Stack(label, [str(run), "perf"])
    if not os.access(run, os.X_OK):
        stack.reason = f"{run.relative_to(ROOT)} not found"
        return stack
    sys.path.insert(0, str(INTEROP))
    try:
        import peers  # tests/interop/peers.py: builds once, caches, says why a build is impossible

        built = peers.ensure_built(name, log=sys.stderr)
    except Exception as exc:  # pytest missing, build crashed: say so, measure the rest
        stack.reason = f"build failed: {exc}"
        return stack
    finally:
        sys.path.remove(str(INTEROP))
    if not isinstance(built, Path):
        stack.reason = str(built).splitlines()[0]
    return stack


RUST_PERF_DIR = HERE / "rust-perf"
#: Column names: rust-libp2p's own perf binary, and the two cross columns (client>server).
RUST_PERF = "rust-libp2p-perf"
RAPIDP2P_TO_RUST_PERF = "rapidp2p>rust-perf"
RUST_PERF_TO_RAPIDP2P = "rust-perf>rapidp2p"


def rust_perf_stacks(wanted: list[str]) -> dict[str, Stack]:
    """rust-libp2p's official perf binary (crate libp2p-perf 0.3.0, built once into the
    interop cache by benches/e2e/rust-perf/build) behind benches/e2e/rust_perf_adapter.py,
    and the cross columns: rapidp2p's client against its server, its client against
    rapidp2p's server. Its TCP offers only TLS + yamux, so it runs the TLS and QUIC rows."""
    adapter = [sys.executable, str(HERE / "rust_perf_adapter.py"), str(RUST_PERF_DIR / "run"), "--"]
    ours = [sys.executable, "-m", "rapidp2p.cli", "perf"]
    reason = _build_rust_perf()
    out = {
        RUST_PERF: Stack(RUST_PERF, adapter, reason=reason),
        # Its server has a fresh identity per run: rapidp2p's client takes whichever it proves.
        RAPIDP2P_TO_RUST_PERF: Stack(
            RAPIDP2P_TO_RUST_PERF,
            [*ours, "--server-peer-id", "any"],
            reason=reason,
            server_argv=adapter,
        ),
        RUST_PERF_TO_RAPIDP2P: Stack(
            RUST_PERF_TO_RAPIDP2P, adapter, reason=reason, server_argv=ours
        ),
    }
    out[RUST_PERF].notes.append("rust-libp2p's own perf binary (libp2p-perf 0.3.0, TLS + yamux)")
    out[RAPIDP2P_TO_RUST_PERF].notes.append("rapidp2p client, libp2p-perf server")
    out[RUST_PERF_TO_RAPIDP2P].notes.append("libp2p-perf client, rapidp2p server")
    return {k: v for k, v in out.items() if k in wanted}


def _build_rust_perf() -> str | None:
    """Builds the perf binary (a no-op once cached); the reason it is unavailable, or None."""
    build = RUST_PERF_DIR / "build"
    try:
        proc = subprocess.run(
            [str(build)], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=3600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{build.relative_to(ROOT)}: {exc}"
    sys.stderr.write(proc.stderr[-2000:])
    if proc.returncode == 0:
        return None
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    if proc.returncode == 77:
        return last
    return f"{build.relative_to(ROOT)} failed (exit {proc.returncode}): {last}"


def _probe(stack: Stack) -> None:
    """Marks the stack unavailable when its ``run perf --run-server`` does not come up."""
    if not stack.available:
        return
    try:
        with server(stack):
            pass
    except Unavailable as exc:
        stack.reason = f"`{' '.join(Path(a).name for a in stack.argv)} --run-server` failed: {exc}"


def py_libp2p_stack() -> Stack:
    """py-libp2p's own PerfService: through ``py-peer/run perf`` when that exists, else through
    benches/e2e/pylibp2p_perf.py in the py-peer virtualenv."""
    via_peer = _interop_peer("py-peer", "py-libp2p")
    if via_peer.available:
        _probe(via_peer)
        if via_peer.available:
            return via_peer
    sys.path.insert(0, str(INTEROP))
    try:
        import peers

        venv_python = peers.cache_root() / "py-peer-venv" / "bin" / "python"
    finally:
        sys.path.remove(str(INTEROP))
    stack = Stack("py-libp2p", [str(venv_python), str(HERE / "pylibp2p_perf.py")])
    if not venv_python.exists():
        stack.reason = via_peer.reason or f"no py-libp2p virtualenv at {venv_python}"
    else:
        stack.notes.append(
            "py-libp2p 0.8.1 libp2p.perf.PerfService via benches/e2e/pylibp2p_perf.py"
        )
    return stack


def discover(wanted: list[str]) -> list[Stack]:
    """The stacks to measure, each probed (unavailable ones keep their reason)."""
    out: list[Stack] = []
    rust_perf: dict[str, Stack] | None = None
    for name in wanted:
        if name in (RUST_PERF, RAPIDP2P_TO_RUST_PERF, RUST_PERF_TO_RAPIDP2P):
            if rust_perf is None:
                rust_perf = rust_perf_stacks(wanted)
            st = rust_perf[name]
        elif name == "rapidp2p":
            st = Stack("rapidp2p", [sys.executable, "-m", "rapidp2p.cli", "perf"])
        elif name == "rapidp2p+psk":
            st = _with_psk(Stack("rapidp2p", [sys.executable, "-m", "rapidp2p.cli", "perf"]))
        elif name.startswith("rapidp2p@"):
            st = other_build(name.removeprefix("rapidp2p@"))
        elif name == "go-libp2p+psk":
            st = _with_psk(_interop_peer("go-peer", "go-libp2p"))
        elif name == "iperf3":
            st = Stack("iperf3", ["iperf3"], baseline=True)
            if not _which("iperf3"):
                st.reason = "iperf3 not installed (Debian: apt-get install -y iperf3)"
            out.append(st)
            continue
        elif name == "raw-tcp":
            st = Stack("raw-tcp", [sys.executable, str(HERE / "rawtcp_perf.py")], baseline=True)
        elif name == "go-libp2p":
            st = _interop_peer("go-peer", "go-libp2p")
        elif name == "rust-libp2p":
            st = _interop_peer("rust-peer", "rust-libp2p")
        elif name == "py-libp2p":
            st = py_libp2p_stack()
        else:
            raise ValueError(f"unknown stack {name!r}")
        _probe(st)
        out.append(st)
    return out


def other_build(python: str) -> Stack:
    """rapidp2p as installed in another environment (``--stacks rapidp2p,rapidp2p@PYTHON``):
    a before/after comparison of two builds in one run, on the same machine at the same load.
    The column is named after the environment's directory (``/work/venvs/before/bin/python``
    gives ``rapidp2p@before``)."""
    path = Path(python)
    label = path.parent.parent.name if path.parent.name == "bin" else path.name
    st = Stack(f"rapidp2p@{label}", [python, "-m", "rapidp2p.cli", "perf"], variant_of="rapidp2p")
    if not path.exists():
        st.reason = f"no interpreter at {python}"
    else:
        st.notes.append(f"the rapidp2p installed for {python}")
    return st


def _with_psk(base: Stack) -> Stack:
    """``base`` in a private network (``--swarm-key``, a fresh key file): the PSK's cost."""
    import atexit
    import shutil

    from rapidp2p.pnet import PreSharedKey

    tmp = tempfile.mkdtemp(prefix="rapidp2p-bench-")
    atexit.register(shutil.rmtree, tmp, True)
    path = Path(tmp) / "swarm.key"
    PreSharedKey.generate().write(path)
    st = Stack(f"{base.name}+psk", [*base.argv, "--swarm-key", str(path)], reason=base.reason)
    st.notes.append(f"{base.name} with a PSK (pnet, XSalsa20 under Noise)")
    return st


def _which(cmd: str) -> bool:
    return any(os.access(Path(d) / cmd, os.X_OK) for d in os.environ.get("PATH", "").split(":"))
