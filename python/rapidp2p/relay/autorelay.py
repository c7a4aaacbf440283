"""AutoRelay: a private node keeps reservations on a few relays and advertises them.

:class:`AutoRelay` keeps up to ``want`` live reservations: on the relays it is given first,
then on connected peers whose identify lists the hop protocol (as go-libp2p's autorelay
picks relays from the peers it knows). Each one is an ordinary circuit listener
(``host.listen("<relay>/p2p-circuit")``), so the circuit addresses join ``host.addrs`` and
identify and the signed peer record advertise them. A relay that refuses or cannot be reached
waits ``retry`` seconds before it is tried again; a listener whose relay connection dropped
no longer counts, and another relay is taken while it tries to restore its reservation.

Run it on a node that is not reachable by itself (AutoNAT says so); it does not check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rapidp2p.exceptions import Libp2pError
from rapidp2p.host.events import PeerIdentified
from rapidp2p.host.service import ServiceBase
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.relay._proto import HOP_PROTOCOL
from rapidp2p.relay.client import RelayClient
from rapidp2p.relay.transport import split_circuit

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = ["AutoRelay"]

log = logging.getLogger("rapidp2p.relay")

#: Candidate relays remembered from identify (the oldest are forgotten first).
MAX_CANDIDATES = 64


class AutoRelay(ServiceBase):
    """Keeps ``want`` reservations on relays (see the module docstring)::

    auto = await host.add_service(AutoRelay(host, ["/ip4/1.2.3.4/tcp/4001/p2p/12D3..."]))
    """

    protocols: Sequence[str] = ()
    service_name = "libp2p.autorelay"

    def __init__(
        self,
        host: Host,
        relays: Sequence[Multiaddr | str] = (),
        *,
        want: int = 2,
        retry: float = 60.0,
        interval: float = 5.0,
    ) -> None:
        self.host = host
        self.static = [r if isinstance(r, Multiaddr) else Multiaddr(r) for r in relays]
        self.want = want
        self.retry = retry
        self.interval = interval
        #: Peers seen (identify) speaking the hop protocol, oldest first.
        self.candidates: dict[PeerId, None] = {}
        #: Relay -> loop time before which it is not tried again.
        self._backoff: dict[PeerId, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        if self.host.services.find(RelayClient) is None:
            await self.host.add_service(RelayClient(self.host))
        self.host.events.on(PeerIdentified, self._identified)
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await super().close()

    def _identified(self, ev: PeerIdentified) -> None:
        if self._closed or HOP_PROTOCOL not in ev.protocols:
            return
        self.candidates.pop(ev.peer_id, None)
        self.candidates[ev.peer_id] = None
        while len(self.candidates) > MAX_CANDIDATES:
            self.candidates.pop(next(iter(self.candidates)))
        self._wake.set()

    @property
    def active(self) -> list[PeerId]:
        """Relays on which a reservation is live now."""
        client = self.host.services.find(RelayClient)
        if client is None:
            return []
        out = []
        for relay, lst in client.listeners.items():
            rsvp = lst.reservation
            if not lst.closed and rsvp is not None and not rsvp.conn.is_closed:
                out.append(relay)
        return out

    async def _run(self) -> None:
        while not self._closed:
            await self.fill()
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def fill(self) -> None:
        """Reserves on candidates until ``want`` reservations are live (one pass)."""
        client = self.host.services.find(RelayClient)
        if client is None:
            return
        now = asyncio.get_running_loop().time()
        for addr in self._candidate_addrs():
            if len(self.active) >= self.want:
                return
            relay = split_circuit(addr)[1]
            if relay in client.listeners or self._backoff.get(relay, 0.0) > now:
                continue
            try:
                await self.host.listen(addr)
            except (Libp2pError, OSError, ValueError) as exc:
                log.info("autorelay: no reservation on %s: %s", relay, exc)
                self._backoff[relay] = now + self.retry
                continue
            log.info("autorelay: reserved on %s", relay)

    def _candidate_addrs(self) -> list[Multiaddr]:
        out = [Multiaddr(f"{a}/p2p-circuit") for a in self.static]
        static_ids = {a.get_peer_id() for a in self.static}
        for peer in list(self.candidates):
            if peer not in static_ids and peer != self.host.peer_id:
                out.append(Multiaddr(f"/p2p/{peer}/p2p-circuit"))
        return out
