"""multistream-select 1.0 over an asyncio byte stream.

Reads are exact (length prefix byte by byte, then exactly the body), so negotiation never
consumes bytes that belong to the selected protocol and no push-back is needed. The whole
negotiation runs under one timeout, which bounds endless ``na`` exchanges and peers that drip
bytes (ROBUSTNESS 5).

The listener reads the dialer's header before it writes its own (every dialer sends its header
first, without waiting), so against a pipelining dialer the listener's header, its answer and
whatever the selected protocol writes next can leave in one segment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from rapidp2p.exceptions import NegotiationError, ProtocolNotSupported, UnexpectedEOF, VarintError
from rapidp2p.protocols.framing import ByteStream as ByteStream
from rapidp2p.protocols.framing import UvarintDecoder
from rapidp2p.protocols.framing import read_exactly as _read_exactly
from rapidp2p.protocols.multistream._proto import (
    LS,
    MAX_LENGTH_BYTES,
    NA,
    PROTOCOL_ID,
    check_length,
    decode_body,
    encode_ls_response,
    encode_message,
    encode_messages,
)
from rapidp2p.protocols.multistream._timeout import run_with_timeout

DEFAULT_TIMEOUT = 10.0
"""go-libp2p's protocol negotiation timeout."""
MAX_PROPOSALS = 256
"""Proposals a listener answers before giving up, even within the timeout."""

_T = TypeVar("_T")
_HEADER = encode_message(PROTOCOL_ID)


async def read_exactly(stream: ByteStream, n: int) -> bytes:
    """Reads exactly ``n`` bytes; EOF first raises NegotiationError."""
    try:
        return await _read_exactly(stream, n)
    except UnexpectedEOF as exc:
        raise NegotiationError("stream ended during multistream negotiation") from exc


async def read_message(stream: ByteStream) -> str:
    """Reads one multistream message without reading past it."""
    decoder = UvarintDecoder(MAX_LENGTH_BYTES)
    read = stream.read
    try:
        while True:
            byte = await read(1)
            if not byte:
                raise NegotiationError("stream ended during multistream negotiation")
            length = decoder.push(byte[0])
            if length is not None:
                break
    except VarintError as exc:
        raise NegotiationError(f"multistream length prefix: {exc}") from exc
    check_length(length)
    body = await read(length)  # usually the whole body: one read
    if len(body) < length:
        if not body:
            raise NegotiationError("stream ended during multistream negotiation")
        body += await read_exactly(stream, length - len(body))
    return decode_body(body)


async def _bounded(coro: Awaitable[_T], timeout: float | None) -> _T:
    try:
        return await run_with_timeout(coro, timeout)
    except asyncio.TimeoutError as exc:
        raise NegotiationError(f"multistream negotiation timed out after {timeout} s") from exc


async def _expect_header(stream: ByteStream) -> None:
    header = await read_message(stream)
    if header != PROTOCOL_ID:
        raise NegotiationError(f"unexpected multistream header {header[:64]!r}")


async def select_outbound(
    stream: ByteStream,
    protocols: Sequence[str],
    *,
    lazy: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> str:
    """Dialer side: proposes ``protocols`` in order; returns the first one the peer accepts.

    ``lazy=False`` is the textbook flow (header, wait for the header, then propose): two round
    trips. ``lazy=True`` sends the header and the first proposal in one write and then checks
    both answers: one round trip; every libp2p implementation accepts it. For a zero round trip
    selection of a single protocol use :func:`select_outbound_lazy`.
    Raises ProtocolNotSupported when every proposal got ``na``, NegotiationError otherwise.
    """
    if not protocols:
        raise ValueError("select_outbound needs at least one protocol")
    return await _bounded(_select_outbound(stream, list(protocols), lazy), timeout)


async def _select_outbound(stream: ByteStream, protocols: list[str], lazy: bool) -> str:
    if lazy:
        stream.write(encode_messages(PROTOCOL_ID, protocols[0]))
        await stream.drain()
        await _expect_header(stream)
    else:
        stream.write(_HEADER)
        await stream.drain()
        await _expect_header(stream)
        stream.write(encode_message(protocols[0]))
        await stream.drain()
    for i, proto in enumerate(protocols):
        if i:
            stream.write(encode_message(proto))
            await stream.drain()
        answer = await read_message(stream)
        if answer == proto:
            return proto
        if answer != NA:
            raise NegotiationError(f"peer answered {answer[:64]!r} to proposal {proto!r}")
    raise ProtocolNotSupported(f"peer refused every protocol: {', '.join(protocols)}")


#: Refused proposals remembered for ``select_inbound(refused=...)`` (the first ones).
MAX_REFUSED_RECORDED = 8


async def select_inbound(
    stream: ByteStream,
    protocols: Sequence[str] | Callable[[str], bool],
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    refused: list[str] | None = None,
) -> str:
    """Listener side: answers proposals until one is supported; returns it.

    ``protocols`` is a list of ids or a predicate (for handlers matching many ids). Unknown
    proposals get ``na``; ``ls`` lists the ids when a list was given (empty for a predicate).
    ``refused``, when given, collects the proposals answered ``na`` (the first few), so a
    caller can say what the peer offered when negotiation fails.
    """
    return await _bounded(_select_inbound(stream, protocols, refused), timeout)


async def _select_inbound(
    stream: ByteStream,
    protocols: Sequence[str] | Callable[[str], bool],
    refused: list[str] | None = None,
) -> str:
    if callable(protocols):
        supported = protocols
        listing: list[str] = []
    else:
        listing = list(protocols)
        known = frozenset(listing)
        supported = known.__contains__
    await _expect_header(stream)
    stream.write(_HEADER)
    for _ in range(MAX_PROPOSALS):
        proposal = await read_message(stream)
        if proposal == LS:
            stream.write(encode_ls_response(listing))
        elif proposal != NA and supported(proposal):
            stream.write(encode_message(proposal))
            await stream.drain()
            return proposal
        else:
            if (
                refused is not None
                and proposal != NA
                and len(refused) < MAX_REFUSED_RECORDED
                and proposal not in refused
            ):
                refused.append(proposal)
            stream.write(encode_message(NA))
        await stream.drain()
    raise NegotiationError(f"peer made over {MAX_PROPOSALS} proposals")


async def select_outbound_lazy(
    stream: ByteStream, protocol: str, *, timeout: float | None = DEFAULT_TIMEOUT
) -> LazyNegotiatedStream:
    """Zero round trip selection of one protocol (optimistic, like go-libp2p's lazy client).

    Writes the header and the proposal, then returns at once: the caller may write its
    application data immediately. The peer's answers are checked on the first ``read`` (or an
    explicit :meth:`LazyNegotiatedStream.confirm`), which raises ProtocolNotSupported if the
    peer refused. A caller that only writes should ``confirm()`` before trusting delivery.
    """
    stream.write(encode_messages(PROTOCOL_ID, protocol))
    return LazyNegotiatedStream(stream, protocol, timeout)


class LazyNegotiatedStream:
    """A ByteStream whose multistream answers are validated before the first byte is read."""

    def __init__(self, inner: ByteStream, protocol: str, timeout: float | None) -> None:
        self.inner = inner
        self.protocol = protocol
        self._timeout = timeout
        self._confirmed = False
        self._error: BaseException | None = None
        self._lock = asyncio.Lock()

    async def confirm(self) -> None:
        """Reads and checks the peer's header and answer (once; later calls are free)."""
        if self._confirmed:
            return
        async with self._lock:
            if self._error is not None:
                raise self._error
            if self._confirmed:
                return
            try:
                await _bounded(self._check(), self._timeout)
            except BaseException as exc:
                self._error = exc
                raise
            self._confirmed = True

    async def _check(self) -> None:
        await _expect_header(self.inner)
        answer = await read_message(self.inner)
        if answer == NA:
            raise ProtocolNotSupported(f"peer refused {self.protocol!r}")
        if answer != self.protocol:
            raise NegotiationError(f"peer answered {answer[:64]!r} to proposal {self.protocol!r}")

    async def read(self, n: int) -> bytes:
        if not self._confirmed:
            await self.confirm()
        return await self.inner.read(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes after the answers were checked (the inner stream's
        ``readexactly`` when it has one: the Noise handshake reads that way)."""
        if not self._confirmed:
            await self.confirm()
        inner_exact = getattr(self.inner, "readexactly", None)
        if inner_exact is not None:
            data: bytes = await inner_exact(n)
            return data
        return await read_exactly(self.inner, n)

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    async def drain(self) -> None:
        await self.inner.drain()
