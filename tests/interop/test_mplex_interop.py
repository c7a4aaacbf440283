"""mplex (``/mplex/6.7.0``) against real peers that offer nothing else, both directions:
py-libp2p with only mplex (as its pubsub and floodsub demos), and js-libp2p with only
``@libp2p/mplex``. Ping, identify and an echo stream carrying pseudo-random bytes intact;
FloodSub and GossipSub messages both ways with a py-libp2p node set up as its demos are
(mplex only; an RSA identity for the FloodSub one).

With mplex turned off here (``MuxerOptions(mplex=False)``), the refusal stays visible (issue 13
point 8): when such a peer dials us, our log says what it offered; when we dial it, our error
says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import subprocess
import tempfile

import pytest
from peers import PeerError, PeerProcess, build_peer, dial_from_peer, find_result

from rapidp2p.exceptions import DialError
from rapidp2p.host import Host, HostConfig, MuxerOptions
from rapidp2p.peer import Multiaddr
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.pubsub import FloodSub, GossipSub

pytestmark = [
    pytest.mark.interop,
    pytest.mark.peers("py-peer", "js-peer"),
    pytest.mark.timeout(240),
]

MPLEX = "/mplex/6.7.0"
ECHO = "/echo/1.0.0"
#: The flag that makes each peer offer only mplex.
ONLY_MPLEX = {"py-peer": ["--mplex-only"], "js-peer": ["--muxer", "mplex"]}
#: Bytes echoed; py-libp2p's muxers are slow, 1 MiB keeps it quick.
ECHO_BYTES = {"py-peer": 1 << 20, "js-peer": 8 << 20}
NO_MPLEX = HostConfig(muxer=MuxerOptions(mplex=False))
WANT_LOG = "peer offered only /mplex/6.7.0 (rapidp2p speaks /yamux/1.0.0)"


async def _echo_through(host: Host, peer_id: object, size: int) -> tuple[int, bool]:
    stream = await host.new_stream(peer_id, ECHO)  # type: ignore[arg-type]
    block = os.urandom(1 << 16)
    sent, got = hashlib.sha256(), hashlib.sha256()
    received = 0

    async def reader() -> None:
        nonlocal received
        async for chunk in stream:
            got.update(chunk)
            received += len(chunk)

    task = asyncio.ensure_future(reader())
    remaining = size
    while remaining:
        part = block[: min(remaining, len(block))]
        stream.write(part)
        sent.update(part)
        remaining -= len(part)
        await stream.drain()
    await stream.close()
    await asyncio.wait_for(task, 120)
    return received, got.digest() == sent.digest()


@pytest.mark.parametrize("name", sorted(ONLY_MPLEX))
async def test_rapidp2p_dials_mplex_only_peer(name: str) -> None:
    async with PeerProcess(name, extra_args=ONLY_MPLEX[name]) as peer, Host() as host:
        conn = await host.connect(Multiaddr(peer.addr))
        assert conn.muxer == MPLEX
        peer_id = conn.remote_peer
        rtts = await host.ping(peer_id, 3)
        assert len(rtts) == 3 and all(r > 0 for r in rtts)
        info = await host.identify.identify_peer(conn)
        assert info.peer_id == peer_id
        size = ECHO_BYTES[name]
        received, same = await _echo_through(host, peer_id, size)
        assert (received, same) == (size, True)


@pytest.mark.parametrize("name", sorted(ONLY_MPLEX))
async def test_mplex_only_peer_dials_rapidp2p(name: str) -> None:
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as host:
        host.set_stream_handler(ECHO, handle_echo)
        size = ECHO_BYTES[name]
        results = await dial_from_peer(name, str(host.full_addrs[0]), ping=True, identify=True,
                                       echo_bytes=size, extra_args=ONLY_MPLEX[name])  # fmt: skip
        assert find_result(results, "ping_rtt_ms")["ping_rtt_ms"] > 0
        assert find_result(results, "identify")["identify"]["agent_version"].startswith("rapidp2p/")
        assert find_result(results, "echo_bytes") == {"echo_bytes": size, "ok": True}


async def test_mplex_only_py_dialer_is_logged_when_mplex_is_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rapidp2p.upgrader")
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=NO_MPLEX) as host:
        with pytest.raises(PeerError):
            await dial_from_peer("py-peer", str(host.full_addrs[0]), ping=True,
                                 extra_args=["--mplex-only"], timeout=120)  # fmt: skip
        for _ in range(200):
            if any(r.getMessage() == WANT_LOG for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        assert any(r.getMessage() == WANT_LOG for r in caplog.records), [
            r.getMessage() for r in caplog.records
        ]
        assert not host.connections()


async def test_dialing_a_mplex_only_py_listener_with_mplex_off_says_why() -> None:
    async with (
        PeerProcess("py-peer", extra_args=["--mplex-only"]) as peer,
        Host(config=NO_MPLEX) as host,
    ):
        with pytest.raises(DialError) as info:
            await host.connect(peer.addr)
        text = str(info.value)
        assert "does not speak /yamux/1.0.0" in text and "/mplex/6.7.0" in text, text


@pytest.mark.parametrize("router", ["floodsub", "gossipsub"])
async def test_py_libp2p_pubsub_demo_setup_over_mplex(router: str) -> None:
    """What issue 13 point 8 reported: py-libp2p's pubsub demos (mplex only) could not join."""
    topic = "mplex-demo"
    host = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    stderr = tempfile.TemporaryFile()  # noqa: SIM115
    proc: asyncio.subprocess.Process | None = None
    try:
        ps = await host.add_service(FloodSub(host) if router == "floodsub" else GossipSub(host))
        sub = await ps.subscribe(topic)
        args = ["--topic", topic, "--mplex-only", "--connect", str(host.full_addrs[0])]
        args += ["--publish", "py->rapid"]
        if router == "floodsub":
            args += ["--floodsub", "--rsa"]
        directory = build_peer("py-peer")
        proc = await asyncio.create_subprocess_exec(
            str(directory / "run"), "pubsub", *args, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=stderr, start_new_session=True,
        )  # fmt: skip
        msg = await sub.get(timeout=60)
        assert msg.data == b"py->rapid"
        (conn,) = host.connections()
        assert conn.muxer == MPLEX
        await ps.publish(topic, b"rapid->py")
        assert proc.stdout is not None
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            stderr.seek(0)
            assert line, f"py-peer exited: {stderr.read().decode(errors='replace')[-2000:]}"
            if line.decode().strip() == "RECEIVED rapid->py":
                break
    finally:
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        stderr.close()
        await host.close()
