"""The relay itself: serves ``/libp2p/circuit/relay/0.2.0/hop`` as a host service.

``RESERVE`` grants a slot (signed voucher, expiry, per-peer refresh, total and per-IP caps:
:class:`~rapidp2p.relay.book.RelayLimits`); ``CONNECT`` checks the target's reservation and
the circuit caps, opens ``/libp2p/circuit/relay/0.2.0/stop`` on the target's connection, and
joins the two streams within the limited-relay budget (:func:`~rapidp2p.relay.splice.splice`).
A request over a relayed connection is refused (no relay chains, as go-libp2p). A malformed
request gets ``MALFORMED_MESSAGE`` and only its stream is reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rapidp2p.exceptions import Libp2pError
from rapidp2p.host.dialer import ip_of
from rapidp2p.host.service import ServiceBase
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.framing import read_delimited, write_delimited
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.records.envelope import Envelope
from rapidp2p.relay._proto import (
    HOP_PROTOCOL,
    MAX_MESSAGE_SIZE,
    STOP_PROTOCOL,
    HopMessage,
    HopType,
    Limit,
    MalformedRelayMessage,
    Peer,
    Reservation,
    Status,
    StopMessage,
    StopType,
    Voucher,
)
from rapidp2p.relay._refuse import send_then_reset
from rapidp2p.relay.book import RelayLimits, ReservationBook, ReservationEntry
from rapidp2p.relay.splice import SpliceResult, splice

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream
    from rapidp2p.host.host import Host

__all__ = ["RelayService"]

log = logging.getLogger("rapidp2p.relay")

#: Connection-manager protection tag of peers holding a reservation.
RESERVATION_TAG = "relay-reservation"


def is_relayed(addr: Multiaddr | None) -> bool:
    """True for an address through a relay (it has a ``/p2p-circuit`` component)."""
    return addr is not None and any(name == "p2p-circuit" for name, _ in addr.items())


class RelayService(ServiceBase):
    """Circuit Relay v2 hop service::

        relay = await host.add_service(RelayService(host))

    ``stats`` counts outcomes (``reserved``, ``reserve_refused``, ``connected``,
    ``connect_refused``, ``malformed``, ``cut_data_limit``, ``cut_duration_limit``...)."""

    protocols = (HOP_PROTOCOL, STOP_PROTOCOL)
    service_name = "libp2p.relay"

    def __init__(
        self,
        host: Host,
        limits: RelayLimits | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.book = ReservationBook(limits)
        self.stats: dict[str, int] = {}
        self._clock = clock
        #: Circuits being relayed now, by (source, target): their streams.
        self._circuits: set[tuple[Stream, Stream]] = set()
        #: Results of finished circuits, newest last (bounded).
        self.recent: list[SpliceResult] = []

    @property
    def limits(self) -> RelayLimits:
        return self.book.limits

    async def _start(self) -> None:
        cap = self.limits.max_circuits_per_peer + 4
        self.host.set_stream_handler(HOP_PROTOCOL, self._handle, max_inbound_streams=cap)

    async def close(self) -> None:
        self.host.remove_stream_handler(HOP_PROTOCOL)
        for a, b in list(self._circuits):
            a.reset()
            b.reset()
        await super().close()

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def _limit(self) -> Limit | None:
        lim = self.limits
        if lim.circuit_duration is None and lim.circuit_bytes is None:
            return None
        duration = None if lim.circuit_duration is None else int(lim.circuit_duration)
        return Limit(duration, lim.circuit_bytes)

    # ---- the hop stream ----------------------------------------------------------------

    async def _handle(self, stream: Stream) -> None:
        try:
            raw = await run_with_timeout(
                read_delimited(stream, MAX_MESSAGE_SIZE), self.limits.handshake_timeout
            )
            if raw is None:
                await stream.close()
                return
            msg = HopMessage.decode(raw)
        except MalformedRelayMessage as exc:
            await self._refuse_malformed(stream, exc)
            return
        except (Libp2pError, asyncio.TimeoutError) as exc:  # bad framing, reset, timeout
            self._count("malformed" if isinstance(exc, Libp2pError) else "timeout")
            log.debug("relay: hop request from %s failed: %s", stream.remote_peer, exc)
            stream.reset()
            return
        if msg.type == HopType.RESERVE:
            await self._reserve(stream)
        elif msg.type == HopType.CONNECT:
            await self._connect(stream, msg)
        else:
            self._count("unexpected")
            await _answer_then_reset(stream, Status.UNEXPECTED_MESSAGE)

    async def _refuse_malformed(self, stream: Stream, exc: MalformedRelayMessage) -> None:
        """``MALFORMED_MESSAGE`` (best effort), then the stream (only it) is reset."""
        self._count("malformed")
        log.debug("relay: malformed hop message from %s: %s", stream.remote_peer, exc)
        await _answer_then_reset(stream, Status.MALFORMED_MESSAGE)

    @staticmethod
    async def _answer(
        stream: Stream,
        status: Status,
        reservation: Reservation | None = None,
        limit: Limit | None = None,
    ) -> None:
        msg = HopMessage(HopType.STATUS, reservation=reservation, limit=limit, status=status)
        await write_delimited(stream, msg.encode())

    async def _refuse(self, stream: Stream, status: Status, what: str) -> None:
        self._count(what)
        with contextlib.suppress(Libp2pError):
            await self._answer(stream, status)
            await stream.close()

    # ---- RESERVE -----------------------------------------------------------------------

    async def _reserve(self, stream: Stream) -> None:
        conn = stream.conn
        peer = stream.remote_peer
        if is_relayed(conn.remote_addr) or conn.limited:
            await self._refuse(stream, Status.PERMISSION_DENIED, "reserve_refused")
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._prune(now)
        granted = self.book.reserve(peer, ip_of(conn.remote_addr), now, self._clock())
        if not isinstance(granted, ReservationEntry):
            log.debug("relay: reservation of %s refused: %s", peer, granted.name)
            await self._refuse(stream, granted, "reserve_refused")
            return
        self.host.connmgr.protect(peer, RESERVATION_TAG)
        rsvp = Reservation(
            expire=granted.expire_unix,
            addrs=tuple(self._relay_addrs()),
            voucher=Envelope.seal(
                self.host.key, Voucher(self.host.peer_id, peer, granted.expire_unix)
            ).raw,
        )
        try:
            await self._answer(stream, Status.OK, rsvp, self._limit())
            await stream.close()
        except Libp2pError as exc:
            log.debug("relay: reservation answer to %s lost: %s", peer, exc)
            return
        self._count("reserved")

    def _relay_addrs(self) -> list[Multiaddr]:
        """Our dialable addresses with ``/p2p/<relay>``, for the client's circuit addresses."""
        me = self.host.peer_id
        return [Multiaddr(f"{a}/p2p/{me}") for a in self.host.addrs if not is_relayed(a)]

    def _prune(self, now: float) -> None:
        """Forgets reservations that expired or whose peer left, and their protection."""
        for peer in self.book.prune(now, self.host.is_connected):
            self.host.connmgr.unprotect(peer, RESERVATION_TAG)

    # ---- CONNECT -----------------------------------------------------------------------

    async def _connect(self, stream: Stream, msg: HopMessage) -> None:
        src = stream.remote_peer
        if msg.peer is None:
            await self._refuse_malformed(
                stream, MalformedRelayMessage("CONNECT without a peer", Status.MALFORMED_MESSAGE)
            )
            return
        dst = msg.peer.peer_id
        if is_relayed(stream.conn.remote_addr) or stream.conn.limited:
            await self._refuse(stream, Status.PERMISSION_DENIED, "connect_refused")
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._prune(now)
        target = self.host.live_connection(dst)
        if not self.book.has_reservation(dst, now) or target is None or target.limited:
            await self._refuse(stream, Status.NO_RESERVATION, "connect_refused")
            return
        refused = self.book.open_circuit(src, dst)
        if refused is not None:
            await self._refuse(stream, refused, "connect_refused")
            return
        stop: Stream | None = None
        try:
            stop = await self._open_stop(src, dst)
            if stop is None:
                await self._refuse(stream, Status.CONNECTION_FAILED, "connect_failed")
                return
            try:
                await self._answer(stream, Status.OK, limit=self._limit())
            except Libp2pError:
                stop.reset()
                stream.reset()
                return
            self._count("connected")
            pair = (stream, stop)
            self._circuits.add(pair)
            try:
                result = await splice(
                    stream,
                    stop,
                    max_bytes=self.limits.circuit_bytes,
                    max_duration=self.limits.circuit_duration,
                )
            finally:
                self._circuits.discard(pair)
            self._count(f"circuit_{result.reason}")
            self.recent = [*self.recent[-63:], result]
            log.debug(
                "relay: circuit %s -> %s ended (%s; %d / %d bytes)",
                src,
                dst,
                result.reason,
                result.a_to_b,
                result.b_to_a,
            )
        except BaseException:
            stream.reset()
            if stop is not None:
                stop.reset()
            raise
        finally:
            self.book.close_circuit(src, dst)

    async def _open_stop(self, src: PeerId, dst: PeerId) -> Stream | None:
        """The target's ``stop`` stream, once it answered OK; None when it did not."""
        stop: Stream | None = None
        try:
            stop = await self.host.new_stream(
                dst, STOP_PROTOCOL, lazy=False, timeout=self.limits.connect_timeout
            )
            req = StopMessage(StopType.CONNECT, peer=Peer(src), limit=self._limit())
            await write_delimited(stop, req.encode())
            raw = await run_with_timeout(
                read_delimited(stop, MAX_MESSAGE_SIZE), self.limits.connect_timeout
            )
            if raw is None:
                raise MalformedRelayMessage("stop stream closed before its answer")
            answer = StopMessage.decode(raw)
            if answer.type != StopType.STATUS or answer.status != Status.OK:
                log.debug("relay: %s refused the circuit from %s: %s", dst, src, answer.status)
                stop.reset()
                return None
            return stop
        except (Libp2pError, asyncio.TimeoutError) as exc:
            log.debug("relay: stop to %s failed: %s", dst, exc)
            if stop is not None:
                stop.reset()
            return None


async def _answer_then_reset(stream: Stream, status: Status) -> None:
    await send_then_reset(stream, HopMessage(HopType.STATUS, status=status).encode())
