"""``/echo/1.0.0``: copies every byte back until EOF, then half-closes.

Not a libp2p spec protocol, but the one every implementation's test peers agree on; the
interop suite and ``rapidp2p demo`` use it to move bulk data through a stream both ways.
"""

from __future__ import annotations

from rapidp2p._aio.stream import Stream

__all__ = ["PROTOCOL_ID", "handle_echo"]

PROTOCOL_ID = "/echo/1.0.0"


async def handle_echo(stream: Stream) -> None:
    """Echoes each chunk as it arrives (bounded by the stream's flow control), then closes."""
    async for chunk in stream:
        stream.write(chunk)
        await stream.drain()
    await stream.close()
