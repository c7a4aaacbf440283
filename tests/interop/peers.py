"""Helpers that build and drive the interop peers in ``tests/interop/<name>/``.

Every peer directory holds two executables (contract in the helper brief, "Interop peers"):

* ``build``: idempotent, caches its output, prints progress to stderr. When the toolchain it
  needs is missing it exits with :data:`EXIT_UNAVAILABLE` (77) and says why on its last stderr
  line; :func:`build_peer` then skips the calling test with that reason (and the interop
  ``conftest.py`` turns that skip into a failure under ``CI``).
* ``run listen [--listen MA]`` prints ``LISTENING <ma>/p2p/<id>`` and serves ping, identify and
  ``/echo/1.0.0`` until killed or stdin closes; ``run dial MA [--ping] [--identify]
  [--echo-bytes N]`` prints one JSON object per line and exits 0 only when every check passed.

``browser-peer`` is the exception: a browser cannot listen, so its ``run`` has ``dial`` and
``serve`` (one Chromium answering dial requests, driven by ``browser.py``), not ``listen``.

Typical use from an asyncio test (rapidp2p runs in the same event loop, so the dialing peer
must be awaited, never run blocking)::

    async with listening_peer("go-peer") as addr:
        ...  # rapidp2p dials addr
    results = await dial_from_peer("go-peer", str(rapidp2p_addr), ping=True, echo_bytes=1 << 20)
    assert find_result(results, "echo_bytes")["ok"]

Peers build once per test session: the interop conftest pre-builds them after collection
(outside the per-test timeout), and a file lock keeps parallel pytest runs from building the
same peer at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pytest

INTEROP_DIR = Path(__file__).resolve().parent
EXIT_UNAVAILABLE = 77
"""Exit code of a ``build`` script whose toolchain is missing (automake's SKIP code)."""

BUILD_TIMEOUT = 1800.0
LISTEN_TIMEOUT = 60.0
DIAL_TIMEOUT = 120.0
_STDERR_TAIL = 8000


class PeerError(RuntimeError):
    """A peer process failed: it exited early, timed out, or reported a failed check."""


class PeerBuildError(PeerError):
    """A peer's ``build`` script failed; the message carries its log."""


class PeerUnavailable(Exception):
    """The peer cannot be built on this machine (toolchain missing); ``str()`` says why."""


def cache_root() -> Path:
    """Where ``build`` scripts keep their outputs; survives between CI runs on one machine."""
    explicit = os.environ.get("RAPIDP2P_INTEROP_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "rapidp2p-interop"


def available_peers() -> list[str]:
    """Names of every peer directory that has an executable ``build`` and ``run``."""
    return sorted(
        d.name
        for d in INTEROP_DIR.iterdir()
        if d.is_dir() and os.access(d / "build", os.X_OK) and os.access(d / "run", os.X_OK)
    )


def peer_dir(name: str) -> Path:
    """The peer's directory; raises ``ValueError`` for an unknown name."""
    d = INTEROP_DIR / name
    if not (d / "build").is_file() or not (d / "run").is_file():
        raise ValueError(f"no interop peer {name!r} (expected {d}/build and {d}/run)")
    return d


def _peer_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("RAPIDP2P_INTEROP_CACHE", str(cache_root()))
    return env


# name -> peer dir (built), PeerUnavailable or PeerBuildError (remembered for the session).
_built: dict[str, Path | PeerUnavailable | PeerBuildError] = {}
_built_lock = threading.Lock()


def _tail(text: str, limit: int = _STDERR_TAIL) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _run_build(name: str, log: IO[str]) -> Path | PeerUnavailable | PeerBuildError:
    directory = peer_dir(name)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    started = time.monotonic()
    with open(root / f"{name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # parallel sessions build one at a time
        proc = subprocess.Popen(
            [str(directory / "build")],
            cwd=directory,
            env=_peer_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        assert proc.stdout is not None
        timer = threading.Timer(BUILD_TIMEOUT, _kill_group, args=(proc,))
        timer.start()
        try:
            for line in proc.stdout:
                lines.append(line)
                log.write(f"[build {name}] {line}")
                log.flush()
            code = proc.wait()
        finally:
            timer.cancel()
            _kill_group(proc)
    elapsed = time.monotonic() - started
    output = "".join(lines)
    (root / f"{name}-build.log").write_text(output)
    if code == EXIT_UNAVAILABLE:
        last = next((ln.strip() for ln in reversed(lines) if ln.strip()), "no reason given")
        return PeerUnavailable(f"interop peer {name} unavailable: {last}")
    if code != 0:
        return PeerBuildError(
            f"building interop peer {name} failed (exit {code}, {elapsed:.1f}s):\n{_tail(output)}"
        )
    log.write(f"[build {name}] ready in {elapsed:.1f}s\n")
    log.flush()
    return directory


def ensure_built(name: str, log: IO[str] | None = None) -> Path | PeerUnavailable | PeerBuildError:
    """Builds ``name`` once per process and returns the peer dir or the remembered failure."""
    with _built_lock:
        if name not in _built:
            _built[name] = _run_build(name, log if log is not None else sys.stderr)
        return _built[name]


def build_peer(name: str) -> Path:
    """Builds the peer once per session; skips the test if its toolchain is missing.

    Raises :class:`PeerBuildError` (with the build log) when the build fails.
    """
    result = ensure_built(name)
    if isinstance(result, PeerUnavailable):
        pytest.skip(str(result))
    if isinstance(result, PeerBuildError):
        raise result
    return result


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    """Kills the process and everything it spawned (it leads its own session)."""
    if proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stray children of an exited leader
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _dial_args(
    *, ping: bool, identify: bool, echo_bytes: int | None, extra: Sequence[str]
) -> list[str]:
    args: list[str] = []
    if ping:
        args.append("--ping")
    if identify:
        args.append("--identify")
    if echo_bytes is not None:
        args += ["--echo-bytes", str(echo_bytes)]
    args += list(extra)
    return args


def _parse_json_lines(name: str, stdout: str, stderr: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PeerError(
                f"{name} dial printed a non-JSON line {line!r}\nstderr:\n{_tail(stderr)}"
            ) from exc
        if not isinstance(obj, dict):
            raise PeerError(f"{name} dial printed {line!r}, not a JSON object")
        results.append(obj)
    return results


class PeerProcess:
    """A running ``run listen`` peer; a sync or async context manager.

    ``addr`` is the full multiaddr it printed (with ``/p2p/<id>``), ``peer_id`` its id. The
    process leads its own process group, which is killed at exit; ``stderr_text()`` returns what
    it wrote so far, for failure messages.
    """

    def __init__(
        self,
        name: str,
        listen: str | None = None,
        *,
        extra_args: Sequence[str] = (),
        timeout: float = LISTEN_TIMEOUT,
        command: str = "listen",
    ) -> None:
        self.name = name
        self.command = command
        self.listen = listen
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self.addr = ""
        self.peer_id = ""
        self._proc: subprocess.Popen[str] | None = None
        self._stderr_file: IO[bytes] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def start(self) -> PeerProcess:
        """Builds (once), starts the peer and waits for its ``LISTENING`` line."""
        directory = build_peer(self.name)
        args = [str(directory / "run"), self.command]
        if self.listen is not None:
            args += ["--listen", self.listen]
        args += self.extra_args
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 (lives with the peer)
        self._proc = subprocess.Popen(
            args,
            cwd=directory,
            env=_peer_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise
        return self

    def _pump_stdout(self) -> None:
        """Drains stdout for the process' whole life so it never blocks on a full pipe."""
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerError(
                    f"{self.name} printed no LISTENING line within {self.timeout}s\n"
                    f"stderr:\n{self.stderr_text()}"
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self._proc.wait() if self._proc is not None else None
                raise PeerError(
                    f"{self.name} exited (code {code}) before listening\n"
                    f"stderr:\n{self.stderr_text()}"
                )
            if line.startswith("LISTENING "):
                self.addr = line.split(" ", 1)[1].strip()
                self.peer_id = self.addr.rsplit("/p2p/", 1)[-1] if "/p2p/" in self.addr else ""
                if not self.peer_id:
                    raise PeerError(f"{self.name} listen address lacks /p2p/: {self.addr!r}")
                return

    async def next_line(self, timeout: float = LISTEN_TIMEOUT) -> str:
        """The next stdout line after ``LISTENING`` (for peers that keep reporting); raises
        PeerError when the peer exits or says nothing within ``timeout``."""
        try:
            line = await asyncio.to_thread(self._lines.get, True, timeout)
        except queue.Empty:
            raise PeerError(
                f"{self.name} printed nothing within {timeout}s\nstderr:\n{self.stderr_text()}"
            ) from None
        if line is None:
            self._lines.put(None)  # every later call sees the end too
            raise PeerError(f"{self.name} exited\nstderr:\n{self.stderr_text()}")
        return line.rstrip("\n")

    def stderr_text(self) -> str:
        """The peer's stderr so far (the tail, if long)."""
        if self._stderr_file is None:
            return ""
        self._stderr_file.flush()
        self._stderr_file.seek(0)
        return _tail(self._stderr_file.read().decode(errors="replace"))

    @property
    def returncode(self) -> int | None:
        """None while the peer runs."""
        return None if self._proc is None else self._proc.poll()

    def stop(self) -> None:
        """Closes stdin (the polite stop), then kills the whole process group."""
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
        _kill_group(proc)

    def close(self) -> None:
        """Stops the peer and frees its stderr file."""
        self.stop()
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def __enter__(self) -> PeerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> PeerProcess:
        # Built first in this thread so a skip or build error surfaces unchanged.
        build_peer(self.name)
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)


@contextlib.asynccontextmanager
async def listening_peer(
    name: str, listen: str | None = None, *, timeout: float = LISTEN_TIMEOUT
) -> AsyncIterator[str]:
    """``async with listening_peer("go-peer") as addr:`` yields the peer's full multiaddr."""
    async with PeerProcess(name, listen, timeout=timeout) as peer:
        yield peer.addr


@contextlib.contextmanager
def listening_peer_sync(
    name: str, listen: str | None = None, *, timeout: float = LISTEN_TIMEOUT
) -> Iterator[str]:
    """Blocking twin of :func:`listening_peer`, for tests that run no event loop."""
    with PeerProcess(name, listen, timeout=timeout) as peer:
        yield peer.addr


def run_dial(
    name: str, multiaddr: str, *flags: str, timeout: float = DIAL_TIMEOUT
) -> list[dict[str, Any]]:
    """Runs ``run dial multiaddr *flags`` blocking; returns its JSON lines.

    Raises :class:`PeerError` with the peer's stderr on a non-zero exit or a timeout. Never call
    this from inside an event loop that also serves the dialed address: use
    :func:`dial_from_peer`.
    """
    directory = build_peer(name)
    proc = subprocess.Popen(
        [str(directory / "run"), "dial", multiaddr, *flags],
        cwd=directory,
        env=_peer_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        raise PeerError(
            f"{name} dial {multiaddr} {' '.join(flags)} timed out after {timeout}s\n"
            f"stdout:\n{_tail(stdout)}\nstderr:\n{_tail(stderr)}"
        ) from None
    finally:
        _kill_group(proc)
    return _check_dial(name, multiaddr, flags, proc.returncode, stdout, stderr)


def _check_dial(
    name: str, multiaddr: str, flags: Sequence[str], code: int | None, stdout: str, stderr: str
) -> list[dict[str, Any]]:
    if code != 0:
        raise PeerError(
            f"{name} dial {multiaddr} {' '.join(flags)} exited {code}\n"
            f"stdout:\n{_tail(stdout)}\nstderr:\n{_tail(stderr)}"
        )
    return _parse_json_lines(name, stdout, stderr)


async def run_dial_async(
    name: str,
    multiaddr: str,
    *flags: str,
    timeout: float = DIAL_TIMEOUT,
    command: str = "dial",
) -> list[dict[str, Any]]:
    """Like :func:`run_dial`, but awaits the process so the event loop keeps running.

    ``command`` replaces ``dial`` for peers' other client modes (``multiaddr`` is then just
    the first argument, e.g. ``--connect``).
    """
    directory = build_peer(name)
    proc = await asyncio.create_subprocess_exec(
        str(directory / "run"),
        command,
        multiaddr,
        *flags,
        cwd=directory,
        env=_peer_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = await proc.communicate()
        raise PeerError(
            f"{name} dial {multiaddr} {' '.join(flags)} timed out after {timeout}s\n"
            f"stdout:\n{_tail(out.decode(errors='replace'))}\n"
            f"stderr:\n{_tail(err.decode(errors='replace'))}"
        ) from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # children left by an exited leader
    return _check_dial(
        name,
        multiaddr,
        flags,
        proc.returncode,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
    )


async def dial_from_peer(
    name: str,
    multiaddr: str,
    *,
    ping: bool = False,
    identify: bool = False,
    echo_bytes: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = DIAL_TIMEOUT,
) -> list[dict[str, Any]]:
    """Makes peer ``name`` dial ``multiaddr`` and run the requested checks; its JSON lines."""
    args = _dial_args(ping=ping, identify=identify, echo_bytes=echo_bytes, extra=extra_args)
    return await run_dial_async(name, multiaddr, *args, timeout=timeout)


def dial_from_peer_sync(
    name: str,
    multiaddr: str,
    *,
    ping: bool = False,
    identify: bool = False,
    echo_bytes: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = DIAL_TIMEOUT,
) -> list[dict[str, Any]]:
    """Blocking twin of :func:`dial_from_peer` (the dialed address must be served elsewhere)."""
    args = _dial_args(ping=ping, identify=identify, echo_bytes=echo_bytes, extra=extra_args)
    return run_dial(name, multiaddr, *args, timeout=timeout)


def find_result(results: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The single JSON line that has ``key`` (e.g. ``"ping_rtt_ms"``); fails clearly if absent."""
    found = [r for r in results if key in r]
    if len(found) != 1:
        raise AssertionError(f"expected exactly one {key!r} line in {results!r}")
    return found[0]
