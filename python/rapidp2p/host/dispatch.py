"""Inbound stream dispatch: protocol handlers, their per-protocol caps, the tasks serving
each connection (go-libp2p's ``basichost`` mux side, beside the dialer and the services).

Every inbound stream is negotiated (multistream-select over the registered protocol ids),
counted against its protocol's cap on its connection, and served by its handler in a task
that ends with the stream or with the connection. The caps live here and only here: a
service that needs a cap other than ``Limits.max_inbound_streams_per_protocol`` gives it when
it registers (``set_stream_handler(..., max_inbound_streams=n)``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import Libp2pError, ResourceLimitExceeded
from rapidp2p.protocols.multistream import select_inbound
from rapidp2p.transport.contracts import Connection

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = ["ServedStreams", "StreamDispatcher", "StreamHandler"]

log = logging.getLogger("rapidp2p.host")

StreamHandler = Callable[[Stream], Awaitable[None]]


@dataclass
class ServedStreams:
    """What the host runs for one connection: its handler tasks (cancelled with it) and its
    inbound streams being served per protocol (the per-protocol cap)."""

    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    protocol_counts: dict[str, int] = field(default_factory=dict)


class StreamDispatcher:
    """The handler table of one host and the work serving each of its connections."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self.handlers: dict[str, StreamHandler] = {}
        #: The registered id objects (one string per protocol, not one per stream).
        self._ids: dict[str, str] = {}
        #: Per-protocol inbound-stream caps per connection that differ from the default.
        self._caps: dict[str, int] = {}
        #: Per connection: the tasks serving it and its inbound streams per protocol.
        self._served: dict[Connection, ServedStreams] = {}

    # ---- the handler table -------------------------------------------------------------

    def set_handler(
        self, protocol: str, handler: StreamHandler, max_inbound_streams: int | None
    ) -> bool:
        """Registers ``handler``; True if the protocol is new."""
        new = protocol not in self.handlers
        self.handlers[protocol] = handler
        self._ids[protocol] = protocol
        if max_inbound_streams is None:
            self._caps.pop(protocol, None)
        else:
            if max_inbound_streams < 1:
                raise ValueError("max_inbound_streams must be at least 1")
            self._caps[protocol] = max_inbound_streams
        return new

    def remove_handler(self, protocol: str) -> bool:
        """Unregisters ``protocol``; True if it was registered."""
        self._ids.pop(protocol, None)
        self._caps.pop(protocol, None)
        return self.handlers.pop(protocol, None) is not None

    def inbound_cap(self, protocol: str) -> int:
        """Inbound streams of ``protocol`` served at once on one connection."""
        cap = self._caps.get(protocol)
        return self._host.config.limits.max_inbound_streams_per_protocol if cap is None else cap

    # ---- work per connection -----------------------------------------------------------

    def served_by(self, conn: Connection) -> ServedStreams:
        served = self._served.get(conn)
        if served is None:
            served = self._served[conn] = ServedStreams()
        return served

    def spawn_for(self, conn: Connection, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        served = self.served_by(conn)
        task = conn.loop.create_task(coro)
        served.tasks.add(task)
        task.add_done_callback(served.tasks.discard)
        return task

    def tasks_serving(self, conn: Connection) -> set[asyncio.Task[Any]]:
        served = self._served.get(conn)
        return set() if served is None else set(served.tasks)

    def all_tasks(self) -> list[asyncio.Task[Any]]:
        return [t for s in self._served.values() for t in s.tasks]

    def cancel_served(self, conn: Connection) -> None:
        served = self._served.pop(conn, None)
        if served is not None:
            for task in list(served.tasks):
                task.cancel()

    # ---- inbound streams ---------------------------------------------------------------

    def on_inbound_stream(self, stream: Stream) -> None:
        # The connection's ServedStreams holds the only strong reference (cancelled when the
        # connection closes); the task removes itself when it ends, so an idle stream costs
        # no done-callback, bound method or host-wide set entry (~300 B per stream).
        host = self._host
        mux = stream.conn
        cs = host._conn_scopes.get(mux)
        if cs is not None:
            try:
                ss = cs.open_stream("inbound")
            except ResourceLimitExceeded as err:
                host._refusal_log.refused(f"inbound stream from {mux.remote_peer}", err)
                stream.reset()
                return
            ss.attach(stream.stream_id)
        self.spawn_for(mux, self._serve_stream(stream))

    async def _serve_stream(self, stream: Stream) -> None:
        host = self._host
        handlers = self.handlers
        mux = stream.conn
        try:
            try:
                proto = await select_inbound(
                    stream, handlers.__contains__, timeout=host.config.negotiation_timeout
                )
            except (
                Libp2pError,
                asyncio.IncompleteReadError,
                asyncio.TimeoutError,
                OSError,
            ) as exc:
                log.debug("inbound stream negotiation failed: %s", exc)
                stream.reset()
                return
            handler = handlers.get(proto)
            # The registered id object, not the decoded copy (one string less per stream).
            stream.protocol = proto = self._ids.get(proto, proto)
            host._observe_stream(stream)
            counts = self.served_by(mux).protocol_counts
            if handler is None or counts.get(proto, 0) >= self.inbound_cap(proto):
                stream.reset()  # ROBUSTNESS 28: excess inbound streams are dropped
                return
            cs = host._conn_scopes.get(mux)
            ss = None if cs is None else cs.streams.get(stream.stream_id)
            if ss is not None:
                try:
                    ss.set_protocol(proto, host._services.scope_of(proto))
                except ResourceLimitExceeded as err:
                    host._refusal_log.refused(f"inbound {proto} stream from {mux.remote_peer}", err)
                    stream.reset()
                    return
            counts[proto] = counts.get(proto, 0) + 1
            try:
                await handler(stream)
            except asyncio.CancelledError:
                stream.reset()
                raise
            except Exception as exc:  # a handler's failure resets its stream, nothing more
                if not isinstance(exc, Libp2pError):
                    log.exception("stream handler for %s failed", proto)
                stream.reset()
            finally:
                counts[proto] -= 1
        finally:
            served = self._served.get(mux)
            if served is not None:
                served.tasks.discard(asyncio.current_task())
