"""ROBUSTNESS 4 at the negotiation level: a wrong header from either side aborts, malformed
messages are errors at the listener, and after ``na`` the same stream can still negotiate."""

from __future__ import annotations

import asyncio

import pytest

from rapidp2p.exceptions import NegotiationError, ProtocolNotSupported
from rapidp2p.protocols.memory import memory_stream_pair
from rapidp2p.protocols.multistream import (
    encode_message,
    read_message,
    select_inbound,
    select_outbound,
)

HEADER = encode_message("/multistream/1.0.0")


@pytest.mark.parametrize("lazy", [False, True])
async def test_dialer_aborts_on_a_wrong_header(lazy: bool) -> None:
    a, b = memory_stream_pair()
    b.write(encode_message("/multistream/2.0.0") + encode_message("/p"))
    with pytest.raises(NegotiationError, match="header"):
        await select_outbound(a, ["/p"], lazy=lazy, timeout=2)


@pytest.mark.parametrize(
    ("after_header", "match"),
    [
        (b"\x00", "zero-length"),
        (b"\x03/p!", "newline"),
        (b"\x81\x08" + b"x" * 1025, "exceeds"),
    ],
    ids=["zero-length", "no-newline", "over-1024"],
)
async def test_listener_errors_on_malformed_proposals(after_header: bytes, match: str) -> None:
    a, b = memory_stream_pair()
    a.write(HEADER + after_header)
    with pytest.raises(NegotiationError, match=match):
        await select_inbound(b, ["/p"], timeout=2)


async def test_after_na_the_same_stream_still_negotiates() -> None:
    a, b = memory_stream_pair()
    listener = asyncio.ensure_future(select_inbound(b, ["/y"], timeout=2))
    with pytest.raises(ProtocolNotSupported):
        await select_outbound(a, ["/a", "/b"], timeout=2)
    assert not listener.done(), "the listener keeps waiting for a proposal it supports"
    a.write(encode_message("/y"))  # the header was already exchanged on this stream
    assert await read_message(a) == "/y"
    assert await asyncio.wait_for(listener, 2) == "/y"
    a.write(b"app data")
    assert await b.read(8) == b"app data"
