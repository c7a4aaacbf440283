"""GossipSub interop: rapidp2p with go-libp2p-pubsub, rust-libp2p gossipsub and js-libp2p
(@libp2p/gossipsub), v1.1 and v1.2, StrictSign and peer scoring on both sides.

The peers (``tests/interop/{go,rust,js}-peer``, owned by the interop task) implement::

    run pubsub --topic T [--listen MA] [--connect MA]... [--publish MSG]...

It subscribes to T, prints ``LISTENING <ma>/p2p/<id>`` once listening and subscribed, dials
every ``--connect``; after a peer subscribed to T is connected it publishes each ``--publish``
(printing ``PUBLISHED <msg>``); it prints ``RECEIVED <data>`` for every message received on T,
until killed or stdin closes. Message IDs are go-libp2p-pubsub's default (from || seqno).
A peer whose ``run pubsub --help`` fails does not implement it yet: its tests skip, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
import peers

from rapidp2p.host import Host
from rapidp2p.pubsub import (
    MESHSUB_V11,
    MESHSUB_V12,
    GossipSub,
    Subscription,
    default_message_id,
)

pytestmark = pytest.mark.interop

TOPIC = "rapidp2p-interop"
PEERS = [pytest.param(n, marks=pytest.mark.peers(n)) for n in ("go-peer", "js-peer", "rust-peer")]
VERSIONS = {"1.1": (MESHSUB_V11,), "1.2": (MESHSUB_V12, MESHSUB_V11)}
WAIT = 30.0

_support: dict[str, str | None] = {}


def _require_pubsub(name: str) -> Path:
    directory = peers.build_peer(name)
    if name not in _support:
        proc = subprocess.run(
            [str(directory / "run"), "pubsub", "--help"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        _support[name] = (
            None
            if proc.returncode == 0
            else f"{name} does not implement `run pubsub` yet (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-200:]}"
        )
    reason = _support[name]
    if reason is not None:
        print(reason)
        pytest.skip(reason)
    return directory


class PubsubPeer:
    """A running ``run pubsub`` peer with its stdout lines in an asyncio queue."""

    def __init__(self, directory: Path, args: Sequence[str]) -> None:
        self.directory = directory
        self.args = list(args)
        self.addr = ""
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc: asyncio.subprocess.Process | None = None
        self._pump_task: asyncio.Future[None] | None = None

    async def start(self, wait_listening: bool = True) -> PubsubPeer:
        self.proc = await asyncio.create_subprocess_exec(
            str(self.directory / "run"),
            "pubsub",
            *self.args,
            cwd=self.directory,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        self._pump_task = asyncio.ensure_future(self._pump())
        if wait_listening:
            line = await self.expect("LISTENING ")
            self.addr = line.split(" ", 1)[1].strip()
        return self

    async def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            await self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        await self.lines.put(None)

    async def expect(self, prefix: str, timeout: float = WAIT) -> str:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            try:
                line = await asyncio.wait_for(self.lines.get(), max(0.01, end - loop.time()))
            except asyncio.TimeoutError:
                raise AssertionError(f"no {prefix!r} line; stderr:\n{self.stderr()}") from None
            if line is None:
                raise AssertionError(f"peer exited before {prefix!r}; stderr:\n{self.stderr()}")
            if line.startswith(prefix):
                return line

    async def received(self, want: set[str], timeout: float = WAIT) -> None:
        pending = set(want)
        while pending:
            line = await self.expect("RECEIVED ", timeout)
            pending.discard(line.split(" ", 1)[1])

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 2)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._stderr.close()


@contextlib.asynccontextmanager
async def peer(name: str, *args: str, wait_listening: bool = True) -> AsyncIterator[PubsubPeer]:
    p = await PubsubPeer(_require_pubsub(name), ["--topic", TOPIC, *args]).start(wait_listening)
    try:
        yield p
    finally:
        await p.stop()


@contextlib.asynccontextmanager
async def rapid(version: str) -> AsyncIterator[tuple[Host, GossipSub, Subscription]]:
    host = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    try:
        ps = await host.add_service(GossipSub(host, protocols=VERSIONS[version]))
        sub = await ps.subscribe(TOPIC)
        yield host, ps, sub
    finally:
        await host.close()


async def wait_topic_peer(ps: GossipSub, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not ps.topic_peers(TOPIC):
        assert loop.time() < end, "the peer never subscribed"
        await asyncio.sleep(0.05)


async def collect(sub: Subscription, want: set[bytes], timeout: float = WAIT) -> None:
    pending = set(want)
    while pending:
        msg = await sub.get(timeout=timeout)
        pending.discard(msg.data or b"")


@pytest.mark.parametrize("version", sorted(VERSIONS))
@pytest.mark.parametrize("name", PEERS)
async def test_rapidp2p_publishes_to_peer(name: str, version: str) -> None:
    async with peer(name) as p, rapid(version) as (host, ps, _sub):
        await host.connect(p.addr)
        await wait_topic_peer(ps)
        await asyncio.sleep(1.5)  # a heartbeat: the peer's mesh includes us
        sent = {f"rapid->{name} {i}" for i in range(3)}
        for text in sorted(sent):
            await ps.publish(TOPIC, text.encode())
        await p.received(sent)
        conn = host.connections(next(iter(ps.topic_peers(TOPIC))))[0]
        assert conn is not None


@pytest.mark.parametrize("version", sorted(VERSIONS))
@pytest.mark.parametrize("name", PEERS)
async def test_peer_publishes_to_rapidp2p(name: str, version: str) -> None:
    async with rapid(version) as (host, ps, sub):
        addr = str(host.full_addrs[0])
        msgs = [f"{name}->rapid {i}" for i in range(3)]
        args = ["--connect", addr]
        for m in msgs:
            args += ["--publish", m]
        async with peer(name, *args):
            await collect(sub, {m.encode() for m in msgs})
        proto = ps.router.peers
        assert all(st.protocol in VERSIONS[version] for st in proto.values())


@pytest.mark.parametrize("name", PEERS)
async def test_peer_message_ids_match_rapidp2p(name: str) -> None:
    """The peer names messages as rapidp2p does (go's default, from || seqno): the IDONTWANT
    (meshsub v1.2) that a relay sends us for a large message it got from another peer carries
    the very ID rapidp2p computes. With different IDs, gossip and IDONTWANT would miss."""
    big = f"{name} large " + "x" * 2000  # over every stack's IDONTWANT threshold (<= 1 KiB)
    async with rapid("1.2") as (host, ps, sub):
        addr = str(host.full_addrs[0])
        async with peer(name, "--connect", addr) as relay:
            await wait_topic_peer(ps)
            await asyncio.sleep(1.5)  # a heartbeat: the relay's mesh includes us
            async with peer(name, "--connect", relay.addr, "--publish", big):
                msg = await sub.get(timeout=WAIT)
                assert (msg.data or b"").decode() == big
                mid = default_message_id(msg)
                (state,) = ps.router.peers.values()  # the publisher is not connected to us
                assert state.protocol == MESHSUB_V12
                loop = asyncio.get_running_loop()
                end = loop.time() + 5.0
                while mid not in state.dontsend:
                    assert loop.time() < end, (
                        f"no IDONTWANT with rapidp2p's ID {mid.hex()}; got "
                        f"{[m.hex() for m in state.dontsend]}"
                    )
                    await asyncio.sleep(0.02)


# Every stack publishes in one pair and receives in another.
PAIRS = [("go-peer", "rust-peer"), ("js-peer", "go-peer"), ("rust-peer", "js-peer")]


async def wait_mesh(ps: GossipSub, n: int, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(ps.router.mesh.get(TOPIC, ())) < n:
        assert loop.time() < end, "the peers never joined rapidp2p's mesh"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("version", sorted(VERSIONS))
@pytest.mark.parametrize(
    ("publisher", "receiver"),
    [pytest.param(a, b, id=f"{a}-to-{b}", marks=pytest.mark.peers(a, b)) for a, b in PAIRS],
)
async def test_two_stacks_talk_through_rapidp2p(
    publisher: str, receiver: str, version: str
) -> None:
    """The two peers each connect only to rapidp2p; rapidp2p forwards between them."""
    async with rapid(version) as (host, ps, sub):
        addr = str(host.full_addrs[0])
        async with (
            peer(publisher, "--connect", addr) as a,
            peer(receiver, "--connect", addr) as b,
        ):
            await wait_mesh(ps, 2)
            await ps.publish(TOPIC, b"rapid to both")
            await a.received({"rapid to both"})
            await b.received({"rapid to both"})
        # second round: the publisher's message reaches the receiver only through rapidp2p
        text = f"{publisher} via rapid"
        async with peer(receiver, "--connect", addr) as b:
            await wait_mesh(ps, 1)  # rapidp2p forwards to its mesh: the receiver is in it
            async with peer(publisher, "--connect", addr, "--publish", text):
                await collect(sub, {text.encode()})
                await b.received({text})
