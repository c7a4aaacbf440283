"""Perf (/perf/1.0.0): wire header, identity, progress reports, handler and client, two hosts."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p.exceptions import RemoteProtocolError
from rapidp2p.host import Host
from rapidp2p.peer import PeerId
from rapidp2p.protocols.framing import UnexpectedEOF
from rapidp2p.protocols.memory import MemoryStream, memory_stream_pair
from rapidp2p.protocols.perf import (
    BLOCK_SIZE,
    MAX_U64,
    PROTOCOL_ID,
    SERVER_PEER_ID,
    PerfService,
    Progress,
    decode_header,
    encode_header,
    handle_perf,
    parse_server_address,
    perf_on_stream,
    run_perf,
    server_key,
)


@given(st.integers(min_value=0, max_value=MAX_U64))
def test_header_roundtrip_is_big_endian_u64(n: int) -> None:
    header = encode_header(n)
    assert len(header) == 8
    assert header == n.to_bytes(8, "big")
    assert decode_header(header) == n


def test_header_bounds() -> None:
    assert encode_header(0) == bytes(8)
    assert encode_header(MAX_U64) == b"\xff" * 8
    assert encode_header(1) == b"\x00" * 7 + b"\x01"
    with pytest.raises(ValueError):
        encode_header(-1)
    with pytest.raises(ValueError):
        encode_header(MAX_U64 + 1)
    with pytest.raises(RemoteProtocolError):
        decode_header(b"\x00" * 7)


def test_server_identity_is_the_shared_zero_seed_key() -> None:
    key = server_key()
    assert str(PeerId.from_public_key(key.public_key())) == SERVER_PEER_ID
    assert SERVER_PEER_ID == "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:4001", "/ip4/127.0.0.1/tcp/4001"),
        ("localhost:0", "/ip4/127.0.0.1/tcp/0"),
        ("[::1]:4001", "/ip6/::1/tcp/4001"),
        ("0.0.0.0:65535", "/ip4/0.0.0.0/tcp/65535"),
    ],
)
def test_parse_server_address(text: str, expected: str) -> None:
    assert parse_server_address(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", ":4001", "example.com:80", "1.2.3.4:70000", "x"])
def test_parse_server_address_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_server_address(text)


def test_parse_server_address_rejects_other_transports() -> None:
    with pytest.raises(ValueError, match="quic"):
        parse_server_address("127.0.0.1:4001", "quic-v1")


def test_progress_reports_deltas_once_per_interval() -> None:
    p = Progress(10.0)
    assert p.add(10.5, up=100) is None
    r = p.add(11.25, up=50)
    assert r is not None
    assert (r.type, r.time_seconds, r.upload_bytes, r.download_bytes) == (
        "intermediary",
        1.25,
        150,
        0,
    )
    assert p.add(11.5, down=7) is None
    r2 = p.add(12.5, down=3)
    assert r2 is not None and (r2.upload_bytes, r2.download_bytes) == (0, 10)
    final = p.final(13.0)
    assert final.to_dict() == {
        "type": "final",
        "timeSeconds": 3.0,
        "uploadBytes": 150,
        "downloadBytes": 10,
    }


@pytest.mark.parametrize(
    ("up", "down"), [(0, 0), (1, 1), (0, BLOCK_SIZE * 2 + 3), (BLOCK_SIZE + 5, 0), (1000, 70000)]
)
async def test_handler_and_client_in_memory(up: int, down: int) -> None:
    a, b = memory_stream_pair(limit=1 << 16)
    server = asyncio.ensure_future(handle_perf(b))
    prog = await perf_on_stream(a, up, down)
    assert (prog.upload, prog.download) == (up, down)
    assert await server == (up, down)


async def test_server_does_not_reply_before_upload_eof() -> None:
    a, b = memory_stream_pair()
    server = asyncio.ensure_future(handle_perf(b))
    a.write(encode_header(5) + b"data")
    await asyncio.sleep(0.01)
    assert not server.done()
    assert b._out.buf == b""  # nothing sent while the client may still upload
    a.close()
    assert await server == (4, 5)
    assert await a.read() == bytes(5)


async def test_client_rejects_short_or_long_reply() -> None:
    async def liar(stream: MemoryStream, n: int) -> None:
        await stream.read(8)
        stream.write(bytes(n))
        stream.close()

    for sent in (3, 9):
        a, b = memory_stream_pair()
        task = asyncio.ensure_future(liar(b, sent))
        with pytest.raises(RemoteProtocolError, match="asked"):
            await perf_on_stream(a, 0, 6)
        await task


async def test_handler_rejects_truncated_header() -> None:
    a, b = memory_stream_pair()
    a.write(b"\x00\x01")
    a.close()
    with pytest.raises(UnexpectedEOF):
        await handle_perf(b)


@pytest.mark.parametrize("listen", ["/ip4/127.0.0.1/tcp/0", "/memory/0"])
async def test_two_hosts(listen: str) -> None:
    async with await Host.create(server_key(), listen=[listen]) as server, Host() as client:
        svc = await server.add_service(PerfService(server))
        assert PROTOCOL_ID in server.protocols
        reports = []
        up, down = 3 * BLOCK_SIZE + 1, 2 * BLOCK_SIZE + 7
        final = await run_perf(client, server.full_addrs[0], up, down, emit=reports.append)
        assert final.type == "final"
        assert (final.upload_bytes, final.download_bytes) == (up, down)
        assert final.time_seconds > 0
        # concurrent requests on one connection
        finals = await asyncio.gather(
            *(run_perf(client, server.peer_id, 1000 * i, 10 * i) for i in range(1, 9))
        )
        assert [(f.upload_bytes, f.download_bytes) for f in finals] == [
            (1000 * i, 10 * i) for i in range(1, 9)
        ]
        assert len(client.connections(server.peer_id)) == 1
        for _ in range(50):  # the last handler may still be closing its stream
            if svc.requests == 9 and svc.bytes_sent == 2 * BLOCK_SIZE + 7 + 360:
                break
            await asyncio.sleep(0.01)
        assert svc.requests == 9
        assert svc.bytes_received == 3 * BLOCK_SIZE + 1 + 36000
        assert svc.bytes_sent == 2 * BLOCK_SIZE + 7 + 360
        await svc.close()
        assert PROTOCOL_ID not in server.protocols
