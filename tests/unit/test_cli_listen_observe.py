"""``rapidp2p listen`` as a process: ``--metrics`` scraped during a transfer, and its log lines
(text and JSON, ``-q``) for the connections a client opens and closes."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from rapidp2p.host import Host
from rapidp2p.protocols.echo import PROTOCOL_ID as ECHO

CLI = [sys.executable, "-m", "rapidp2p.cli"]


@contextmanager
def listener(*args: str) -> Iterator[tuple[subprocess.Popen[str], str, str | None]]:
    """A ``listen`` process; yields it, its /p2p address and its metrics URL (if any)."""
    # Loopback only: `listen` defaults to every interface, and tests dial nothing else.
    proc = subprocess.Popen(
        [*CLI, "listen", "--listen", "/ip4/127.0.0.1/tcp/0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        addr: str | None = None
        url: str | None = None
        while True:
            line = proc.stdout.readline()
            assert line, f"listen exited: {proc.stderr.read() if proc.stderr else ''}"
            if line.startswith("listening on "):
                addr = line.split()[-1]
                if "--metrics" not in args:
                    break
            if line.startswith("metrics on "):
                url = line.split()[-1]
                break
        assert addr is not None
        yield proc, addr, url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def total(sc: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **kw: str) -> float:
    return sum(
        v
        for (n, labels), v in sc.items()
        if n == name and all(dict(labels).get(k) == want for k, want in kw.items())
    )


def test_metrics_scrape_during_transfer_matches_bytes_moved() -> None:
    pytest.importorskip("prometheus_client")
    payload = 16 * 1024 * 1024
    chunk = b"\x5a" * (256 * 1024)

    async def transfer(addr: str, url: str) -> tuple[dict, dict, int]:  # type: ignore[type-arg]
        async with Host() as client:
            conn = await client.connect(addr)
            st = await client.new_stream(conn.remote_peer, ECHO)
            received = 0

            async def reader() -> None:
                nonlocal received
                while chunk_in := await st.read(1 << 20):
                    received += len(chunk_in)

            rtask = asyncio.ensure_future(reader())
            for _ in range(payload // len(chunk) // 2):
                st.write(chunk)
                await st.drain()
            while received < payload // 4:  # the echo is flowing back
                await asyncio.sleep(0.01)
            during = await asyncio.to_thread(scrape, url)
            during_received = received
            for _ in range(payload // len(chunk) // 2):
                st.write(chunk)
                await st.drain()
            await st.close()
            await asyncio.wait_for(rtask, 60)
            assert received == payload
            after = await asyncio.to_thread(scrape, url)
            return during, after, during_received

    with listener("--metrics", "127.0.0.1:0") as (_proc, addr, url):
        assert url is not None and url.endswith("/metrics")
        during, after, during_received = asyncio.run(transfer(addr, url))

    pb = "libp2p_protocol_bytes_total"
    bw = "libp2p_bandwidth_bytes_total"
    # During: the listener has read at least what it echoed back to us, at most what we sent.
    echo_in = total(during, pb, protocol=ECHO, direction="inbound")
    echo_out = total(during, pb, protocol=ECHO, direction="outbound")
    assert during_received <= echo_out <= echo_in <= payload // 2
    assert total(during, bw, protocols="/ip4/tcp", direction="inbound") >= echo_in
    # After: exactly the payload each way at the protocol level; on the wire the payload plus
    # framing (yamux 12 B per frame, Noise 18 B per <= 64 KiB), handshake and identify.
    assert total(after, pb, protocol=ECHO, direction="inbound") == payload
    assert total(after, pb, protocol=ECHO, direction="outbound") == payload
    for direction in ("inbound", "outbound"):
        wire = total(after, bw, protocols="/ip4/tcp", direction=direction)
        assert payload <= wire <= payload * 1.01 + 16384, (direction, wire)
    assert total(after, "libp2p_swarm_connections_opened_total", dir="inbound") == 1
    assert total(after, "libp2p_swarm_streams_opened_total", protocol=ECHO, dir="inbound") == 1
    assert total(after, "libp2p_swarm_handshake_latency_seconds_count", dir="inbound") == 1


async def _connect_ping_disconnect(
    addr: str, proc: subprocess.Popen[str] | None = None, wait_for: str = ""
) -> tuple[str, list[str]]:
    """Connects, pings, waits until the listener logged ``wait_for``, disconnects."""
    async with Host() as client:
        conn = await client.connect(addr)
        await client.ping(conn.remote_peer, 1)
        seen = await asyncio.to_thread(_lines_until, proc, wait_for) if proc else []
        await client.disconnect(conn.remote_peer)
        return str(client.peer_id), seen


def _lines_until(proc: subprocess.Popen[str], pattern: str, limit: int = 200) -> list[str]:
    assert proc.stderr is not None
    lines = []
    for _ in range(limit):
        line = proc.stderr.readline()
        assert line, f"stderr ended before {pattern!r}: {lines}"
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"{pattern!r} not logged: {lines}")


def test_text_log_lines() -> None:
    with listener() as (proc, addr, _):
        client, lines = asyncio.run(_connect_ping_disconnect(addr, proc, "peer identified"))
        lines += _lines_until(proc, "connection closed")
    opened = next(line for line in lines if "connection opened" in line)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO +conn +connection opened "
        rf"peer={client} addr=/ip4/127\.0\.0\.1/tcp/\d+ dir=inbound transport=tcp "
        r"security=/noise muxer=/yamux/1\.0\.0\n",
        opened,
    ), opened
    closed = next(line for line in lines if "connection closed" in line)
    assert f"peer={client}" in closed and "dir=inbound" in closed and "duration_s=" in closed
    identified = [line for line in lines if "peer identified" in line]
    assert identified and f"peer={client}" in identified[0] and "agent=rapidp2p/" in identified[0]


def test_json_log_lines() -> None:
    with listener("--log-format", "json") as (proc, addr, _):
        client, lines = asyncio.run(_connect_ping_disconnect(addr, proc, "peer_identified"))
        lines += _lines_until(proc, "connection_closed")
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    opened = next(r for r in records if r.get("event") == "connection_opened")
    assert opened["level"] == "info" and opened["logger"] == "rapidp2p.conn"
    assert opened["peer"] == client and opened["dir"] == "inbound"
    assert opened["transport"] == "tcp" and opened["security"] == "/noise"
    assert opened["addr"].startswith("/ip4/127.0.0.1/tcp/")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", opened["ts"])
    identified = next(r for r in records if r.get("event") == "peer_identified")
    assert identified["peer"] == client and identified["agent"].startswith("rapidp2p/")
    closed = next(r for r in records if r.get("event") == "connection_closed")
    assert closed["peer"] == client and isinstance(closed["duration_s"], float)


def test_quiet_and_verbose() -> None:
    with listener("-q") as (proc, addr, _):
        asyncio.run(_connect_ping_disconnect(addr))
    _, err = proc.communicate(timeout=10)
    assert "connection opened" not in err and "connection closed" not in err
    with listener("-v") as (proc, addr, _):
        _, lines = asyncio.run(_connect_ping_disconnect(addr, proc, "protocol=/ipfs/ping/1.0.0"))
        lines += _lines_until(proc, "connection closed")
    # DEBUG adds the stream lines (identify and ping streams were negotiated).
    assert any("stream opened" in line and "protocol=/ipfs/ping/1.0.0" in line for line in lines)
