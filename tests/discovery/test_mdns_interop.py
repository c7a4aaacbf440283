"""mDNS between rapidp2p (``rapidp2p listen --mdns``) and go-libp2p, js-libp2p (Node) and
another rapidp2p, each in its own network namespace, the two joined by a veth this test makes:
both sides must find each other with no address typed, and connect."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from netns import NetnsPair
from peers import build_peer, cache_root

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

FIND_TIMEOUT = 60.0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("RAPIDP2P_INTEROP_CACHE", str(cache_root()))
    return env  # PYTHONPATH (if any) carries over: the rapidp2p under test, in the namespace too


@pytest.fixture
def netns_pair() -> Any:
    pair = NetnsPair.create()
    try:
        yield pair
    finally:
        pair.remove()


class Proc:
    """A process in a namespace whose stdout lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.lines: list[str] = []
        self.peer_id = ""
        self._task = asyncio.ensure_future(self._pump())
        self._changed = asyncio.Event()

    async def _pump(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    def objects(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines:
            with contextlib.suppress(json.JSONDecodeError):
                obj = json.loads(line)
                if isinstance(obj, dict):
                    out.append(obj)
        return out

    async def wait_for(self, pred: Any, timeout: float = FIND_TIMEOUT) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred(self):
            if self.proc.returncode is not None and self._task.done():
                raise AssertionError(f"{self.name} exited: {self.lines}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: condition not met; stdout: {self.lines}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def stop(self) -> str:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        self._task.cancel()
        err = await self.proc.stderr.read() if self.proc.stderr is not None else b""
        return err.decode(errors="replace")[-4000:]


@contextlib.asynccontextmanager
async def run_in(pair: NetnsPair, ns: str, argv: list[str], name: str) -> AsyncIterator[Proc]:
    proc = await asyncio.create_subprocess_exec(
        *pair.command(ns, argv),
        env=_env(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    p = Proc(proc, name)
    try:
        yield p
    finally:
        err = await p.stop()
        if err.strip():
            sys.stderr.write(f"--- {name} stderr ---\n{err}\n")


def _rapidp2p_argv() -> list[str]:
    return [
        sys.executable,
        "-m",
        "rapidp2p",
        "listen",
        "--mdns",
        "--mdns-interval",
        "1",
        "--json",
        "--listen",
        "/ip4/0.0.0.0/tcp/0",
    ]


def _foreign_argv(name: str) -> list[str]:
    if name == "rapidp2p":
        return _rapidp2p_argv()
    directory = build_peer(name)
    return [str(directory / "run"), "mdns"]


def _rapidp2p_id(p: Proc) -> bool:
    for obj in p.objects():
        if "peer_id" in obj and "addrs" in obj and "event" not in obj:
            p.peer_id = obj["peer_id"]
            return True
    return False


def _foreign_id(p: Proc) -> bool:
    for line in p.lines:
        if line.startswith("LISTENING "):
            p.peer_id = line.rsplit("/p2p/", 1)[-1]
            return True
    return _rapidp2p_id(p)


def _rapidp2p_saw(p: Proc, peer: str, event: str) -> bool:
    return any(o.get("event") == event and o.get("peer_id") == peer for o in p.objects())


def _foreign_saw(p: Proc, peer: str, key: str) -> bool:
    if any(o.get(key) == peer for o in p.objects()):
        return True
    mapped = {"found": "discovered", "connected": "connected"}[key]
    return _rapidp2p_saw(p, peer, mapped)


@pytest.mark.parametrize(
    "foreign",
    [
        pytest.param("go-peer", marks=pytest.mark.peers("go-peer")),
        pytest.param("js-peer", marks=pytest.mark.peers("js-peer")),
        pytest.param("rapidp2p", marks=pytest.mark.peers()),
    ],
)
async def test_mdns_finds_both_ways(netns_pair: NetnsPair, foreign: str) -> None:
    foreign_argv = _foreign_argv(foreign)
    async with run_in(netns_pair, netns_pair.b, _rapidp2p_argv(), "rapidp2p") as ours:
        await ours.wait_for(_rapidp2p_id, 30)
        async with run_in(netns_pair, netns_pair.a, foreign_argv, foreign) as theirs:
            await theirs.wait_for(_foreign_id, 30)
            # they find us, and we find them (no address typed on either side)
            await theirs.wait_for(lambda p: _foreign_saw(p, ours.peer_id, "found"))
            await ours.wait_for(lambda p: _rapidp2p_saw(p, theirs.peer_id, "discovered"))
            found = next(
                o
                for o in ours.objects()
                if o.get("event") == "discovered" and o.get("peer_id") == theirs.peer_id
            )
            assert found["source"] == "mdns"
            assert any(netns_pair.ip_a in a for a in found["addrs"]), found
            # and a connection comes up (whichever side dialed first)
            await ours.wait_for(lambda p: _rapidp2p_saw(p, theirs.peer_id, "connected"))
