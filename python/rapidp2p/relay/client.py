"""The relay client: reservations, the ``stop`` side of circuits, and the circuit transport.

:class:`RelayClient` is a host service (added by default, as go-libp2p enables its relay
transport by default). It

- serves ``/libp2p/circuit/relay/0.2.0/stop``: a relay we hold a reservation on hands us a
  circuit, we answer ``OK`` and the stream becomes an inbound connection (Noise and yamux run
  over it through :class:`~rapidp2p.relay.pipe.StreamPipe`), marked ``limited``;
- makes reservations (:meth:`RelayClient.reserve`) with the voucher checked;
- adds :class:`~rapidp2p.relay.transport.CircuitTransport` to the host, so
  ``host.listen("<relay-addr>/p2p/<relay>/p2p-circuit")`` reserves there (and keeps the
  reservation refreshed), and ``host.connect("<relay-addr>/p2p/<relay>/p2p-circuit/p2p/<peer>")``
  dials through the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rapidp2p.exceptions import Libp2pError
from rapidp2p.host.service import ServiceBase
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.framing import read_delimited, write_delimited
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.relay._proto import (
    HOP_PROTOCOL,
    MAX_MESSAGE_SIZE,
    STOP_PROTOCOL,
    HopMessage,
    HopType,
    Limit,
    MalformedRelayMessage,
    Peer,
    RelayError,
    RelayRefused,
    Status,
    StopMessage,
    StopType,
    open_voucher,
    status_name,
)
from rapidp2p.relay._refuse import send_then_reset
from rapidp2p.relay.pipe import StreamPipe

if TYPE_CHECKING:
    from rapidp2p._aio.connection import MuxedConnection
    from rapidp2p._aio.stream import Stream
    from rapidp2p.host.dialer import PeerLike
    from rapidp2p.host.host import Host
    from rapidp2p.relay.transport import CircuitListener
    from rapidp2p.transport.contracts import Connection

__all__ = ["RelayClient", "ReservationInfo"]

log = logging.getLogger("rapidp2p.relay")

#: Seconds a relay gets to answer a request.
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class ReservationInfo:
    """A granted reservation: at ``relay`` until ``expire`` (UNIX seconds), reachable at
    ``addrs`` (the relay's addresses with ``/p2p/<relay>``, no ``/p2p-circuit``)."""

    relay: PeerId
    expire: int
    addrs: tuple[Multiaddr, ...]
    limit: Limit | None
    voucher: bytes | None
    #: The connection to the relay the reservation lives on (it ends with it).
    conn: Connection


class RelayClient(ServiceBase):
    """Circuit Relay v2 client: ``stop`` handler, reservations, the circuit transport."""

    protocols = (HOP_PROTOCOL, STOP_PROTOCOL)
    service_name = "libp2p.relay-client"

    def __init__(self, host: Host) -> None:
        self.host = host
        #: Circuit listeners by relay: a STOP from that relay becomes an inbound connection.
        self.listeners: dict[PeerId, CircuitListener] = {}
        self.stats: dict[str, int] = {}

    async def _start(self) -> None:
        from rapidp2p.relay.transport import CircuitTransport

        self.host.set_stream_handler(STOP_PROTOCOL, self._handle_stop)
        if not any(isinstance(t, CircuitTransport) for t in self.host.transports):
            # First: the other transports refuse circuit addresses anyway, but say so last.
            self.host.transports.insert(0, CircuitTransport(self))

    async def close(self) -> None:
        self.host.remove_stream_handler(STOP_PROTOCOL)
        await super().close()

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    # ---- reservations ------------------------------------------------------------------

    async def reserve(
        self, relay: PeerLike, *, timeout: float = REQUEST_TIMEOUT
    ) -> ReservationInfo:
        """Reserves a slot on ``relay`` (connecting first); raises :class:`RelayRefused` with
        the relay's status, :class:`MalformedRelayMessage` for a bad answer or voucher."""
        conn = await self.host.connect(relay, timeout=timeout)
        relay_id = conn.remote_peer
        stream = await self.host.new_stream(relay_id, HOP_PROTOCOL, lazy=False, timeout=timeout)
        try:
            await write_delimited(stream, HopMessage(HopType.RESERVE).encode())
            answer = await _read_hop(stream, timeout)
        except BaseException:
            stream.reset()
            raise
        with contextlib.suppress(Libp2pError):
            await stream.close()
        if answer.type != HopType.STATUS:
            raise MalformedRelayMessage(
                f"relay {relay_id} answered RESERVE with {answer.type.name}",
                Status.UNEXPECTED_MESSAGE,
            )
        if answer.status != Status.OK:
            raise _refused(f"relay {relay_id} refused the reservation", answer.status)
        rsvp = answer.reservation
        if rsvp is None or rsvp.expire is None:
            raise MalformedRelayMessage(
                f"relay {relay_id} sent no reservation", Status.MALFORMED_MESSAGE
            )
        if rsvp.expire <= time.time():
            raise MalformedRelayMessage(
                f"relay {relay_id} sent a reservation that already expired",
                Status.MALFORMED_MESSAGE,
            )
        if rsvp.voucher is not None:
            open_voucher(rsvp.voucher, relay_id, self.host.peer_id)
        self._count("reserved")
        return ReservationInfo(
            relay_id, rsvp.expire, rsvp.addrs, answer.limit, rsvp.voucher, stream.conn
        )

    # ---- dialing through a relay -------------------------------------------------------

    async def open_circuit(
        self, relay: PeerLike, target: PeerId, *, timeout: float = REQUEST_TIMEOUT
    ) -> tuple[Stream, Limit | None]:
        """A ``hop`` stream that the relay joined to ``target`` (raw bytes from now on)."""
        conn = await self.host.connect(relay, timeout=timeout)
        if conn.limited:
            raise RelayError(f"will not relay through {conn.remote_peer} over a relayed connection")
        stream = await self.host.new_stream(
            conn.remote_peer, HOP_PROTOCOL, lazy=False, timeout=timeout
        )
        try:
            await write_delimited(stream, HopMessage(HopType.CONNECT, peer=Peer(target)).encode())
            answer = await _read_hop(stream, timeout)
        except BaseException:
            stream.reset()
            raise
        if answer.type != HopType.STATUS:
            stream.reset()
            raise MalformedRelayMessage(
                f"relay answered CONNECT with {answer.type.name}", Status.UNEXPECTED_MESSAGE
            )
        if answer.status != Status.OK:
            stream.reset()
            raise _refused(
                f"relay {conn.remote_peer} refused the circuit to {target}", answer.status
            )
        self._count("circuits_out")
        return stream, answer.limit

    # ---- the stop side -----------------------------------------------------------------

    async def _handle_stop(self, stream: Stream) -> None:
        relay = stream.remote_peer
        try:
            raw = await run_with_timeout(read_delimited(stream, MAX_MESSAGE_SIZE), REQUEST_TIMEOUT)
            if raw is None:
                raise MalformedRelayMessage("stop stream closed before CONNECT")
            msg = StopMessage.decode(raw)
            if msg.type != StopType.CONNECT:
                raise MalformedRelayMessage(
                    f"unexpected {msg.type.name} on stop", Status.UNEXPECTED_MESSAGE
                )
            if msg.peer is None:
                raise MalformedRelayMessage("CONNECT without a peer", Status.MALFORMED_MESSAGE)
        except (Libp2pError, asyncio.TimeoutError) as exc:
            self._count("stop_malformed")
            log.debug("relay client: bad stop request from %s: %s", relay, exc)
            status = exc.status if isinstance(exc, RelayError) else None
            if status is None:
                stream.reset()
            else:
                answer = StopMessage(StopType.STATUS, status=status)
                await send_then_reset(stream, answer.encode())
            return
        listener = self.listeners.get(relay)
        if listener is None or listener.closed:
            self._count("stop_refused")
            with contextlib.suppress(Libp2pError):
                await _answer_stop(stream, Status.PERMISSION_DENIED)
                await stream.close()
            return
        try:
            await _answer_stop(stream, Status.OK)
        except Libp2pError as exc:
            log.debug("relay client: stop answer to %s lost: %s", relay, exc)
            stream.reset()
            return
        self._count("circuits_in")
        listener.accept(stream, msg.peer.peer_id)


def _refused(what: str, status: int | None) -> RelayRefused:
    """The typed refusal, its status named in the message (``NO_RESERVATION``...)."""
    return RelayRefused(f"{what} ({status_name(status)})", status)


async def _read_hop(stream: Stream, timeout: float) -> HopMessage:
    try:
        raw = await run_with_timeout(read_delimited(stream, MAX_MESSAGE_SIZE), timeout)
    except asyncio.TimeoutError:
        raise RelayError(f"relay did not answer within {timeout} s") from None
    if raw is None:
        raise MalformedRelayMessage("relay closed the hop stream without an answer")
    return HopMessage.decode(raw)


async def _answer_stop(stream: Stream, status: Status) -> None:
    await write_delimited(stream, StopMessage(StopType.STATUS, status=status).encode())


def circuit_pipe(stream: Stream, mux: MuxedConnection) -> StreamPipe:
    """Starts ``mux`` (a raw connection driver) over ``stream``."""
    pipe = StreamPipe(stream, mux)
    pipe.start()
    return pipe
