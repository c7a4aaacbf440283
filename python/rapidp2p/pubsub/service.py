"""The asyncio side of pubsub: streams, per-peer writers, validators, subscriptions, heartbeat.

```python
async with GossipSub(host) as ps:         # or FloodSub(host); start() is idempotent
    sub = await ps.subscribe("chat")
    await ps.wait_for_subscribers("chat", n=1, timeout=10)   # before a first publish
    await ps.publish("chat", b"hello")
    async for msg in sub:
        print(msg.data)
```

A pubsub is a host service (:mod:`rapidp2p.host.service`): it serves nothing until it is
started, with ``await ps.start()``, ``async with``, or ``await host.add_service(ps)`` (all
the same thing); ``close()`` (or leaving the ``async with``, or closing the host) stops it.
Subscribing or publishing before it started raises LocalProtocolError.

Each peer gets one outbound stream (we write) and may open one to us (we read), as in every
libp2p pubsub implementation. The router (:mod:`rapidp2p.pubsub.router`) decides everything;
this module only moves its frames, runs validators and fans messages out to subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from rapidp2p.exceptions import (
    FrameTooLarge,
    Libp2pError,
    LocalProtocolError,
    NoSubscribersError,
    ProtobufError,
    VarintError,
)
from rapidp2p.host.events import PeerDisconnected
from rapidp2p.host.service import ServiceBase
from rapidp2p.protocols.framing import FrameSplitter, encode_uvarint
from rapidp2p.pubsub._rpc import Message, MessageIdFn, decode_rpc, sign_message
from rapidp2p.pubsub.params import (
    FLOODSUB,
    MESHSUB_V10,
    MESHSUB_V11,
    MESHSUB_V12,
    GossipSubParams,
    PeerScoreParams,
    PeerScoreThresholds,
    SignaturePolicy,
    TopicScoreParams,
)
from rapidp2p.pubsub.router import Router, ValidationResult

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream
    from rapidp2p.host import Host
    from rapidp2p.peer import PeerId
    from rapidp2p.transport.contracts import Connection

__all__ = [
    "Delivery",
    "FloodSub",
    "GossipSub",
    "PubSub",
    "PublishReceipt",
    "Subscription",
    "Validator",
]

log = logging.getLogger("rapidp2p.pubsub")

ValidatorResult = ValidationResult | bool | None
Validator = Callable[["PeerId", Message], ValidatorResult | Awaitable[ValidatorResult]]

_PS = TypeVar("_PS", bound="PubSub")

#: Async validations in flight before new messages are ignored (throttled).
MAX_PENDING_VALIDATIONS = 4096


class Subscription:
    """Messages of one topic, in arrival order. Iterate it; ``cancel()`` to leave."""

    def __init__(self, ps: PubSub, topic: str, maxsize: int) -> None:
        self._ps = ps
        self.topic = topic
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize)
        #: Messages lost because the application did not keep up.
        self.dropped = 0
        self._cancelled = False

    def _offer(self, msg: Message) -> None:
        if self._queue.full():
            self.dropped += 1
            return
        self._queue.put_nowait(msg)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        msg = await self._queue.get()
        if msg is None:
            raise StopAsyncIteration
        return msg

    async def get(self, timeout: float | None = None) -> Message:
        """The next message (asyncio.TimeoutError after ``timeout``)."""
        msg = await asyncio.wait_for(self._queue.get(), timeout)
        if msg is None:
            raise StopAsyncIteration
        return msg

    def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        self._ps._unsubscribe(self)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)


class Delivery(enum.Enum):
    """How far one graceful end of a pubsub stream got."""

    #: The peer closed its side after reading ours to the end: it consumed everything.
    CONSUMED = "consumed"
    #: The peer's muxer acknowledged every byte (a ping answered after them) but the peer
    #: does not close its side (js-libp2p's gossipsub keeps inbound streams open), so its
    #: reading cannot be observed. The host's close linger still gives it time to read.
    RECEIVED = "received"
    #: Neither: reset, connection lost, or no answer in time.
    FAILED = "failed"


@dataclass(frozen=True)
class PublishReceipt:
    """What :meth:`PubSub.publish_confirmed` knows about one message's delivery."""

    message: Message
    #: Peers the router sent the message to.
    sent_to: frozenset[PeerId]
    #: Those of them that consumed it: they read our stream to its end and closed their side.
    consumed_by: frozenset[PeerId]
    #: Those whose libp2p stack acknowledged the bytes without a sign of reading them (see
    #: :attr:`Delivery.RECEIVED`); disjoint from ``consumed_by``.
    received_by: frozenset[PeerId] = frozenset()

    @property
    def delivered(self) -> bool:
        """True when at least one peer consumed the message or acknowledged its bytes."""
        return bool(self.consumed_by or self.received_by)


class _PeerLink:
    """The writer side of one peer: a bounded frame queue drained by one task.

    ``ending`` asks the writer to end its stream gracefully once the queue is empty (FIN,
    then the remote's FIN proves it read everything); ``ended`` futures learn whether it did.
    Later frames go on a new stream.
    """

    __slots__ = ("dropped", "ended", "ending", "frames", "stream", "task", "urgent", "wake")

    def __init__(self) -> None:
        self.frames: deque[list[bytes]] = deque()  # each frame as pieces (frame_parts)
        self.urgent = 0  # control-only frames at the front of ``frames``
        self.wake = asyncio.Event()
        self.stream: Stream | None = None
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.ending: float | None = None  # timeout of the graceful end asked for
        self.ended: list[asyncio.Future[Delivery]] = []

    def settle(self, outcome: Delivery) -> None:
        waiters, self.ended = self.ended, []
        for w in waiters:
            if not w.done():
                w.set_result(outcome)


def _ip_of(mux: Connection) -> str | None:
    addr = mux.remote_addr
    if addr is None:
        return None
    for proto in ("ip4", "ip6"):
        with contextlib.suppress(Exception):
            v = addr.value_for_protocol(proto)
            if v:
                return str(v)
    return None


class PubSub(ServiceBase):
    """A pubsub service on a host (use :class:`GossipSub` or :class:`FloodSub`); start it
    with ``await ps.start()`` or ``await host.add_service(ps)``."""

    def __init__(
        self,
        host: Host,
        *,
        params: GossipSubParams | None = None,
        score_params: PeerScoreParams | None = None,
        thresholds: PeerScoreThresholds | None = None,
        signature_policy: SignaturePolicy = SignaturePolicy.STRICT_SIGN,
        message_id_fn: MessageIdFn | None = None,
        protocols: Sequence[str] = (MESHSUB_V12, MESHSUB_V11, MESHSUB_V10, FLOODSUB),
        flood_only: bool = False,
        subscription_queue: int = 1024,
    ) -> None:
        self.host = host
        self.loop = asyncio.get_running_loop()
        self.params = params or GossipSubParams()
        self.router = Router(
            host.peer_id,
            self.params,
            score_params=score_params,
            thresholds=thresholds,
            signature_policy=signature_policy,
            message_id_fn=message_id_fn,
            flood_only=flood_only,
        )
        self.router.signed_record_for = self._signed_record_for
        self.protocols = list(protocols)
        self.service_name = "libp2p.pubsub"
        self._subscription_queue = subscription_queue
        self._subs: dict[str, set[Subscription]] = {}
        self._validators: dict[str, Validator] = {}
        self._links: dict[Any, _PeerLink] = {}
        self._seqno = itertools.count(time.time_ns())
        self._pending_validations = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._flush_handle: asyncio.Handle | None = None
        #: ``wait_for_subscribers`` calls in progress: (topic, n, future), checked on flush.
        self._sub_waiters: list[tuple[str, int, asyncio.Future[None]]] = []
        #: ``wait_for_mesh`` calls in progress: (topic, n, future), checked on flush.
        self._mesh_waiters: list[tuple[str, int, asyncio.Future[None]]] = []
        #: Pubsub bytes handed to streams (frames with their length prefixes), for metrics.
        self.bytes_sent = 0
        #: (topic, peer) pairs tagged in the connection manager.
        self._mesh_tagged: set[tuple[str, Any]] = set()

    async def _start(self) -> None:
        # Called once by the host (add_service, or start() which goes through it); the
        # host then hands us its connections through on_connection.
        host = self.host
        for proto in self.protocols:
            host.set_stream_handler(proto, self._handle_inbound)
        host.events.on(PeerDisconnected, self._on_disconnected)
        self._heartbeat_task = self._spawn(self._heartbeat_loop())

    def _check_started(self) -> None:
        if not self._started:
            raise LocalProtocolError(
                "this pubsub service is not started: await ps.start() (or "
                "await host.add_service(ps)) first"
            )

    # ---- public API --------------------------------------------------------------------

    async def __aenter__(self: _PS) -> _PS:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def unsubscribe(self, topic: str) -> None:
        """Leaves ``topic``: every :class:`Subscription` to it ends (its iterator stops) and
        peers are told. Unknown topics are ignored."""
        for sub in list(self._subs.get(topic, ())):
            sub.cancel()

    async def wait_for_subscribers(
        self, topic: str, n: int = 1, timeout: float | None = 10.0
    ) -> set[PeerId]:
        """Waits until at least ``n`` connected peers are subscribed to ``topic``; returns
        them. A message published before any peer has told us it subscribed reaches no one,
        so call this after connecting and before a first publish. Raises
        :class:`~rapidp2p.exceptions.NoSubscribersError` (a TimeoutError) after ``timeout``.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        if len(self.router.topics.get(topic, ())) < n:
            fut: asyncio.Future[None] = self.loop.create_future()
            entry = (topic, n, fut)
            self._sub_waiters.append(entry)
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
            except asyncio.TimeoutError:
                have = len(self.router.topics.get(topic, ()))
                raise NoSubscribersError(
                    f"{have} of {n} peer(s) subscribed to {topic!r} within {timeout} s"
                ) from None
            finally:
                with contextlib.suppress(ValueError):
                    self._sub_waiters.remove(entry)
        return self.topic_peers(topic)

    async def wait_for_mesh(
        self, topic: str, n: int = 1, timeout: float | None = 10.0
    ) -> set[PeerId]:
        """Waits until at least ``n`` peers are in our mesh for ``topic`` (we grafted them or
        they grafted us); returns the mesh. A subscriber that joined a room through one member
        hears messages that member forwards only once they are meshed: before that, only
        gossip reaches it, and a message older than the gossip window never does. Meshing
        takes up to one heartbeat after the subscription is known. Raises
        :class:`~rapidp2p.exceptions.NoSubscribersError` (a TimeoutError) after ``timeout``.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        if len(self.router.mesh.get(topic, ())) < n:
            fut: asyncio.Future[None] = self.loop.create_future()
            entry = (topic, n, fut)
            self._mesh_waiters.append(entry)
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
            except asyncio.TimeoutError:
                have = len(self.router.mesh.get(topic, ()))
                raise NoSubscribersError(
                    f"{have} of {n} peer(s) in the mesh of {topic!r} within {timeout} s"
                ) from None
            finally:
                with contextlib.suppress(ValueError):
                    self._mesh_waiters.remove(entry)
        return self.mesh_peers(topic)

    def _check_mesh_waiters(self) -> None:
        mesh = self.router.mesh
        for topic, n, fut in self._mesh_waiters:
            if not fut.done() and len(mesh.get(topic, ())) >= n:
                fut.set_result(None)

    def _check_sub_waiters(self) -> None:
        topics = self.router.topics
        for topic, n, fut in self._sub_waiters:
            if not fut.done() and len(topics.get(topic, ())) >= n:
                fut.set_result(None)

    async def subscribe(self, topic: str) -> Subscription:
        """Joins ``topic`` (announcing it, building a mesh); returns a message iterator."""
        self._check_started()
        sub = Subscription(self, topic, self._subscription_queue)
        self._subs.setdefault(topic, set()).add(sub)
        self.router.join(topic, self.loop.time())
        self._flush()
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[sub.topic]
            self.router.leave(sub.topic, self.loop.time())
            self._flush()

    async def publish(self, topic: str, data: bytes) -> Message:
        """Signs (per the policy), validates locally and sends ``data`` on ``topic``.

        Returns once the message is queued for its peers: that is not delivery. Use
        :meth:`publish_confirmed` to learn which peers consumed it, or close the host
        gracefully (its linger waits for peers to read what was sent)."""
        msg, _targets = await self._publish(topic, data)
        return msg

    async def publish_confirmed(
        self, topic: str, data: bytes, *, timeout: float = 10.0
    ) -> PublishReceipt:
        """Publishes, then ends the stream to every peer the message went to and waits (up to
        ``timeout`` s) until each peer consumed it: pubsub has no acknowledgements, but a
        peer that read our stream to its end closes its side, and only then is the message
        surely in its hands. Later messages go on new streams.

        Meant for the last messages of short-lived programs (scripts, CLIs, jobs): a peer
        limits how many pubsub streams it accepts per connection, so don't confirm every
        message of a long-lived node this way.
        """
        msg, targets = await self._publish(topic, data)
        outcomes = await self.end_streams(targets, timeout=timeout)
        return PublishReceipt(
            msg,
            frozenset(targets),
            frozenset(p for p, o in outcomes.items() if o is Delivery.CONSUMED),
            frozenset(p for p, o in outcomes.items() if o is Delivery.RECEIVED),
        )

    async def end_streams(
        self, peers: Iterable[PeerId] | None = None, *, timeout: float = 10.0
    ) -> dict[PeerId, Delivery]:
        """Ends our outbound stream to ``peers`` (default: all) gracefully, after every queued
        frame, and says per peer how far delivery can be shown (:class:`Delivery`). Frames
        queued later open new streams."""
        wanted = list(self._links) if peers is None else list(peers)
        waits: dict[PeerId, asyncio.Future[Delivery]] = {}
        self._flush()
        for peer in wanted:
            link = self._links.get(peer)
            if link is None:
                continue
            fut: asyncio.Future[Delivery] = self.loop.create_future()
            link.ended.append(fut)
            link.ending = timeout
            link.wake.set()
            waits[peer] = fut
        if not waits:
            return {}
        await asyncio.wait(waits.values(), timeout=timeout)
        return {p: f.result() if f.done() else Delivery.FAILED for p, f in waits.items()}

    async def _publish(self, topic: str, data: bytes) -> tuple[Message, set[PeerId]]:
        self._check_started()
        router = self.router
        if router.signature_policy is SignaturePolicy.STRICT_SIGN:
            seq = next(self._seqno) & 0xFFFFFFFFFFFFFFFF
            msg = Message(topic, bytes(data), self.host.peer_id.to_bytes(), seq.to_bytes(8, "big"))
            sign_message(self.host.key, msg)
        else:
            msg = Message(topic, bytes(data))
        if msg.size > self.params.max_transmit_size:
            raise ValueError(
                f"message of {msg.size} bytes exceeds the max transmit size "
                f"{self.params.max_transmit_size}"
            )
        validator = self._validators.get(topic)
        if validator is not None:
            verdict = await self._run_validator(validator, self.host.peer_id, msg)
            if verdict is not ValidationResult.ACCEPT:
                raise ValueError(f"local validator said {verdict.value} to the message")
        targets = router.publish(msg, self.loop.time())
        self._schedule_flush()
        return msg, targets

    def set_validator(self, topic: str, fn: Validator | None) -> None:
        """``fn(peer_id, msg)`` returns (or awaits to) a ValidationResult or a bool."""
        if fn is None:
            self._validators.pop(topic, None)
        else:
            self._validators[topic] = fn

    def set_topic_score_params(self, topic: str, params: TopicScoreParams) -> None:
        """Scoring parameters (:class:`TopicScoreParams`) for one topic."""
        self.router.score.params.topics[topic] = params
        self.router.score.invalidate()

    def peer_score(self, peer: PeerId) -> float:
        return self.router.peer_score(peer, self.loop.time())

    def score_snapshot(self, peer: PeerId) -> dict[str, object]:
        """The score and the counters behind it (works for disconnected peers too)."""
        return self.router.score.snapshot(peer, self.loop.time())

    def mesh_peers(self, topic: str) -> set[PeerId]:
        """Peers in our mesh for ``topic``: those we forward every message to."""
        return set(self.router.mesh.get(topic, ()))

    def topic_peers(self, topic: str) -> set[PeerId]:
        """Connected peers subscribed to ``topic``."""
        return set(self.router.topics.get(topic, ()))

    @property
    def topics(self) -> list[str]:
        return sorted(self.router.my_topics)

    async def wait_sent(self, timeout: float = 10.0) -> None:
        """Waits until every queued frame was handed to the muxer and the socket drained."""
        loop = self.loop
        end = loop.time() + timeout
        self._flush()
        while any(lk.frames for lk in self._links.values() if lk.stream is not None):
            if loop.time() >= end:
                raise asyncio.TimeoutError("pubsub frames still queued")
            await asyncio.sleep(0.005)
        for lk in list(self._links.values()):
            if lk.stream is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(lk.stream.drain(), max(0.0, end - loop.time()))

    async def close(self) -> None:
        """Stops the service. Frames already queued are written and every outbound stream is
        half-closed, never reset (a reset makes a peer drop what it has not read yet); the
        host's close linger then waits for the peers to consume them."""
        if self._closed:
            return
        self._flush()
        # Frames may still wait for their stream to open (a publish right after a peer
        # subscribed): end every live link gracefully, which writes them first. The host's
        # linger deadline bounds the whole close, so this wait uses the same budget.
        live = [
            peer
            for peer, lk in self._links.items()
            if lk.task is not None and not lk.task.done() and (lk.frames or lk.stream)
        ]
        if live:
            deadline = self.host.closing_deadline
            budget = (
                self.host.config.close_linger
                if deadline is None
                else max(0.0, deadline - self.loop.time())
            )
            if budget > 0:
                await self.end_streams(live, timeout=budget)
        self._closed = True
        for subs in list(self._subs.values()):
            for sub in list(subs):
                with contextlib.suppress(asyncio.QueueFull):
                    sub._queue.put_nowait(None)
        for lk in self._links.values():
            stream = lk.stream
            if stream is not None and not stream.is_reset:
                with contextlib.suppress(Libp2pError):
                    if lk.frames:
                        self.bytes_sent += _write_frames(stream, lk.frames)
                    stream.close_write_nowait()
            lk.settle(Delivery.FAILED)
        tasks = list(self._tasks) + [lk.task for lk in self._links.values() if lk.task]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    # ---- host hooks --------------------------------------------------------------------

    def on_connection(self, mux: Connection) -> None:
        """A new connection: open our outbound pubsub stream to the peer."""
        if self._closed:
            return
        peer = mux.remote_peer
        link = self._links.get(peer)
        if link is None:
            link = self._links[peer] = _PeerLink()
        if link.task is None or link.task.done():
            link.task = asyncio.ensure_future(self._sender(peer, link, mux))

    def _on_disconnected(self, ev: PeerDisconnected) -> None:
        peer = ev.peer_id
        link = self._links.pop(peer, None)
        if link is not None and link.task is not None:
            link.task.cancel()
        self.router.remove_peer(peer, self.loop.time())

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _signed_record_for(self, peer: PeerId) -> bytes | None:
        """The peer's signed peer record (envelope bytes) for PX, when the peer store has one."""
        with contextlib.suppress(Libp2pError):
            found = self.host.peerstore.get_peer_record(peer)
            return None if found is None else found[0].raw
        return None

    # ---- writing -----------------------------------------------------------------------

    async def _sender(self, peer: Any, link: _PeerLink, mux: Connection) -> None:
        first = True
        while True:
            stream = await self._open_link_stream(peer, link)
            if stream is None:
                return
            if first:
                first = False
                self.router.add_peer(
                    peer,
                    stream.protocol or FLOODSUB,
                    self.loop.time(),
                    outbound=mux.direction == "outbound",
                    ip=_ip_of(mux),
                )
                self._flush()
            if not await self._write_link(peer, link, stream):
                return
            # A graceful end was asked for: the next frames open a new stream.
            if not link.frames:
                link.wake.clear()
                await link.wake.wait()

    async def _open_link_stream(self, peer: Any, link: _PeerLink) -> Stream | None:
        try:
            stream = await self.host.new_stream(peer, self.protocols, lazy=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("no pubsub stream to %s: %s", peer, exc)
            link.settle(Delivery.FAILED)
            if link.stream is None and self._links.get(peer) is link:
                del self._links[peer]
            return None
        link.stream = stream
        return stream

    async def _write_link(self, peer: Any, link: _PeerLink, stream: Stream) -> bool:
        """Writes queued frames until a graceful end is asked for (returns True once it is
        done) or the stream fails (returns False)."""
        try:
            while True:
                if not link.frames:
                    if link.ending is not None:
                        break
                    link.wake.clear()
                    await link.wake.wait()
                    continue
                link.urgent = 0
                self.bytes_sent += _write_frames(stream, link.frames)
                await stream.drain()
            timeout, link.ending = link.ending, None
            link.stream = None
            link.settle(await _end_gracefully(stream, timeout or 0.0))
            return True
        except asyncio.CancelledError:
            if not self._closed:  # closing ends streams gracefully; only a failure resets
                stream.reset()
            raise
        except Exception as exc:
            log.debug("pubsub stream to %s failed: %s", peer, exc)
            stream.reset()
            link.settle(Delivery.FAILED)
            if self._links.get(peer) is link:
                del self._links[peer]
                self.router.remove_peer(peer, self.loop.time())
            return False

    def _schedule_flush(self) -> None:
        """One flush per loop iteration: every frame read (and message published) in this
        iteration is answered in one frame per peer, written once per peer."""
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Hands the router's output to the peer writers and the subscriptions."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        router = self.router
        cap = self.params.peer_outbound_queue
        for peer, frames in router.take_outgoing_parts().items():
            link = self._links.get(peer)
            if link is None:
                continue
            q = link.frames
            for f in frames:
                if len(q) >= cap:
                    link.dropped += 1
                    continue
                if len(f) == 1:
                    # Control only (IDONTWANT, GRAFT, PRUNE...): ahead of queued messages.
                    q.insert(link.urgent, f)
                    link.urgent += 1
                else:
                    q.append(f)
            link.wake.set()
        if self._sub_waiters:
            self._check_sub_waiters()
        if self._mesh_waiters:
            self._check_mesh_waiters()
        if router.delivered:
            delivered, router.delivered = router.delivered, []
            for msg in delivered:
                for sub in self._subs.get(msg.topic, ()):
                    sub._offer(msg)
        if router.px_candidates:
            cands, router.px_candidates = router.px_candidates, []
            for pid, rec in cands:
                self._spawn(self._connect_px(pid, rec))
        if router.connect_requests:
            reqs, router.connect_requests = router.connect_requests, []
            for peer in reqs:
                self._spawn(self._connect_quietly(peer))

    async def _connect_px(self, pid: bytes, rec: bytes | None) -> None:
        from rapidp2p.peer import PeerId, PeerInfo

        with contextlib.suppress(Exception):
            peer = PeerId.from_bytes(pid)
            if peer == self.host.peer_id or self.host.is_connected(peer):
                return
            if rec is not None:
                from rapidp2p.records import PeerRecord

                _env, record = PeerRecord.open_envelope(rec)
                if record.peer_id != peer:
                    return
                await self.host.connect(PeerInfo(peer, list(record.addrs)))
            else:
                await self.host.connect(peer)

    async def _connect_quietly(self, peer: Any) -> None:
        with contextlib.suppress(Exception):
            await self.host.connect(peer)

    # ---- reading -----------------------------------------------------------------------

    async def _handle_inbound(self, stream: Stream) -> None:
        peer = stream.remote_peer
        router = self.router
        if peer not in router.peers:
            router.add_peer(
                peer,
                stream.protocol or FLOODSUB,
                self.loop.time(),
                outbound=stream.conn.direction == "outbound",
                ip=_ip_of(stream.conn),
            )
            if peer not in self._links:
                self.on_connection(stream.conn)
        # Frames are split out of each chunk read in one Rust call; a frame cut across
        # chunks is collected until complete, then joined once.
        splitter = FrameSplitter(self.params.max_transmit_size)
        try:
            while True:
                chunk = await stream.read(1 << 20)
                if not chunk:
                    # Close our side too: that FIN tells the sender we read everything (it
                    # may be waiting for it before it exits), as go-libp2p-pubsub does.
                    await stream.close()
                    return
                frames = splitter.feed(chunk)
                if frames is None:
                    continue
                self._schedule_flush()  # runs after this chunk's frames, whatever happens
                for frame in frames:
                    self._on_frame(peer, frame)
        except (FrameTooLarge, ProtobufError, VarintError) as exc:
            log.debug("bad pubsub frame from %s: %s", peer, exc)
            router.score.add_penalty(peer, 1)
            stream.reset()
        except (Libp2pError, OSError) as exc:
            log.debug("pubsub stream from %s ended: %s", peer, exc)

    def _on_frame(self, peer: Any, frame: bytes) -> None:
        router = self.router
        rpc = decode_rpc(frame, self.params.max_transmit_size)
        now = self.loop.time()
        new = router.handle_rpc(peer, rpc, now)
        for msg in new:
            validator = self._validators.get(msg.topic)
            if validator is None:
                router.validation_done(msg, ValidationResult.ACCEPT, now)
                continue
            try:
                res = validator(peer, msg)
            except Exception:
                log.exception("validator for %s failed", msg.topic)
                router.validation_done(msg, ValidationResult.IGNORE, now)
                continue
            if inspect.isawaitable(res):
                if self._pending_validations >= MAX_PENDING_VALIDATIONS:
                    router.validation_done(msg, ValidationResult.IGNORE, now)
                    continue
                self._pending_validations += 1
                self._spawn(self._finish_validation(msg, res))
            else:
                router.validation_done(msg, _verdict(res), now)

    async def _finish_validation(self, msg: Message, pending: Awaitable[ValidatorResult]) -> None:
        try:
            verdict = _verdict(await pending)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("validator for %s failed", msg.topic)
            verdict = ValidationResult.IGNORE
        finally:
            self._pending_validations -= 1
        self.router.validation_done(msg, verdict, self.loop.time())
        self._flush()

    async def _run_validator(self, fn: Validator, peer: Any, msg: Message) -> ValidationResult:
        res = fn(peer, msg)
        if inspect.isawaitable(res):
            res = await res
        return _verdict(res)

    def _tag_mesh_peers(self) -> None:
        """Tags mesh peers ``pubsub:<topic>`` and protects direct peers in the host's
        connection manager, so trimming keeps the mesh (after each heartbeat: rare)."""
        cm = self.host.connmgr
        now = {(t, p) for t, peers in self.router.mesh.items() for p in peers}
        for topic, peer in self._mesh_tagged - now:
            cm.untag_peer(peer, f"pubsub:{topic}")
        for topic, peer in now - self._mesh_tagged:
            cm.tag_peer(peer, f"pubsub:{topic}", MESH_TAG_VALUE)
        self._mesh_tagged = now
        for peer in self.router.direct:
            cm.protect(peer, DIRECT_PROTECT_TAG)

    async def _heartbeat_loop(self) -> None:
        interval = self.params.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            try:
                self.router.heartbeat(self.loop.time())
                self._flush()
                self._tag_mesh_peers()
            except Exception:
                log.exception("pubsub heartbeat failed")


#: After the muxer acknowledged our bytes, how long (at least, and in RTTs) a peer that reads
#: to EOF gets to close its side before it counts as :attr:`Delivery.RECEIVED` only.
_FIN_GRACE = 0.5
_FIN_GRACE_RTTS = 4


async def _end_gracefully(stream: Stream, timeout: float) -> Delivery:
    """Half-closes ``stream`` and finds out, within ``timeout`` s, whether the peer consumed
    what we sent (its FIN) or at least received it (a muxer ping answered after our bytes)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    fin = asyncio.ensure_future(stream.close(wait=True, timeout=timeout))
    pong: asyncio.Future[float] | None = None
    try:
        with contextlib.suppress(asyncio.TimeoutError, Libp2pError):
            await asyncio.wait_for(stream.drain(), timeout)
        pong = asyncio.ensure_future(stream.conn.ping_after_flush())
        await asyncio.wait({fin, pong}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not fin.done() and pong.done() and isinstance(pong.exception(), LocalProtocolError):
            # No muxer ping (mplex): only the peer's FIN can tell, so wait for it alone.
            await asyncio.wait({fin}, timeout=max(0.0, end - loop.time()))
        if not fin.done() and pong.done() and pong.exception() is None:
            grace = max(_FIN_GRACE, _FIN_GRACE_RTTS * pong.result())
            await asyncio.wait({fin}, timeout=min(grace, max(0.0, end - loop.time())))
        if fin.done() and fin.exception() is None:
            return Delivery.CONSUMED
        if fin.done():  # reset or connection lost: the peer refused or dropped it
            log.debug("pubsub stream ended without confirmation: %s", fin.exception())
            return Delivery.FAILED
        if pong.done() and pong.exception() is None:
            return Delivery.RECEIVED
        return Delivery.FAILED
    finally:
        for f in (fin, pong):
            if f is not None and not f.done():
                f.cancel()
            if f is not None and f.done() and not f.cancelled():
                f.exception()  # retrieved: no "never retrieved" warning


#: Connection-manager tag value of a mesh peer, per topic (go-libp2p's tag tracer: 20).
MESH_TAG_VALUE = 20
#: Protection tag of direct peers.
DIRECT_PROTECT_TAG = "pubsub:direct"


#: Pieces at least this big are handed to the stream by reference; smaller ones are joined.
_BY_REFERENCE = 4096


def _write_frames(stream: Stream, frames: deque[list[bytes]]) -> int:
    """Writes every queued frame with its length prefix; returns the bytes written.

    Big pieces (forwarded messages) go to the muxer by reference, uncopied; the small ones
    between them are joined into one write.
    """
    small: list[bytes] = []
    sent = 0
    while frames:
        parts = frames.popleft()
        n = sum(len(p) for p in parts)
        prefix = encode_uvarint(n)
        sent += n + len(prefix)
        small.append(prefix)
        for p in parts:
            if len(p) >= _BY_REFERENCE:
                if small:
                    stream.write(b"".join(small))
                    small = []
                stream.write(p)
            else:
                small.append(p)
    if small:
        stream.write(b"".join(small))
    return sent


def _verdict(res: Any) -> ValidationResult:
    if isinstance(res, ValidationResult):
        return res
    if res is True or res is None:
        return ValidationResult.ACCEPT if res else ValidationResult.IGNORE
    return ValidationResult.REJECT


class GossipSub(PubSub):
    """GossipSub v1.2 / v1.1 / v1.0, speaking FloodSub to peers that only know that."""


class FloodSub(PubSub):
    """FloodSub (``/floodsub/1.0.0``): every message to every subscribed peer."""

    def __init__(
        self,
        host: Host,
        *,
        params: GossipSubParams | None = None,
        score_params: PeerScoreParams | None = None,
        thresholds: PeerScoreThresholds | None = None,
        signature_policy: SignaturePolicy = SignaturePolicy.STRICT_SIGN,
        message_id_fn: MessageIdFn | None = None,
        protocols: Sequence[str] = (FLOODSUB,),
        subscription_queue: int = 1024,
    ) -> None:
        super().__init__(
            host,
            params=params,
            score_params=score_params,
            thresholds=thresholds,
            signature_policy=signature_policy,
            message_id_fn=message_id_fn,
            protocols=protocols,
            flood_only=True,
            subscription_queue=subscription_queue,
        )
