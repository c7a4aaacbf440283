"""Perf over negotiated streams: the server handler, the client, and host registration.

Both sides move bytes in large blocks of one preallocated zero buffer, so the Python cost per
byte is a few calls per ``BLOCK_SIZE``; encryption and framing happen in the Rust muxer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rapidp2p.exceptions import RemoteProtocolError
from rapidp2p.host.service import ServiceBase
from rapidp2p.protocols.framing import read_exactly
from rapidp2p.protocols.perf._proto import (
    BLOCK_SIZE,
    HEADER_SIZE,
    PROTOCOL_ID,
    Progress,
    Report,
    decode_header,
    encode_header,
)
from rapidp2p.protocols.streams import ClosableStream, half_close

if TYPE_CHECKING:
    from rapidp2p.host import Host

__all__ = ["PerfService", "PerfStream", "handle_perf", "perf_on_stream", "run_perf"]

#: Largest read asked of a stream (chunks come whole from the muxer anyway).
_READ_SIZE = 1 << 24
_ZEROS = bytes(BLOCK_SIZE)

Clock = Callable[[], float]
Emit = Callable[[Report], None]


#: Kept for imports of the old name: the one stream interface of protocol code.
PerfStream = ClosableStream


async def _send_zeros(stream: PerfStream, count: int, on_sent: Callable[[int], None]) -> None:
    """Writes ``count`` zero bytes in ``BLOCK_SIZE`` blocks, waiting for the window each time."""
    block = _ZEROS
    while count >= BLOCK_SIZE:
        stream.write(block)
        await stream.drain()
        count -= BLOCK_SIZE
        on_sent(BLOCK_SIZE)
    if count:
        stream.write(block[:count])
        await stream.drain()
        on_sent(count)


async def handle_perf(stream: PerfStream) -> tuple[int, int]:
    """Serves one perf request; returns (bytes received, bytes sent).

    The reply starts only after the client's EOF (the spec forbids overlapping the phases).
    Any u64 is honoured: this protocol must only be enabled where clients are trusted.
    """
    wanted = decode_header(await read_exactly(stream, HEADER_SIZE))
    received = 0
    while chunk := await stream.read(_READ_SIZE):
        received += len(chunk)
    sent = 0

    def count(n: int) -> None:
        nonlocal sent
        sent += n

    await _send_zeros(stream, wanted, count)
    await half_close(stream)
    return received, sent


async def perf_on_stream(
    stream: PerfStream,
    upload_bytes: int,
    download_bytes: int,
    *,
    progress: Progress | None = None,
    emit: Emit | None = None,
    clock: Clock = time.monotonic,
) -> Progress:
    """The client side on an open perf stream: request, upload, half-close, download.

    ``progress`` (created from ``clock()`` when None) counts the bytes; ``emit`` receives an
    ``intermediary`` report about once a second. Raises RemoteProtocolError when the server
    sends a different number of bytes than requested.
    """
    prog = progress if progress is not None else Progress(clock())

    def sent(n: int) -> None:
        report = prog.add(clock(), up=n)
        if report is not None and emit is not None:
            emit(report)

    stream.write(encode_header(download_bytes))
    await _send_zeros(stream, upload_bytes, sent)
    await half_close(stream)
    got = 0
    while chunk := await stream.read(_READ_SIZE):
        got += len(chunk)
        if got > download_bytes:
            raise RemoteProtocolError(f"server sent more than the {download_bytes} bytes asked")
        report = prog.add(clock(), down=len(chunk))
        if report is not None and emit is not None:
            emit(report)
    if got != download_bytes:
        raise RemoteProtocolError(f"server sent {got} of the {download_bytes} bytes asked")
    return prog


async def run_perf(
    host: Host,
    peer: Any,
    upload_bytes: int,
    download_bytes: int,
    *,
    emit: Emit | None = None,
    clock: Clock = time.monotonic,
) -> Report:
    """Connects (if needed), runs one perf exchange, returns the ``final`` report.

    The time covers the connection setup, the upload and the download, as the test-plans
    runner expects.
    """
    start = clock()
    progress = Progress(start)
    stream = await host.new_stream(peer, PROTOCOL_ID)
    await perf_on_stream(
        stream, upload_bytes, download_bytes, progress=progress, emit=emit, clock=clock
    )
    return progress.final(clock())


class PerfService(ServiceBase):
    """Serves ``/perf/1.0.0`` on a host (never on by default: it lets clients ask for work)::

        perf = await host.add_service(PerfService(host))   # or: await PerfService(host).start()

    A perf client runs many streams in parallel: give the protocol its own inbound-stream
    cap per connection with ``max_inbound_streams`` (None: the host's default).
    """

    protocols = (PROTOCOL_ID,)
    service_name = "libp2p.perf"

    def __init__(self, host: Host, *, max_inbound_streams: int | None = None) -> None:
        self.host = host
        self.max_inbound_streams = max_inbound_streams
        self.requests = 0
        self.bytes_received = 0
        self.bytes_sent = 0

    async def _start(self) -> None:
        self.host.set_stream_handler(
            PROTOCOL_ID, self._handle, max_inbound_streams=self.max_inbound_streams
        )

    async def close(self) -> None:
        """Stops serving ``/perf/1.0.0`` (streams being served finish)."""
        if not self._closed:
            self.host.remove_stream_handler(PROTOCOL_ID)
        await super().close()

    async def _handle(self, stream: Any) -> None:
        self.requests += 1
        received, sent = await handle_perf(stream)
        self.bytes_received += received
        self.bytes_sent += sent
