"""DCUtR on a host: upgrade relayed connections to direct ones by hole punching.

Roles (libp2p/specs relay/DCUtR.md, as go-libp2p and rust-libp2p play them): the peer that
received the relayed connection (B) initiates. If the other peer (A) advertises a public
address, B first dials it (a unilateral upgrade). Otherwise B opens ``/libp2p/dcutr`` on the
relayed connection, sends CONNECT with its observed addresses and times the answer, A's
CONNECT with A's; B sends SYNC and, RTT/2 later, punches while A punches on receiving SYNC:

- TCP: both dial from their listen port (a TCP simultaneous open through both NATs); B then
  takes the listener's part of the upgrade (multistream listener, handshake responder, muxer
  server), A the dialer's, so each side knows its role although both sides dialed.
- QUIC: A dials (from its listening socket); B sends UDP packets of random bytes from its
  listening socket at random 10-200 ms intervals, which opens B's NAT for A's handshake, and
  accepts A's connection. B starts them with SYNC rather than RTT/2 later: they only open
  B's own NAT, and A's first Initial, arriving before them, would be dropped and resent only
  a QUIC retransmission timeout (about 1 s) later.

An attempt succeeds when a direct connection with the peer joins the host, however it came
(B's listener may accept A's SYN before B's own dial left). B retries twice on the same
stream (3 attempts). New streams then take the direct connection
(:meth:`Host.live_connection <rapidp2p.Host.live_connection>` prefers it), the host emits
:class:`~rapidp2p.host.events.HolePunchSucceeded` or, after the last attempt,
:class:`~rapidp2p.host.events.HolePunchFailed`, and the relayed connection is closed after a
grace period once it carries no stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rapidp2p.exceptions import DecodeError, Libp2pError, StreamError
from rapidp2p.host.events import HolePunchFailed, HolePunchSucceeded
from rapidp2p.host.service import ServiceBase
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.dcutr._proto import (
    MAX_ATTEMPTS,
    MAX_MESSAGE_SIZE,
    PROTOCOL_ID,
    HolePunch,
    HolePunchError,
    HolePunchType,
    MalformedHolePunch,
    punchable_addrs,
)
from rapidp2p.protocols.framing import read_delimited, write_delimited
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.transport.quic import QuicTransport, is_quic_addr

if TYPE_CHECKING:
    from rapidp2p._aio.stream import Stream
    from rapidp2p.host.host import Host
    from rapidp2p.transport.contracts import Connection

__all__ = ["HolePunchConfig", "HolePunchService"]

log = logging.getLogger("rapidp2p.dcutr")


@dataclass
class HolePunchConfig:
    """Timeouts (seconds) and switches of :class:`HolePunchService`."""

    #: Also offer and punch private and loopback addresses (tests on one machine or LAN).
    allow_private: bool = False
    #: Attempts before giving up (the spec: 3).
    attempts: int = MAX_ATTEMPTS
    #: How long one attempt waits for the direct connection (go-libp2p: 5 s).
    punch_timeout: float = 5.0
    #: How long a peer gets to send the next message on the DCUtR stream.
    message_timeout: float = 30.0
    #: How long the initiator waits for identify on the relayed connection first.
    identify_timeout: float = 10.0
    #: Seconds after a success before the relayed connection is closed (when it carries no
    #: stream then); None keeps it.
    close_relayed_after: float | None = 30.0
    #: Interval range of B's random QUIC packets (the spec: 10 to 200 ms).
    punch_interval: tuple[float, float] = (0.01, 0.2)


@dataclass
class _Rounds:
    """The responder's count of one relayed connection's attempts."""

    start: float
    attempts: int = 0
    done: bool = False


class _StreamEnded(HolePunchError):
    """The peer closed or reset the DCUtR stream before answering."""


class HolePunchService(ServiceBase):
    """``/libp2p/dcutr``: added by the host with the relay client unless
    ``HostConfig(enable_hole_punching=False)``."""

    protocols = (PROTOCOL_ID,)
    service_name = "libp2p.holepunch"

    def __init__(self, host: Host, config: HolePunchConfig | None = None) -> None:
        self.host = host
        self.config = config or HolePunchConfig()
        #: Peers with a hole punch running (one at a time per peer).
        self._active: set[PeerId] = set()
        #: Attempts answered per relayed connection (the responder's side).
        self._answered: dict[Connection, _Rounds] = {}
        #: Waiters for a direct connection, by peer.
        self._direct: dict[PeerId, list[asyncio.Future[Connection]]] = {}
        self.stats: dict[str, int] = {}

    async def _start(self) -> None:
        self.host.set_stream_handler(PROTOCOL_ID, self._handle, max_inbound_streams=1)

    async def close(self) -> None:
        self.host.remove_stream_handler(PROTOCOL_ID)
        for waiters in self._direct.values():
            for w in waiters:
                w.cancel()
        self._direct.clear()
        await super().close()

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    # ---- connections ---------------------------------------------------------------------

    def on_connection(self, conn: Connection) -> None:
        peer = conn.remote_peer
        if not conn.limited:
            for w in self._direct.pop(peer, ()):
                if not w.done():
                    w.set_result(conn)
            return
        if conn.direction == "inbound" and peer not in self._active:
            self.host.spawn_for(conn, self._initiate(conn))

    def _wait_direct(self, peer: PeerId) -> asyncio.Future[Connection]:
        """Resolves with the next (or the existing) direct connection to ``peer``."""
        fut: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        existing = self.host.direct_connection(peer)
        if existing is not None:
            fut.set_result(existing)
        else:
            self._direct.setdefault(peer, []).append(fut)
        return fut

    def _drop_waiter(self, peer: PeerId, fut: asyncio.Future[Connection]) -> None:
        waiters = self._direct.get(peer)
        if waiters is not None and fut in waiters:
            waiters.remove(fut)
            if not waiters:
                del self._direct[peer]
        fut.cancel()

    def own_addrs(self) -> list[Multiaddr]:
        """What we put in CONNECT: observed addresses (confirmed or not: one relay may be
        the only observer), then our own addresses; public ones only unless configured."""
        host = self.host
        candidates = host.observed.candidates(time.monotonic()) if len(host.observed) else []
        return punchable_addrs(
            [*candidates, *host.observed_addrs(), *host.addrs],
            allow_private=self.config.allow_private,
        )

    # ---- B: the initiator ----------------------------------------------------------------

    async def _initiate(self, relayed: Connection) -> None:
        peer = relayed.remote_peer
        if peer in self._active or self.host.direct_connection(peer) is not None:
            return
        self._active.add(peer)
        start = time.monotonic()
        try:
            await self._initiate_with(relayed, peer, start)
        finally:
            self._active.discard(peer)

    async def _initiate_with(self, relayed: Connection, peer: PeerId, start: float) -> None:
        cfg = self.config
        ident = self.host.identify
        if ident is not None:
            with contextlib.suppress(Libp2pError, asyncio.TimeoutError):
                await asyncio.wait_for(ident.identify_peer(relayed), cfg.identify_timeout)
        if await self._unilateral(peer):
            self._succeeded(peer, relayed, 0, start, initiator=True)
            return
        attempts = 0
        error: HolePunchError | None = None
        stream: Stream | None = None
        try:
            while attempts < cfg.attempts:
                attempts += 1
                if stream is None:
                    stream = await self._open(peer)
                    addrs, rtt = await self._exchange(stream)
                else:
                    try:  # the spec retries on the same stream...
                        addrs, rtt = await self._exchange(stream)
                    except _StreamEnded:  # ...go-libp2p closes it after one: a new one
                        stream.reset()
                        stream = await self._open(peer)
                        addrs, rtt = await self._exchange(stream)
                conn = await self._punch(peer, addrs, initiator=True, delay=rtt / 2)
                if conn is not None:
                    self._succeeded(peer, relayed, attempts, start, initiator=True, conn=conn)
                    return
                log.debug("dcutr: attempt %d with %s failed", attempts, peer)
            error = HolePunchError(f"no direct connection to {peer} after {attempts} attempts")
        except HolePunchError as exc:
            error = exc
        except (Libp2pError, OSError, asyncio.TimeoutError) as exc:
            error = HolePunchError(f"hole punch with {peer}: {exc or type(exc).__name__}")
        finally:
            if stream is not None:
                if error is not None and isinstance(error, MalformedHolePunch):
                    stream.reset()
                else:
                    with contextlib.suppress(Libp2pError, OSError):
                        await stream.close()
        self._failed(peer, error, attempts, initiator=True)

    async def _unilateral(self, peer: PeerId) -> bool:
        """Dials the peer's public addresses first (the spec's unilateral upgrade)."""
        try:
            known = list(self.host.peerstore.addrs(peer))
        except Libp2pError:
            return False
        public = punchable_addrs(known, allow_private=False)
        if not public:
            return False
        try:
            await run_with_timeout(self.host.dial_direct(peer, public), self.config.punch_timeout)
        except (Libp2pError, OSError, asyncio.TimeoutError) as exc:
            log.debug("dcutr: direct dial to %s failed: %s", peer, exc)
            return False
        self._count("unilateral")
        return True

    async def _open(self, peer: PeerId) -> Stream:
        """A ``/libp2p/dcutr`` stream on the (relayed) connection, negotiated."""
        return await self.host.new_stream(
            peer, PROTOCOL_ID, lazy=False, timeout=self.config.message_timeout
        )

    async def _exchange(self, stream: Stream) -> tuple[list[Multiaddr], float]:
        """CONNECT out, CONNECT in (timed), SYNC out: the remote's addresses and the RTT."""
        ours = self.own_addrs()
        if not ours:
            raise HolePunchError("no public address of ours to offer (none observed yet)")
        sent = time.monotonic()
        try:
            await write_delimited(stream, HolePunch(HolePunchType.CONNECT, tuple(ours)).encode())
            answer = await self._read(stream)
        except StreamError as exc:
            raise _StreamEnded(f"the peer ended the stream: {exc}") from exc
        rtt = time.monotonic() - sent
        if answer is None:
            raise _StreamEnded("the peer closed the stream before its CONNECT")
        if answer.type != HolePunchType.CONNECT:
            raise MalformedHolePunch(f"expected CONNECT, got {answer.type.name}")
        addrs = punchable_addrs(answer.addrs, allow_private=self.config.allow_private)
        if not addrs:
            raise HolePunchError("the peer offered no address to punch")
        await write_delimited(stream, HolePunch(HolePunchType.SYNC).encode())
        return addrs, rtt

    async def _read(self, stream: Stream) -> HolePunch | None:
        """The next message (None at the stream's end); bad framing is the peer's fault."""
        try:
            raw = await run_with_timeout(
                read_delimited(stream, MAX_MESSAGE_SIZE), self.config.message_timeout
            )
        except DecodeError as exc:  # over the 4 KiB cap, a bad varint
            raise MalformedHolePunch(f"bad HolePunch frame: {exc}") from None
        return None if raw is None else HolePunch.decode(raw)

    # ---- A: the responder ----------------------------------------------------------------

    async def _handle(self, stream: Stream) -> None:
        conn = stream.conn
        peer = stream.remote_peer
        if not conn.limited:  # a direct connection needs no punch
            self._count("refused_direct")
            stream.reset()
            return
        # Attempts count per relayed connection: an initiator may retry on this stream (the
        # spec) or open one stream per attempt (go-libp2p).
        first = conn not in self._answered
        round_ = self._answered.setdefault(conn, _Rounds(time.monotonic()))
        if first:
            conn.on_close.append(self._forget_answered)
        try:
            while round_.attempts < self.config.attempts and not round_.done:
                msg = await self._read(stream)
                if msg is None:
                    break  # the initiator is done, or goes on with a new stream
                if msg.type != HolePunchType.CONNECT:
                    raise MalformedHolePunch(f"expected CONNECT, got {msg.type.name}")
                round_.attempts += 1
                addrs = punchable_addrs(msg.addrs, allow_private=self.config.allow_private)
                ours = HolePunch(HolePunchType.CONNECT, tuple(self.own_addrs()))
                await write_delimited(stream, ours.encode())
                sync = await self._read(stream)
                if sync is None or sync.type != HolePunchType.SYNC:
                    what = "the stream's end" if sync is None else sync.type.name
                    raise MalformedHolePunch(f"expected SYNC, got {what}")
                direct = await self._punch(peer, addrs, initiator=False) if addrs else None
                if direct is not None:
                    round_.done = True
                    self._succeeded(
                        peer, conn, round_.attempts, round_.start, initiator=False, conn=direct
                    )
                elif round_.attempts >= self.config.attempts:
                    round_.done = True
                    err = HolePunchError(
                        f"no direct connection to {peer} after {round_.attempts} attempts"
                    )
                    self._failed(peer, err, round_.attempts, initiator=False)
        except MalformedHolePunch as exc:
            self._count("malformed")
            log.debug("dcutr: bad message from %s: %s", peer, exc)
            stream.reset()
            return
        except (Libp2pError, OSError, asyncio.TimeoutError) as exc:
            log.debug("dcutr: stream with %s ended: %s", peer, exc)
            stream.reset()
            return
        with contextlib.suppress(Libp2pError, OSError):
            await stream.close()

    def _forget_answered(self, conn: Connection) -> None:
        self._answered.pop(conn, None)

    # ---- the punch -----------------------------------------------------------------------

    async def _punch(
        self, peer: PeerId, addrs: Sequence[Multiaddr], *, initiator: bool, delay: float = 0.0
    ) -> Connection | None:
        """One simultaneous connect: the direct connection, or None after the timeout. The
        initiator's TCP dials wait ``delay`` (RTT/2: until SYNC reached the peer); its QUIC
        packets start at once (they only open our NAT, so early is better: the peer's first
        Initial then finds it open instead of waiting out a retransmission)."""
        waiter = self._wait_direct(peer)
        tasks: list[asyncio.Task[object]] = []
        tcp = [a for a in addrs if not is_quic_addr(a)]
        quic = [a for a in addrs if is_quic_addr(a)]
        if initiator:
            if tcp:
                dial = self._dial(peer, tcp, as_server=True, delay=delay)
                tasks.append(asyncio.ensure_future(dial))
            if quic:
                tasks.append(asyncio.ensure_future(self._spray(quic)))
        elif addrs:
            tasks.append(asyncio.ensure_future(self._dial(peer, [*quic, *tcp], as_server=False)))
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), delay + self.config.punch_timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._drop_waiter(peer, waiter)
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t

    async def _dial(
        self, peer: PeerId, addrs: list[Multiaddr], *, as_server: bool, delay: float = 0.0
    ) -> object:
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            return await self.host.dial_direct(peer, addrs, as_server=as_server)
        except (Libp2pError, OSError) as exc:
            log.debug("dcutr: punch dial to %s failed: %s", peer, exc)
            return None

    async def _spray(self, addrs: list[Multiaddr]) -> None:
        """Random UDP packets to ``addrs`` from our QUIC listening socket until cancelled."""
        quic = next((t for t in self.host.transports if isinstance(t, QuicTransport)), None)
        if quic is None:
            return
        low, high = self.config.punch_interval
        while True:
            for a in addrs:
                quic.punch(a, os.urandom(64))
            await asyncio.sleep(random.uniform(low, high))

    # ---- outcome -------------------------------------------------------------------------

    def _succeeded(
        self,
        peer: PeerId,
        relayed: Connection,
        attempt: int,
        start: float,
        *,
        initiator: bool,
        conn: Connection | None = None,
    ) -> None:
        direct = conn or self.host.direct_connection(peer)
        self._count("succeeded")
        elapsed = time.monotonic() - start
        addr = None if direct is None else direct.remote_addr
        log.info("dcutr: direct connection to %s at %s (attempt %d, %.3f s)", peer, addr,
                 attempt, elapsed)  # fmt: skip
        self.host.events.emit(HolePunchSucceeded(peer, direct, addr, attempt, elapsed, initiator))
        grace = self.config.close_relayed_after
        if grace is not None:
            self.host.spawn_for(relayed, _close_when_idle(relayed, grace))

    def _failed(
        self, peer: PeerId, error: HolePunchError | None, attempts: int, *, initiator: bool
    ) -> None:
        self._count("failed")
        log.info("dcutr: no direct connection to %s: %s", peer, error)
        self.host.events.emit(HolePunchFailed(peer, error, attempts, initiator))


async def _close_when_idle(relayed: Connection, grace: float) -> None:
    """Closes the relayed connection after ``grace`` seconds if it carries no stream."""
    await asyncio.sleep(grace)
    if not relayed.is_closed and not relayed.streams:
        await relayed.close()
