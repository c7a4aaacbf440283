"""One headless Chromium running js-libp2p (``tests/interop/browser-peer``), driven from tests.

:class:`BrowserPeer` starts ``browser-peer/run serve`` (a Node.js driver that launches Chromium
once through puppeteer-core and serves the bundled page on loopback); each :meth:`BrowserPeer.dial`
loads the page in a new tab, which dials a multiaddr with a fresh js-libp2p node and reports JSON.
Launching Chromium costs about a second, so a test module shares one ``BrowserPeer`` (a
module-scoped fixture) and every test gets fresh tabs. It is started blocking (pytest fixtures
outside the event loop) and dialed with ``await`` (the rapidp2p host under test runs in the
test's event loop, so the request must not block it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import subprocess
import tempfile
import threading
import time
from types import TracebackType
from typing import IO, Any

from peers import _kill_group, _peer_env, _tail, build_peer

NAME = "browser-peer"
START_TIMEOUT = 60.0
DIAL_TIMEOUT = 90.0


class BrowserError(RuntimeError):
    """The driver or the browser failed (not the page's own dial, which reports ``error``)."""


class BrowserPeer:
    """The driver process and its Chromium; a sync context manager.

    ``url`` is the page's address, ``version`` the browser's (e.g. ``HeadlessChrome/156...``).
    """

    def __init__(self, *, timeout: float = START_TIMEOUT) -> None:
        self.timeout = timeout
        self.url = ""
        self.version = ""
        self._proc: subprocess.Popen[str] | None = None
        self._stderr_file: IO[bytes] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._request_lock = threading.Lock()  # the driver answers one request at a time
        self._pump: threading.Thread | None = None

    def start(self) -> BrowserPeer:
        """Builds the peer (once per session), launches the driver and waits for ``READY``."""
        directory = build_peer(NAME)  # skips the test (fails under CI) when unavailable
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 (lives with the driver)
        self._proc = subprocess.Popen(
            [str(directory / "run"), "serve"],
            cwd=directory,
            env=_peer_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self._pump = threading.Thread(target=self._pump_stdout, daemon=True)
        self._pump.start()
        try:
            line = self._next_line(self.timeout, "READY")
            if not line.startswith("READY "):
                raise BrowserError(f"driver printed {line!r} before READY\n{self.stderr_text()}")
            ready = json.loads(line.split(" ", 1)[1])
            self.url, self.version = ready["url"], ready["browser"]
        except BaseException:
            self.close()
            raise
        return self

    def _pump_stdout(self) -> None:
        """Drains stdout for the driver's whole life so it never blocks on a full pipe."""
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _next_line(self, timeout: float, waiting_for: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(
                    f"browser driver: no {waiting_for} within {timeout}s\n{self.stderr_text()}"
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self._proc.wait() if self._proc is not None else None
                raise BrowserError(
                    f"browser driver exited (code {code}) waiting for {waiting_for}\n"
                    f"{self.stderr_text()}"
                )
            if line.strip():
                return line

    def request(
        self,
        multiaddr: str,
        *,
        ping: bool,
        identify: bool,
        echo_bytes: int | None,
        timeout: float,
        streams: int | None = None,
        stream_bytes: int | None = None,
        topic: str | None = None,
        publish: str | None = None,
        expect: int | None = None,
    ) -> dict[str, Any]:
        """Blocking: one dial request in a new tab; ``{"results": [...], "error", "console"}``."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise BrowserError(f"browser driver is not running\n{self.stderr_text()}")
        req = {
            "ma": multiaddr,
            "ping": ping,
            "identify": identify,
            "echo_bytes": echo_bytes,
            "streams": streams,
            "stream_bytes": stream_bytes,
            "topic": topic,
            "publish": publish,
            "expect": expect,
            "timeout_ms": int(timeout * 1000),
        }
        return self._roundtrip(req, timeout)

    def _roundtrip(self, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Blocking: one JSON request line to the driver, its one JSON answer line."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise BrowserError(f"browser driver is not running\n{self.stderr_text()}")
        with self._request_lock:
            proc.stdin.write(json.dumps(req) + "\n")
            proc.stdin.flush()
            # The page's own timeout fires first; the margin covers opening and closing a tab.
            line = self._next_line(timeout + 30.0, f"the answer to {req}")
        answer = json.loads(line)
        if not isinstance(answer, dict) or "results" not in answer:
            raise BrowserError(f"browser driver answered {line!r}")
        return answer

    async def listen_via_relay(
        self, relay: str, *, timeout: float = DIAL_TIMEOUT
    ) -> dict[str, Any]:
        """A tab whose js-libp2p node reserves on ``relay`` (``.../p2p/<relay>``) and listens on
        ``/webrtc`` through it; the tab stays open until :meth:`close_tab`.

        Returns the driver's answer: ``error`` (``None`` on success), ``listening``
        (``{"peer", "addrs"}``, among them ``.../p2p-circuit/webrtc/p2p/<peer>``) and ``tab``.
        """
        req = {"listen": relay, "timeout_ms": int(timeout * 1000)}
        return await asyncio.to_thread(self._roundtrip, req, timeout)

    async def close_tab(self, tab: int) -> dict[str, Any]:
        """Closes a listening tab; ``inbound`` lists the connections its node saw open
        (``remote_peer``, ``remote_addr``, ``direction``, ``limited``, and for ``/webrtc`` ones
        the outcome of a ping back: ``ping_rtt_ms`` or ``ping_error``)."""
        return await asyncio.to_thread(self._roundtrip, {"close_tab": tab}, 30.0)

    async def dial(
        self,
        multiaddr: str,
        *,
        ping: bool = False,
        identify: bool = False,
        echo_bytes: int | None = None,
        streams: int | None = None,
        stream_bytes: int | None = None,
        topic: str | None = None,
        publish: str | None = None,
        expect: int | None = None,
        timeout: float = DIAL_TIMEOUT,
    ) -> dict[str, Any]:
        """The page dials ``multiaddr`` and runs the checks; awaits without blocking the loop.

        ``streams``: that many ``/echo/1.0.0`` streams held open at once, each echoing its own
        ``stream_bytes`` (default 1024) pseudo-random bytes. ``topic``: the page runs GossipSub,
        subscribes to ``topic``, waits for the dialed peer's subscription, publishes
        ``publish`` (if given) and waits for ``expect`` messages from the topic.

        Returns the page's outcome: ``results`` (JSON objects as ``js-peer`` prints them, after
        a ``connected`` one), ``error`` (``None`` or the failure text) and ``console`` (what
        the page logged, for failure messages).
        """
        return await asyncio.to_thread(
            self.request,
            multiaddr,
            ping=ping,
            identify=identify,
            echo_bytes=echo_bytes,
            timeout=timeout,
            streams=streams,
            stream_bytes=stream_bytes,
            topic=topic,
            publish=publish,
            expect=expect,
        )

    def stderr_text(self) -> str:
        """The driver's stderr so far (the tail, if long)."""
        if self._stderr_file is None:
            return ""
        self._stderr_file.flush()
        self._stderr_file.seek(0)
        return _tail(self._stderr_file.read().decode(errors="replace"))

    def close(self) -> None:
        """Closes stdin (the driver then closes Chromium), then kills the process group."""
        proc = self._proc
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            _kill_group(proc)  # Chromium's helpers included: they share the driver's group
            if self._pump is not None:
                self._pump.join(timeout=5)  # it ends at the pipe's EOF
            if proc.stdout is not None and (self._pump is None or not self._pump.is_alive()):
                proc.stdout.close()
            self._proc = None
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def __enter__(self) -> BrowserPeer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
