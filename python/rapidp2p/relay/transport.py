"""``/p2p-circuit`` addresses as a transport: dial through a relay, listen on one.

- Dial ``<relay-addr>/p2p/<relay>/p2p-circuit/p2p/<peer>`` (``<relay-addr>`` may be left out
  when the peer store knows the relay): connect to the relay, ``CONNECT`` on ``hop``, and
  the stream becomes the raw pipe the host upgrades with Noise and yamux.
- Listen on ``<relay-addr>/p2p/<relay>/p2p-circuit``: reserve there, keep the reservation
  refreshed (before it expires, and at once when the connection to the relay drops), and
  accept the circuits the relay hands over on ``stop``. The listener's addresses are the
  relay's addresses with ``/p2p-circuit`` appended.

Relayed connections are ``limited`` (the relay cuts them after its budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING

from rapidp2p._aio.connection import MuxedConnection
from rapidp2p.exceptions import Libp2pError, TransportError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.relay.client import RelayClient, ReservationInfo, circuit_pipe
from rapidp2p.transport.base import ConnectionFactory, InboundHandler, parse_components

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream

__all__ = ["CircuitListener", "CircuitTransport", "split_circuit"]

log = logging.getLogger("rapidp2p.relay")

#: Seconds between attempts to restore a lost reservation (doubling up to the cap).
RETRY_MIN = 1.0
RETRY_MAX = 60.0


def split_circuit(addr: Multiaddr) -> tuple[Multiaddr, PeerId, PeerId | None]:
    """``<relay part>/p2p-circuit[/p2p/<peer>]`` -> (relay part, relay id, peer or None).

    The relay part must end in ``/p2p/<relay>``; raises TransportError otherwise."""
    addr = addr if isinstance(addr, Multiaddr) else Multiaddr(str(addr))
    items = list(addr.items())
    idx = max((i for i, (name, _) in enumerate(items) if name == "p2p-circuit"), default=-1)
    if idx < 0:
        raise TransportError(f"{addr} is not a circuit address")
    text = str(addr)
    cut = text.rfind("/p2p-circuit")
    relay_part = Multiaddr(text[:cut]) if cut > 0 else None
    tail = text[cut + len("/p2p-circuit") :]
    if relay_part is None:
        raise TransportError(f"{addr}: no relay before /p2p-circuit")
    _base, relay = relay_part.split_peer_id()
    if relay is None:
        raise TransportError(f"{addr}: the relay part needs /p2p/<relay id>")
    peer: PeerId | None = None
    if tail:
        rest, peer = Multiaddr(tail).split_peer_id()
        if peer is None or rest is not None:
            raise TransportError(f"{addr}: only /p2p/<peer> may follow /p2p-circuit")
    return relay_part, relay, peer


def _is_circuit(addr: Multiaddr | str) -> bool:
    """Has a ``/p2p-circuit`` component (text is accepted: peer infos may carry strings)."""
    try:
        return any(name == "p2p-circuit" for name, _ in parse_components(addr))
    except ValueError:  # not a multiaddr at all: not ours
        return False


class CircuitTransport:
    """The host's transport for ``/p2p-circuit`` addresses (added by :class:`RelayClient`)."""

    #: The dialer hands this transport the whole address, ``/p2p/<peer>`` included.
    dials_peer_id = True

    def __init__(self, client: RelayClient) -> None:
        self._client = client

    def can_dial(self, addr: Multiaddr) -> bool:
        """A circuit address with a relay (``/p2p/<relay>`` before ``/p2p-circuit``); a bare
        ``/p2p-circuit`` (what go-libp2p's circuit listener reports) names no relay."""
        if not _is_circuit(addr):
            return False
        try:
            split_circuit(addr)
        except (TransportError, ValueError):
            return False
        return True

    def can_listen(self, addr: Multiaddr) -> bool:
        if not _is_circuit(addr):
            return False
        try:
            return split_circuit(addr)[2] is None
        except (TransportError, ValueError):
            return False

    async def dial(self, addr: Multiaddr, factory: ConnectionFactory) -> MuxedConnection:
        relay_part, _relay, target = split_circuit(addr)
        if target is None:
            raise TransportError(f"{addr}: a circuit dial needs /p2p/<peer> at the end")
        try:
            stream, _limit = await self._client.open_circuit(relay_part, target)
        except Libp2pError as exc:
            raise TransportError(f"{addr}: {exc}") from exc
        mux = factory()
        mux.limited = True
        circuit_pipe(stream, mux)
        return mux

    async def listen(
        self, addr: Multiaddr, factory: ConnectionFactory, handler: InboundHandler
    ) -> CircuitListener:
        relay_part, relay, _ = split_circuit(addr)
        existing = self._client.listeners.get(relay)
        if existing is not None and not existing.closed:
            raise TransportError(f"already listening through relay {relay}")
        lst = CircuitListener(self._client, relay_part, relay, factory, handler)
        self._client.listeners[relay] = lst
        try:
            await lst.start()
        except BaseException:
            await lst.close()
            raise
        return lst


class CircuitListener:
    """A reservation on one relay, kept alive, and the circuits it brings in."""

    def __init__(
        self,
        client: RelayClient,
        relay_addr: Multiaddr,
        relay: PeerId,
        factory: ConnectionFactory,
        handler: InboundHandler,
    ) -> None:
        self._client = client
        self.relay_addr = relay_addr
        self.relay = relay
        self._factory = factory
        self._handler = handler
        self.reservation: ReservationInfo | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.closed = False
        #: Reservations made (the first one included) and attempts that failed.
        self.refreshes = 0
        self.failures = 0

    @property
    def addrs(self) -> list[Multiaddr]:
        rsvp = self.reservation
        relay_addrs = list(rsvp.addrs) if rsvp is not None and rsvp.addrs else []
        if not relay_addrs and self.relay_addr.split_peer_id()[0] is not None:
            relay_addrs = [self.relay_addr]
        out: list[Multiaddr] = []
        for a in relay_addrs:
            if a.split_peer_id()[1] is None:
                a = Multiaddr(f"{a}/p2p/{self.relay}")
            out.append(Multiaddr(f"{a}/p2p-circuit"))
        return out

    async def start(self) -> None:
        """Makes the first reservation (raises when the relay refuses), then keeps it."""
        await self._reserve()
        self._task = asyncio.ensure_future(self._keep())

    async def _reserve(self) -> None:
        previous = self.reservation
        rsvp = await self._client.reserve(self.relay_addr)
        self.reservation = rsvp
        self.refreshes += 1
        self._wake.clear()
        if previous is None or previous.conn is not rsvp.conn:  # once per connection
            rsvp.conn.on_close.append(self._relay_lost)

    def _relay_lost(self, _conn: object) -> None:
        self._wake.set()

    async def _keep(self) -> None:
        """Refreshes at 3/4 of the time left, at once when the relay connection drops;
        retries failures with a doubling backoff (jittered)."""
        delay = RETRY_MIN
        while not self.closed:
            rsvp = self.reservation
            if rsvp is not None and not rsvp.conn.is_closed:
                left = rsvp.expire - time.time()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(1.0, left * 0.75))
            if self.closed:
                return
            try:
                await self._reserve()
                delay = RETRY_MIN
            except (Libp2pError, OSError, asyncio.TimeoutError) as exc:
                self.failures += 1
                log.info("relay %s: reservation refresh failed: %s", self.relay, exc)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(RETRY_MAX, delay * 2)

    def accept(self, stream: Stream, source: PeerId) -> None:
        """A circuit from ``source`` arrived on ``stream``: an inbound raw connection."""
        mux = self._factory()
        mux.limited = True
        via = stream.conn.remote_addr
        base = f"/p2p/{self.relay}" if via is None else f"{via}/p2p/{self.relay}"
        mux.remote_addr = Multiaddr(f"{base}/p2p-circuit")
        circuit_pipe(stream, mux)
        self._handler(mux)

    async def close(self) -> None:
        self.closed = True
        if self._client.listeners.get(self.relay) is self:
            del self._client.listeners[self.relay]
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
