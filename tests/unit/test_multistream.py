"""multistream-select 1.0: sans-IO framing and the asyncio negotiation, over memory streams."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p.exceptions import NegotiationError, ProtocolNotSupported
from rapidp2p.protocols.memory import MemoryStream, memory_stream_pair
from rapidp2p.protocols.multistream import (
    MessageParser,
    encode_message,
    read_message,
    select_inbound,
    select_outbound,
    select_outbound_lazy,
)
from rapidp2p.protocols.multistream._proto import encode_ls_response

HEADER = b"\x13/multistream/1.0.0\n"


# ---- sans-IO -------------------------------------------------------------------------------


def test_encode_message_matches_spec_bytes() -> None:
    assert encode_message("/multistream/1.0.0") == HEADER
    assert encode_message("na") == b"\x03na\n"


def test_encode_message_refuses_over_cap() -> None:
    with pytest.raises(NegotiationError):
        encode_message("x" * 1024)
    assert len(encode_message("x" * 1023)) == 2 + 1024


@given(st.lists(st.text(max_size=200), max_size=8), st.integers(1, 50))
def test_parser_roundtrip_any_chunking(texts: list[str], chunk: int) -> None:
    wire = b"".join(encode_message(t) for t in texts)
    parser = MessageParser()
    got: list[str] = []
    for i in range(0, len(wire), chunk):
        got += parser.feed(wire[i : i + chunk])
    assert got == texts
    assert not parser.in_message
    assert parser.buffered == b""


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"\x00", "zero-length"),
        (b"\x03na!", "newline"),
        (b"\x81\x00", "non-minimal"),
        (b"\x81\x08" + b"a" * 1025, "exceeds"),
        (b"\xff\xff\x01", "too long"),
        (b"\x02\xff\n", "UTF-8"),
    ],
)
def test_parser_rejects_malformed(wire: bytes, reason: str) -> None:
    with pytest.raises(NegotiationError, match=reason):
        MessageParser().feed(wire)


def test_parser_keeps_bytes_after_last_message() -> None:
    parser = MessageParser()
    assert parser.feed(b"\x03na\n\x03n") == ["na"]
    assert parser.in_message


def test_ls_response_layout() -> None:
    assert encode_ls_response(["/a", "/bc"]) == b"\x0a\x03/a\n\x04/bc\n\n"


# ---- asyncio negotiation -------------------------------------------------------------------


async def _negotiate(
    offered: list[str], supported: list[str], lazy: bool
) -> tuple[str | BaseException, str | BaseException, MemoryStream, MemoryStream]:
    a, b = memory_stream_pair()
    out, inn = await asyncio.gather(
        select_outbound(a, offered, lazy=lazy, timeout=2),
        select_inbound(b, supported, timeout=2),
        return_exceptions=True,
    )
    return out, inn, a, b


@pytest.mark.parametrize("lazy", [False, True])
async def test_first_choice_selected(lazy: bool) -> None:
    out, inn, a, b = await _negotiate(["/echo/1.0.0"], ["/x", "/echo/1.0.0"], lazy)
    assert out == inn == "/echo/1.0.0"
    # No bytes left over on either side: the selected protocol starts clean.
    a.write(b"app")
    assert await b.read(10) == b"app"


@pytest.mark.parametrize("lazy", [False, True])
async def test_falls_back_after_na(lazy: bool) -> None:
    out, inn, _, _ = await _negotiate(["/new/2", "/old/1"], ["/old/1"], lazy)
    assert out == inn == "/old/1"


async def test_all_refused_raises_protocol_not_supported() -> None:
    a, b = memory_stream_pair()
    listener = asyncio.ensure_future(select_inbound(b, ["/y"], timeout=1))
    with pytest.raises(ProtocolNotSupported):
        await select_outbound(a, ["/a", "/b"], timeout=2)
    listener.cancel()
    # (Same-stream negotiation after ``na``: test_robustness_multistream.py.) A listener
    # given a predicate instead of a list accepts what the predicate accepts.
    a2, b2 = memory_stream_pair()
    out, inn = await asyncio.gather(
        select_outbound(a2, ["/a", "/y"]), select_inbound(b2, lambda p: p == "/y")
    )
    assert out == inn == "/y"


async def test_lazy_pipelines_header_and_proposal_in_one_write() -> None:
    a, b = memory_stream_pair()
    await asyncio.gather(select_outbound(a, ["/p"], lazy=True), select_inbound(b, ["/p"]))
    assert a.write_calls == 1
    assert a.bytes_written == len(HEADER) + len(encode_message("/p"))


async def test_zero_rtt_lazy_stream_writes_before_answer() -> None:
    a, b = memory_stream_pair()
    lazy = await select_outbound_lazy(a, "/echo/1.0.0", timeout=2)
    lazy.write(b"hello")  # application data before any answer arrived
    assert await select_inbound(b, ["/echo/1.0.0"]) == "/echo/1.0.0"
    assert await b.read(5) == b"hello"
    b.write(b"world")
    assert await lazy.read(5) == b"world"


async def test_zero_rtt_lazy_stream_refused_on_first_read() -> None:
    a, b = memory_stream_pair()
    lazy = await select_outbound_lazy(a, "/nope", timeout=2)
    listener = asyncio.ensure_future(select_inbound(b, ["/other"], timeout=2))
    with pytest.raises(ProtocolNotSupported):
        await lazy.read(1)
    with pytest.raises(ProtocolNotSupported):  # the failure sticks
        await lazy.confirm()
    listener.cancel()


async def test_listener_rejects_wrong_header() -> None:
    a, b = memory_stream_pair()
    a.write(encode_message("/multistream/2.0.0") + encode_message("/p"))
    with pytest.raises(NegotiationError, match="header"):
        await select_inbound(b, ["/p"], timeout=1)


async def test_dialer_rejects_unexpected_answer() -> None:
    a, b = memory_stream_pair()
    b.write(HEADER + encode_message("/something-else"))
    with pytest.raises(NegotiationError, match="answered"):
        await select_outbound(a, ["/p"], lazy=True, timeout=1)


async def test_eof_during_negotiation() -> None:
    a, b = memory_stream_pair()
    b.write(HEADER[:5])
    b.close()
    with pytest.raises(NegotiationError, match="ended"):
        await select_outbound(a, ["/p"], timeout=1)


async def test_dripping_peer_bounded_by_timeout() -> None:
    a, b = memory_stream_pair()

    async def drip() -> None:
        for byte in HEADER:
            b.write(bytes([byte]))
            await asyncio.sleep(0.02)

    task = asyncio.ensure_future(drip())
    with pytest.raises(NegotiationError, match="timed out"):
        await select_outbound(a, ["/p"], timeout=0.1)
    task.cancel()


async def test_endless_na_bounded_by_timeout() -> None:
    """A dialer proposing forever is cut off by the listener's timeout."""
    a, b = memory_stream_pair()

    async def spam() -> None:
        a.write(HEADER)
        while True:
            a.write(encode_message("/unknown"))
            await a.drain()
            await asyncio.sleep(0.001)

    task = asyncio.ensure_future(spam())
    with pytest.raises(NegotiationError):
        await select_inbound(b, ["/p"], timeout=0.2)
    task.cancel()


async def test_listener_answers_ls() -> None:
    a, b = memory_stream_pair()
    listener = asyncio.ensure_future(select_inbound(b, ["/a", "/b"], timeout=2))
    a.write(HEADER + encode_message("ls"))
    assert await read_message(a) == "/multistream/1.0.0"
    assert await read_message(a) == "\x03/a\n\x03/b\n"
    a.write(encode_message("/b"))
    assert await read_message(a) == "/b"
    assert await listener == "/b"


async def test_listener_answers_na_to_na_and_oversized_line_errors() -> None:
    a, b = memory_stream_pair()
    listener = asyncio.ensure_future(select_inbound(b, ["/a"], timeout=2))
    a.write(HEADER + encode_message("na"))
    assert await read_message(a) == "/multistream/1.0.0"
    assert await read_message(a) == "na"
    a.write(b"\x81\x08" + b"x" * 1025)
    with pytest.raises(NegotiationError, match="exceeds"):
        await listener
