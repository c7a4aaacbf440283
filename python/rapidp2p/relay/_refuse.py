"""Refusing a relay request: the status first, then a reset of that stream only."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from rapidp2p.exceptions import Libp2pError
from rapidp2p.protocols.framing import write_delimited

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream

__all__ = ["REFUSAL_LINGER", "send_then_reset"]

#: Seconds a refused stream waits for the peer to read the status before it is reset.
REFUSAL_LINGER = 2.0


async def send_then_reset(stream: Stream, message: bytes) -> None:
    """Sends ``message`` (an encoded status) and FIN, lets the peer read them (a reset right
    away would make the receiver drop them), then resets the stream: never the connection."""
    with contextlib.suppress(Libp2pError, asyncio.TimeoutError):
        await write_delimited(stream, message)
        await stream.close()
        await stream.wait_remote_closed(REFUSAL_LINGER)
    stream.reset()
