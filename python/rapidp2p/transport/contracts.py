"""The two interfaces every transport's connection implements, whatever carries its bytes.

- :class:`Connection` is what the host, the services and the resource manager see of a secured,
  multiplexed connection (TCP + Noise/TLS + yamux, QUIC, a relayed circuit, ...). Nothing
  outside a transport reads a connection's private fields.
- :class:`StreamCarrier` is what a :class:`~rapidp2p._aio.stream.Stream` needs from the
  connection that carries it: one ``Stream`` class serves every transport, so reading, writing,
  backpressure and graceful close behave the same on yamux and on QUIC streams.
- :class:`ReceiveMemory` is what a connection reserves its unread bytes from (the host sets
  the resource manager's connection scope there): the transport knows what it buffers, the
  host knows the limits, neither imports the other.

Host bookkeeping (the tasks serving a connection's streams, per-protocol stream counts) lives in
the host, keyed by the connection, not on the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream
    from rapidp2p.crypto import PublicKey
    from rapidp2p.metrics._counters import ByteCounter
    from rapidp2p.peer import Multiaddr, PeerId

__all__ = ["Connection", "Direction", "ReceiveMemory", "StreamCarrier"]

Direction = Literal["inbound", "outbound"]


class ReceiveMemory(Protocol):
    """Memory for receive-window growth and for bytes received but not yet read by the
    application (set by the host: the connection's resource scope).

    Nothing is reserved up front: a window at its initial size costs nothing, an idle
    connection holds no reservation. A connection reserves a window's growth when auto-tuning
    grows it (:meth:`reserve_window`, which may give less: the window then grows by less, or
    not at all) and gives it back when the stream ends (:meth:`release_window`); it reserves
    unread bytes at most once per socket read (never per frame) and gives back what the
    application has read. When an unread reservation is refused the connection degrades
    instead of failing: the stream holding the most is reset when it alone is over
    ``stream_memory_limit`` or several streams hold unread bytes. It keeps reading its socket
    (window updates and pings must get through).
    """

    @property
    def stream_memory_limit(self) -> int:
        """Unread bytes one stream may hold when memory is short."""
        ...

    def reserve_unread(self, n: int) -> BaseException | None:
        """Takes ``n`` more bytes; None when granted, else the refusal (naming its scope)."""
        ...

    def release_unread(self, n: int) -> None:
        """Gives back ``n`` bytes reserved before."""
        ...

    def reserve_window(self, want: int) -> int:
        """Window growth: reserves up to ``want`` bytes (less when refused, down to a floor);
        returns the bytes reserved, 0 when refused (the window then stays as it is)."""
        ...

    def release_window(self, n: int) -> None:
        """Gives back ``n`` bytes of window growth (the streams holding it ended)."""
        ...


class StreamCarrier(Protocol):
    """The connection side of one stream (called by :class:`Stream` only)."""

    loop: asyncio.AbstractEventLoop
    #: Seconds a ``drain`` may wait for the peer's window (None: forever).
    default_write_timeout: float | None
    #: True while the socket refuses writes (``drain`` then awaits :meth:`wait_writable`).
    write_paused: bool

    @property
    def remote_peer(self) -> PeerId: ...

    @property
    def is_closed(self) -> bool: ...

    def stream_send(
        self, stream: Stream, data: bytes, fin: bool, start: int = 0, end: int = -1
    ) -> int:
        """Offers ``data[start:end]`` (``end=-1``: to the end) to the stream; returns the bytes
        taken now (the send window may take fewer); ``fin`` applies only if all were taken."""
        ...

    def stream_send_window(self, stream: Stream) -> int:
        """Bytes :meth:`stream_send` would take now (0 when the stream is gone)."""
        ...

    def stream_close(self, stream: Stream) -> None:
        """Half-closes our side (FIN after queued data); idempotent."""
        ...

    def stream_reset(self, stream: Stream) -> None:
        """Resets the stream both ways; a no-op when it is gone."""
        ...

    def stream_consumed(self, stream: Stream, n: int) -> None:
        """The application read ``n`` bytes: grant flow-control credit for them."""
        ...

    def stream_discarded(self, n: int) -> None:
        """``n`` received bytes were dropped unread (reset): release their accounting."""
        ...

    async def wait_writable(self) -> None:
        """Returns when the socket accepts writes again (transport backpressure)."""
        ...


class Connection(Protocol):
    """A secured, multiplexed connection to one peer, as the host sees it."""

    loop: asyncio.AbstractEventLoop
    remote_peer: PeerId
    local_peer: PeerId
    #: The remote's identity key (proved by the handshake).
    remote_key: PublicKey | None
    remote_addr: Multiaddr | None
    local_addr: Multiaddr | None
    direction: Direction
    #: Security protocol id (``/noise``, ``/tls/1.0.0``; QUIC reports ``/tls/1.0.0``).
    security: str | None
    #: Stream muxer id (``/yamux/1.0.0``; QUIC reports ``quic``).
    muxer: str | None
    #: True for a connection the carrier limits in time and bytes (a Circuit Relay v2
    #: circuit): protocols that move much data (perf, bulk transfers) should avoid it.
    limited: bool
    #: Why the connection ended (or is ending), once it does.
    close_reason: BaseException | None
    #: The remote's GoAway code once it sent one (no new streams), else None.
    go_away_code: int | None
    #: ``loop.time()`` when the connection object was made / the socket connected.
    opened_at: float
    connected_at: float | None
    #: Wire bytes, when metrics are on.
    byte_counter: ByteCounter | None
    default_write_timeout: float | None
    #: Called with each inbound stream (set by the host).
    on_stream: Callable[[Stream], None] | None
    #: Called once when the connection is gone.
    on_close: list[Callable[[Connection], None]]
    #: Called with a stream id when that stream leaves the connection (resource accounting).
    on_stream_end: Callable[[int], None] | None
    #: Where unread received bytes are reserved (set by the host; None: not accounted).
    receive_memory: ReceiveMemory | None

    def __hash__(self) -> int: ...

    @property
    def is_closed(self) -> bool: ...

    @property
    def streams(self) -> list[Stream]: ...

    @property
    def num_streams(self) -> int: ...

    @property
    def rtt(self) -> float | None:
        """Smoothed round-trip time, when the transport measures one."""
        ...

    @property
    def settled(self) -> bool:
        """True when closing now loses nothing we wrote (see ``Stream.settled``)."""
        ...

    async def open_stream(self) -> Stream: ...

    async def ping(self) -> float:
        """A transport-level round trip (yamux ping, QUIC PING); seconds."""
        ...

    async def ping_after_flush(self) -> float:
        """Writes everything queued, then pings: the answer proves the remote's transport
        received every byte written before it."""
        ...

    def set_receive_budget(self, total_bytes: int) -> None:
        """Caps the receive windows' growth beyond their initial sizes (the memory reserved
        for it); windows already granted are kept. A transport that reserves its growth from
        ``receive_memory`` itself sets this on its own."""
        ...

    @property
    def receive_window_total(self) -> int:
        """Sum of all live streams' receive windows now."""
        ...

    @property
    def unread_bytes(self) -> int:
        """Bytes received and not yet read by the application, all streams together."""
        ...

    @property
    def receive_budget_hit(self) -> bool:
        """True once window growth was held back by the budget since it was last set."""
        ...

    def shutdown_streams(self) -> None:
        """FIN on every stream after its queued data (first step of a graceful close)."""
        ...

    async def wait_settled(self) -> None: ...

    def go_away(self, code: int = 0) -> None:
        """No new streams either way (yamux GoAway, QUIC stream limits)."""
        ...

    async def close(self) -> None:
        """Graceful: tells the peer, flushes, closes, waits until gone."""
        ...

    def abort(self, reason: BaseException | None = None) -> None:
        """Drops the connection at once (no flush)."""
        ...

    async def wait_closed(self) -> None: ...
