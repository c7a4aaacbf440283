"""The client side of kad requests (go-libp2p-kad-dht's message sender): requests on streams
kept open per peer and reused, the answer checked against the request's type; a peer that
answers is a server and joins the routing table.

The spec lets a requester send further requests on a stream once the previous answer
arrived ("implementations may choose to re-use streams"), and every server must serve
several requests per stream; go-libp2p-kad-dht keeps one stream per peer this way. A lookup
asks the same peers again and again, so reusing a stream saves, per request, the stream's
opening and closing frames, the protocol negotiation, a handler task on the server and the
bookkeeping of both muxers: most of what a small request costs on loopback. A stream that
the peer closed or reset while it sat idle is replaced by a fresh one, once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from rapidp2p.exceptions import RemoteProtocolError, UnexpectedEOF
from rapidp2p.kad._proto import KadMessage
from rapidp2p.peer import PeerId
from rapidp2p.protocols.framing import FrameSplitter, encode_delimited

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream
    from rapidp2p.kad.dht import KadDHT

__all__ = ["FrameReader", "Messenger"]

#: Idle streams kept per peer (requests to one peer at once beyond this open more streams,
#: closed after use). Servers cap the streams they serve per connection (32 here, in go
#: and in rust), so keep well under that.
MAX_IDLE_PER_PEER = 4
#: Idle streams kept in all: the pool never holds more, whatever the number of peers.
MAX_IDLE = 256
#: An idle stream older than this is closed instead of reused: servers close streams idle
#: for a minute (go-libp2p-kad-dht, and ``KadConfig.stream_idle_timeout`` here).
IDLE_REUSE_SECONDS = 20.0
#: Bytes asked of the stream per read: a whole kad answer (k peers) usually fits.
_READ_SIZE = 1 << 16


class FrameReader:
    """Length-prefixed messages off one stream: one stream read per arrival and one Rust
    call to split it, instead of a read per length byte. Bytes past one message stay here
    for the next :meth:`next` (a requester may send its next request right behind)."""

    __slots__ = ("_frames", "_splitter", "stream")

    def __init__(self, stream: Stream, max_size: int) -> None:
        self.stream = stream
        self._splitter = FrameSplitter(max_size)
        self._frames: deque[bytes] = deque()

    @property
    def buffered(self) -> bool:
        """True when whole or partial messages were read and not yet returned."""
        return bool(self._frames) or self._splitter.pending > 0

    async def next(self) -> bytes | None:
        """The next message; None at a clean EOF between messages. Raises FrameTooLarge over
        the size limit, VarintError on a bad length, UnexpectedEOF inside a message."""
        frames = self._frames
        while not frames:
            chunk = await self.stream.read(_READ_SIZE)
            if not chunk:
                if self._splitter.pending:
                    raise UnexpectedEOF("kad stream ended inside a message")
                return None
            got = self._splitter.feed(chunk)
            if got:
                frames.extend(got)
        return frames.popleft()


class _Idle:
    """A stream between requests: its reader and when it was last used."""

    __slots__ = ("reader", "since")

    def __init__(self, reader: FrameReader, since: float) -> None:
        self.reader = reader
        self.since = since


class Messenger:
    """Sends kad requests for one DHT node, on a pool of reusable streams per peer."""

    def __init__(self, dht: KadDHT) -> None:
        self._dht = dht
        self._idle: dict[PeerId, list[_Idle]] = {}
        self._idle_count = 0

    async def request(self, peer: PeerId, msg: KadMessage, *, reply: bool = True) -> KadMessage:
        """Sends ``msg`` to ``peer`` and returns the answer (or ``msg`` itself for a one-way
        message, once the peer consumed it)."""
        dht = self._dht
        cfg = dht.config
        timeout = cfg.request_timeout
        data = encode_delimited(msg.encode())
        if not reply:
            return await self._one_way(peer, msg, data)
        answer: KadMessage | None = None
        reader = self._take(peer)
        if reader is not None:
            try:
                answer = await self._ask(reader, data)
            except (asyncio.CancelledError, TimeoutError):
                reader.stream.reset()
                raise
            except Exception:
                # The peer closed or reset the stream while it was idle (or the connection
                # went away): not an answer. Ask once more on a fresh stream.
                reader.stream.reset()
                answer = None
        if answer is None or reader is None:
            stream = await asyncio.wait_for(dht.host.new_stream(peer, dht.protocol), timeout)
            reader = FrameReader(stream, cfg.max_message_size)
            try:
                answer = await self._ask(reader, data)
            except BaseException:
                stream.reset()
                raise
            if answer is None:
                stream.reset()
                raise RemoteProtocolError("kad stream closed before the answer")
        if answer.type != msg.type:
            reader.stream.reset()
            raise RemoteProtocolError(f"kad answer type {answer.type} for request {msg.type}")
        self._give_back(peer, reader)
        dht.membership.add(peer)  # it answered: a server
        return answer

    async def _ask(self, reader: FrameReader, data: bytes) -> KadMessage | None:
        """One request and its answer on ``reader``'s stream (None: EOF before the answer)."""
        cfg = self._dht.config
        stream = reader.stream
        stream.write(data)
        await stream.drain()
        raw = await asyncio.wait_for(reader.next(), cfg.request_timeout)
        if raw is None:
            return None
        return KadMessage.decode(raw, cfg.max_message_size, cfg.k)

    async def _one_way(self, peer: PeerId, msg: KadMessage, data: bytes) -> KadMessage:
        """A message without an answer (ADD_PROVIDER) on a stream of its own: it counts as
        delivered only once the peer read it, which its closing after our EOF shows (a FIN
        of ours alone proves nothing)."""
        dht = self._dht
        timeout = dht.config.request_timeout
        stream = await asyncio.wait_for(dht.host.new_stream(peer, dht.protocol), timeout)
        try:
            stream.write(data)
            await stream.drain()
            await stream.close(wait=True, timeout=timeout)
        except BaseException:
            stream.reset()
            raise
        return msg

    # ---- the pool ----------------------------------------------------------------------

    def _take(self, peer: PeerId) -> FrameReader | None:
        """An idle stream to ``peer`` fit for a request (the most recently used), or None."""
        idle = self._idle.get(peer)
        if not idle:
            return None
        now = self._dht._loop_clock()
        while idle:
            entry = idle.pop()
            self._idle_count -= 1
            stream = entry.reader.stream
            if _reusable(entry.reader) and now - entry.since < IDLE_REUSE_SECONDS:
                if not idle:
                    del self._idle[peer]
                return entry.reader
            _retire(stream)
        del self._idle[peer]
        return None

    def _give_back(self, peer: PeerId, reader: FrameReader) -> None:
        """Keeps the stream for the next request to ``peer``, or closes it (pool full, the
        DHT closed, or the stream is no longer usable)."""
        idle = self._idle.get(peer)
        if (
            self._dht.is_closed
            or not _reusable(reader)
            or self._idle_count >= MAX_IDLE
            or (idle is not None and len(idle) >= MAX_IDLE_PER_PEER)
        ):
            _retire(reader.stream)
            return
        if idle is None:
            idle = self._idle[peer] = []
        idle.append(_Idle(reader, self._dht._loop_clock()))
        self._idle_count += 1

    def drop(self, peer: PeerId) -> None:
        """Closes the idle streams to ``peer`` (it disconnected, or left the table)."""
        for entry in self._idle.pop(peer, ()):
            self._idle_count -= 1
            _retire(entry.reader.stream)

    def close(self) -> None:
        """Closes every idle stream (the DHT is closing): the servers then close theirs."""
        for peer in list(self._idle):
            self.drop(peer)

    @property
    def idle_streams(self) -> int:
        """Streams kept open for reuse, all peers together."""
        return self._idle_count


def _reusable(reader: FrameReader) -> bool:
    """Whether another request may go on ``reader``'s stream: both sides open, nothing
    unread (a stray message would be taken for the next answer)."""
    s = reader.stream
    return not (s.is_reset or s.remote_closed or s.write_done or reader.buffered)


def _retire(stream: Stream) -> None:
    """Ends a stream we are done with: FIN (the server then closes its side), or a reset
    when it cannot be closed gracefully."""
    if stream.is_reset:
        return
    try:
        stream.close_write_nowait()
    except Exception:
        stream.reset()
