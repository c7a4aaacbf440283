"""Round trips of the connection upgrade, seen on the wire from a raw TCP peer.

The dialer selects ``/noise`` lazily (header, proposal and Noise message 1 in one write); the
listener answers its header, ``/noise`` and message 2 in one write. A listener that refuses
``/noise`` fails the lazy dialer cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from rapidp2p import _core
from rapidp2p.exceptions import DialError, UpgradeError
from rapidp2p.host import Host, HostConfig
from rapidp2p.protocols.multistream import encode_message

HEADER = encode_message("/multistream/1.0.0")
NOISE = encode_message("/noise")


@contextlib.asynccontextmanager
async def raw_listener(
    on_data: asyncio.Queue[bytes], reply: bytes = b""
) -> AsyncIterator[tuple[str, list[asyncio.StreamWriter]]]:
    """A TCP server that queues what each read returns and writes ``reply`` after the first."""
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        first = True
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await on_data.put(data)
            if first and reply:
                writer.write(reply)
                first = False
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"/ip4/127.0.0.1/tcp/{port}", writers
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


async def test_dialer_sends_header_proposal_and_noise_message_1_in_one_write() -> None:
    seen: asyncio.Queue[bytes] = asyncio.Queue()
    async with raw_listener(seen) as (addr, _), Host(config=HostConfig(upgrade_timeout=5)) as h:
        dial = asyncio.ensure_future(h.connect(addr))
        first = await asyncio.wait_for(seen.get(), 5)
        dial.cancel()
        with contextlib.suppress(BaseException):
            await dial
    assert first.startswith(HEADER + NOISE)
    msg1 = first[len(HEADER + NOISE) :]
    # XX message 1 is the 32-byte ephemeral key (empty payload) behind a 2-byte length.
    assert msg1[:2] == (32).to_bytes(2, "big") and len(msg1) == 34


async def test_lazy_dialer_fails_cleanly_when_noise_is_refused() -> None:
    seen: asyncio.Queue[bytes] = asyncio.Queue()
    refuse = HEADER + encode_message("na")
    async with (
        raw_listener(seen, refuse) as (addr, _),
        Host(config=HostConfig(upgrade_timeout=5)) as h,
    ):
        with pytest.raises(DialError) as info:
            await h.connect(addr)
    assert "refused '/noise'" in str(info.value)
    (cause,) = info.value.errors.values()
    assert isinstance(cause, UpgradeError)


async def test_listener_answers_header_noise_and_message_2_in_one_write() -> None:
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as server:
        port = server.addrs[0].value_for_protocol("tcp")
        assert port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
        try:
            hs = _core.conn.NoiseHandshake(True)
            msg1 = hs.write_message(b"")
            writer.write(HEADER + NOISE + len(msg1).to_bytes(2, "big") + msg1)
            first = await asyncio.wait_for(reader.read(65536), 5)
            assert first.startswith(HEADER + NOISE)
            rest = first[len(HEADER + NOISE) :]
            size = int.from_bytes(rest[:2], "big")
            assert len(rest) == 2 + size  # message 2 came in the same segment
            payload = hs.read_message(rest[2:])
            assert payload  # the listener's identity key and signature
        finally:
            writer.close()
