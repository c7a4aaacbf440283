"""Host events and the bus that delivers them to subscribers.

``host.events.subscribe()`` returns an async iterator; each subscription has its own bounded
queue (a slow subscriber loses its oldest events, never blocks the host). Callbacks can be
registered too (``host.events.on(EventType, fn)``); they run synchronously and must be quick.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "Event",
    "EventBus",
    "HolePunchFailed",
    "HolePunchSucceeded",
    "LocalAddressesChanged",
    "PeerConnected",
    "PeerDisconnected",
    "PeerIdentified",
    "ProtocolsChanged",
    "ReachabilityChanged",
    "Subscription",
]


@dataclass(frozen=True)
class Event:
    """Base class of host events."""

    peer_id: Any


@dataclass(frozen=True)
class PeerConnected(Event):
    """The first connection to ``peer_id`` is up (secured and multiplexed)."""

    conn: Any = None


@dataclass(frozen=True)
class PeerDisconnected(Event):
    """The last connection to ``peer_id`` closed."""

    conn: Any = None


@dataclass(frozen=True)
class PeerIdentified(Event):
    """Identify finished: the remote's protocols, addresses and agent are in the peerstore."""

    agent_version: str | None = None
    protocol_version: str | None = None
    protocols: tuple[str, ...] = ()
    listen_addrs: tuple[Any, ...] = ()
    observed_addr: Any = None


@dataclass(frozen=True)
class ProtocolsChanged(Event):
    """The remote's protocol list changed (identify-push); ``peer_id`` is ours for local."""

    added: tuple[str, ...] = field(default=())
    removed: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class LocalAddressesChanged(Event):
    """The addresses we advertise changed (an observed address was confirmed or dropped, or
    a reachability change hid or showed observed addresses); ``peer_id`` is ours and
    ``addrs`` the new :attr:`Host.addrs <rapidp2p.Host.addrs>`."""

    addrs: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ReachabilityChanged(Event):
    """Our reachability changed (AutoNAT's verdict); ``peer_id`` is ours.

    ``reachability`` is a :class:`rapidp2p.protocols.autonat.Reachability` (``"public"``,
    ``"private"`` or ``"unknown"``); ``addr`` is the address a server dialed us at (when
    public); ``via`` names the protocol that decided (``"autonat/1"``, ``"autonat/2"``)."""

    reachability: Any = None
    previous: Any = None
    addr: Any = None
    via: str = ""


@dataclass(frozen=True)
class HolePunchSucceeded(Event):
    """DCUtR upgraded the relayed connection with ``peer_id`` to the direct connection
    ``conn`` (new streams take it); ``attempt`` counts from 1, ``elapsed`` is the seconds
    from the start of the first attempt, ``initiator`` True when we sent the CONNECT."""

    conn: Any = None
    addr: Any = None
    attempt: int = 1
    elapsed: float = 0.0
    initiator: bool = True


@dataclass(frozen=True)
class HolePunchFailed(Event):
    """DCUtR gave up on a direct connection with ``peer_id`` after ``attempts`` attempts
    (``error`` says why, a :class:`~rapidp2p.protocols.dcutr.HolePunchError`); the relayed
    connection stays in use."""

    error: Any = None
    attempts: int = 0
    initiator: bool = True


E = TypeVar("E", bound=Event)


class Subscription:
    """An async iterator over events of the subscribed types."""

    def __init__(self, bus: EventBus, types: tuple[type[Event], ...], maxsize: int) -> None:
        self._bus = bus
        self._types = types
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _offer(self, event: Event) -> None:
        if self._types and not isinstance(event, self._types):
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        ev = await self._queue.get()
        if ev is None:
            raise StopAsyncIteration
        return ev

    async def get(self, timeout: float | None = None) -> Event:
        """The next event (raises :class:`asyncio.TimeoutError` after ``timeout``)."""
        ev = await asyncio.wait_for(self._queue.get(), timeout)
        if ev is None:
            raise StopAsyncIteration
        return ev

    def close(self) -> None:
        self._bus._subs.discard(self)
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out of host events to subscriptions and callbacks."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._callbacks: list[tuple[type[Event], Callable[[Any], None]]] = []

    def subscribe(self, *types: type[Event], maxsize: int = 256) -> Subscription:
        sub = Subscription(self, types, maxsize)
        self._subs.add(sub)
        return sub

    def on(self, event_type: type[E], callback: Callable[[E], None]) -> None:
        self._callbacks.append((event_type, callback))

    def emit(self, event: Event) -> None:
        for sub in list(self._subs):
            sub._offer(event)
        for etype, cb in self._callbacks:
            if isinstance(event, etype):
                cb(event)

    def close(self) -> None:
        for sub in list(self._subs):
            sub.close()
