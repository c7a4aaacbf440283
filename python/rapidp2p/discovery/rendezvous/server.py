"""The rendezvous server as a host service: ``await server.start(host)``."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from rapidp2p.discovery.rendezvous._proto import (
    MAX_MESSAGE_SIZE,
    PROTOCOL_ID,
    Discover,
    Message,
    Register,
    RegistrationBook,
    RendezvousError,
    ServerLimits,
    Unregister,
)
from rapidp2p.protocols.framing import read_delimited, write_delimited
from rapidp2p.protocols.multistream._timeout import run_with_timeout

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream
    from rapidp2p.host.host import Host

__all__ = ["RendezvousServer"]

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 30.0
"""A stream waiting this long for its next request is closed."""
MAX_REQUESTS_PER_STREAM = 64


class RendezvousServer:
    """Serves ``/rendezvous/1.0.0``: registrations verified against the sender's signed peer
    record, capped per peer and in total (:class:`ServerLimits`), discovery with cookies."""

    protocols: tuple[str, ...] = (PROTOCOL_ID,)
    service_name = "libp2p.rendezvous"

    def __init__(self, limits: ServerLimits | None = None) -> None:
        self.book = RegistrationBook(limits)
        self._host: Host | None = None
        #: Counters by outcome, for ``rapidp2p rendezvous serve --json`` and tests.
        self.stats: dict[str, int] = {}

    def on_connection(self, conn: object) -> None:
        """Nothing to do per connection (a discovery source only dials)."""

    async def start(self, host: Host) -> None:
        self._host = host
        host.set_stream_handler(PROTOCOL_ID, self._handle)
        await host.add_service(self)  # registers first: the nested start is skipped

    async def close(self) -> None:
        if self._host is not None:
            self._host.remove_stream_handler(PROTOCOL_ID)
            self._host = None

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    async def _handle(self, stream: Stream) -> None:
        sender = stream.remote_peer
        loop = asyncio.get_running_loop()
        for _ in range(MAX_REQUESTS_PER_STREAM):
            try:
                raw = await run_with_timeout(read_delimited(stream, MAX_MESSAGE_SIZE), IDLE_TIMEOUT)
            except asyncio.TimeoutError:
                break
            if raw is None:
                break
            try:
                msg = Message.decode(raw)
            except RendezvousError as exc:
                self._count("bad_message")
                log.debug("rendezvous: bad message from %s: %s", sender, exc)
                stream.reset()
                return
            body = msg.body
            now = loop.time()
            if isinstance(body, Register):
                reply = self.book.register(sender, body, now)
                self._count("registered" if reply.status == 0 else "register_refused")
                await write_delimited(stream, Message(reply).encode())
            elif isinstance(body, Unregister):
                self.book.unregister(sender, body)
                self._count("unregistered")
            elif isinstance(body, Discover):
                answer = self.book.discover(body, now)
                self._count("discover_served" if answer.status == 0 else "discover_refused")
                await write_delimited(stream, Message(answer).encode())
            else:  # a response sent to a server
                self._count("bad_message")
                stream.reset()
                return
        await stream.close()
