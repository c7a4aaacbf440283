"""AutoNAT v1 on a host: the client that learns our reachability and the dial-back server.

```python
autonat = await host.add_service(AutoNAT(host))            # client: probes in the background
server = await host.add_service(AutoNAT(host, AutoNATConfig(serve=True)))
result = await autonat.probe(server_peer)                   # one explicit probe
host.reachability                                           # public / private / unknown
```

The client asks peers that serve ``/libp2p/autonat/1.0.0`` (learned from identify) to dial
our addresses back, and feeds their answers to a :class:`ReachabilityTracker`; the host's
reachability follows it (:meth:`Host.set_reachability` emits ``ReachabilityChanged``).

The server dials back from a separate host with a fresh key and no listener (the spec allows a
different peer ID; go-libp2p does the same), so the probe is a new connection to the requester
and never rides on, or is confused with, the one the request came over. Only the requester's
observed IP is dialed (:func:`dial_back_addrs`), requests over relayed connections are
refused, and dial-backs are rate limited per peer and in all (:class:`DialThrottle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import Libp2pError
from rapidp2p.host.addrs import ip_scope
from rapidp2p.host.events import PeerIdentified
from rapidp2p.host.reachability import Reachability
from rapidp2p.host.service import ServiceBase
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo
from rapidp2p.protocols.autonat._proto import (
    MAX_MESSAGE_SIZE,
    MAX_REQUEST_ADDRS,
    PROTOCOL_ID,
    AutoNATError,
    DialRequest,
    DialResponse,
    DialThrottle,
    ReachabilityTracker,
    ResponseStatus,
    decode_message,
    dial_back_addrs,
    encode_dial,
    encode_dial_response,
)
from rapidp2p.protocols.framing import read_delimited, write_delimited
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.protocols.streams import close_quietly

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = ["AutoNAT", "AutoNATConfig", "ProbeResult"]

log = logging.getLogger("rapidp2p.autonat")

VIA = "autonat/1"


@dataclass
class AutoNATConfig:
    """AutoNAT v1 settings (seconds); the defaults are go-libp2p's."""

    #: Serve dial-back requests (``/libp2p/autonat/1.0.0``); a client only when False.
    serve: bool = False
    #: Probe our reachability in the background (a server may turn this off).
    probe: bool = True
    #: Dial back requesters whose observed IP is not global (tests, private networks).
    allow_private: bool = False
    #: First background probe after this long (identify has found servers by then).
    boot_delay: float = 15.0
    #: Between probes once the verdict is confident.
    refresh_interval: float = 15 * 60.0
    #: Between probes while the verdict is unknown or not confident yet.
    retry_interval: float = 90.0
    #: Bound on one probe (stream, request, the server's dial-back, response).
    request_timeout: float = 60.0
    #: Bound on the server's dial-back (all addresses).
    dial_timeout: float = 15.0
    #: Server rate limits: dial-backs per ``throttle_period`` in all and per peer.
    throttle_global: int = 30
    throttle_peer: int = 3
    throttle_period: float = 60.0
    #: Agreeing results needed before a contrary one is believed.
    max_confidence: int = 3


@dataclass(frozen=True)
class ProbeResult:
    """One probe: who answered, its status, and the verdict it implies (UNKNOWN for a
    refusal, a bad request or an internal error)."""

    server: PeerId
    status: ResponseStatus | int
    text: str
    addr: Multiaddr | None
    reachability: Reachability


class AutoNAT(ServiceBase):
    """AutoNAT v1 client (always) and server (``config.serve``) of one host."""

    protocols = (PROTOCOL_ID,)
    service_name = "libp2p.autonat"

    def __init__(self, host: Host, config: AutoNATConfig | None = None) -> None:
        self.host = host
        self.config = config or AutoNATConfig()
        self.tracker = ReachabilityTracker(max_confidence=self.config.max_confidence)
        self.throttle = DialThrottle(
            self.config.throttle_global, self.config.throttle_peer, self.config.throttle_period
        )
        self._dialer: Host | None = None
        self._dialer_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        #: Dial-backs answered per status (a server's counters).
        self.served: dict[str, int] = {}

    @property
    def reachability(self) -> Reachability:
        return self.tracker.reachability

    async def _start(self) -> None:
        if self.config.serve:
            self.host.set_stream_handler(PROTOCOL_ID, self._handle, max_inbound_streams=4)
        if self.config.probe:
            self.host.events.on(PeerIdentified, self._on_identified)
            self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._dialer is not None:
            await self._dialer.close(linger=0)
            self._dialer = None
        await super().close()

    # ---- client --------------------------------------------------------------------------

    def _on_identified(self, ev: PeerIdentified) -> None:
        if PROTOCOL_ID in ev.protocols and self.tracker.confidence < self.config.max_confidence:
            self._wake.set()

    def servers(self) -> list[PeerId]:
        """Connected peers (over a direct connection) that serve AutoNAT v1."""
        out: list[PeerId] = []
        for conn in self.host.connections():
            peer = conn.remote_peer
            if peer in out or _relayed(conn.remote_addr):
                continue
            try:
                protos = self.host.peerstore.get_protocols(peer)
            except Libp2pError:
                continue
            if PROTOCOL_ID in protos:
                out.append(peer)
        return out

    def _request_addrs(self, server_addr: Multiaddr | None) -> list[Multiaddr]:
        """Our listen addresses and every observed candidate, loopback ones only for a
        server on loopback (a server elsewhere could never reach them)."""
        addrs = list(self.host.addrs) + self.host.observed.candidates(time.monotonic())
        on_loopback = ip_scope(server_addr) == "loopback"
        out: list[Multiaddr] = []
        for a in addrs:
            if a in out or _relayed(a):
                continue
            if ip_scope(a) == "loopback" and not on_loopback:
                continue
            out.append(a)
        return out[:MAX_REQUEST_ADDRS]

    async def probe(self, server: PeerId | None = None) -> ProbeResult:
        """Asks ``server`` (default: a random connected AutoNAT server) to dial us back and
        records its answer in the verdict. Raises :class:`LookupError` when there is no
        server, :class:`AutoNATError` for a malformed answer, and the stream's errors."""
        if server is None:
            candidates = self.servers()
            if not candidates:
                raise LookupError("no connected peer serves AutoNAT")
            server = random.choice(candidates)
        timeout = self.config.request_timeout
        result = await run_with_timeout(self._probe(server), timeout)
        if self.tracker.record(result.reachability):
            self.host.set_reachability(self.tracker.reachability, addr=result.addr, via=VIA)
        return result

    async def _probe(self, server: PeerId) -> ProbeResult:
        stream = await self.host.new_stream(server, PROTOCOL_ID)
        try:
            addrs = self._request_addrs(stream.conn.remote_addr)
            await write_delimited(stream, encode_dial(self.host.peer_id, addrs))
            data = await read_delimited(stream, MAX_MESSAGE_SIZE)
            if data is None:
                raise AutoNATError("the server closed the stream without a response")
            msg = decode_message(data)
            if not isinstance(msg, DialResponse):
                raise AutoNATError("the server answered with a dial request")
        except BaseException:
            stream.reset()
            raise
        await close_quietly(stream)
        verdict = Reachability.UNKNOWN
        if msg.status == ResponseStatus.OK:
            verdict = Reachability.PUBLIC
        elif msg.status == ResponseStatus.E_DIAL_ERROR:
            verdict = Reachability.PRIVATE
        log.debug("autonat probe via %s: %s %s", server, msg.status, msg.text)
        return ProbeResult(server, msg.status, msg.text, msg.addr, verdict)

    async def _run(self) -> None:
        cfg = self.config
        await self._sleep(cfg.boot_delay, wake=False)
        while not self._closed:
            if self.servers():
                try:
                    await self.probe()
                except (Libp2pError, LookupError, asyncio.TimeoutError, OSError) as exc:
                    log.debug("autonat probe failed: %s", exc)
            confident = (
                self.tracker.reachability is not Reachability.UNKNOWN
                and self.tracker.confidence >= cfg.max_confidence
            )
            await self._sleep(cfg.refresh_interval if confident else cfg.retry_interval)

    async def _sleep(self, delay: float, *, wake: bool = True) -> None:
        """Waits ``delay`` seconds, or less when a new server shows up (``wake``)."""
        self._wake.clear()
        if not wake:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    # ---- server --------------------------------------------------------------------------

    async def _handle(self, stream: Stream) -> None:
        status, text, addr = await self._serve(stream)
        self.served[status.name] = self.served.get(status.name, 0) + 1
        try:
            await write_delimited(stream, encode_dial_response(status, text, addr))
            await stream.close()
        except (Libp2pError, OSError, asyncio.TimeoutError) as exc:
            log.debug("autonat: answering %s failed: %s", stream.remote_peer, exc)
            stream.reset()

    async def _serve(self, stream: Stream) -> tuple[ResponseStatus, str, Multiaddr | None]:
        peer = stream.remote_peer
        observed = stream.conn.remote_addr
        try:
            data = await run_with_timeout(
                read_delimited(stream, MAX_MESSAGE_SIZE), self.config.request_timeout
            )
            if data is None:
                raise AutoNATError("stream closed before the request")
            msg = decode_message(data)
        except (Libp2pError, asyncio.TimeoutError) as exc:
            log.debug("autonat: bad request from %s: %s", peer, exc)
            return ResponseStatus.E_BAD_REQUEST, "malformed request", None
        if not isinstance(msg, DialRequest):
            return ResponseStatus.E_BAD_REQUEST, "expected a dial request", None
        if msg.peer_id is not None and msg.peer_id != peer:
            return ResponseStatus.E_BAD_REQUEST, "peer id mismatch", None
        if _relayed(observed):
            return ResponseStatus.E_DIAL_REFUSED, "refusing a request over a relay", None
        allow_private = self.config.allow_private
        if observed is None or not dial_back_addrs(
            [observed], observed, peer, allow_private=allow_private
        ):
            # A requester on a private or loopback IP (go-libp2p answers this the same way).
            return (
                ResponseStatus.E_DIAL_REFUSED,
                "refusing to dial a blocked observed address",
                None,
            )
        addrs = dial_back_addrs(msg.addrs, observed, peer, allow_private=allow_private)
        if not addrs:
            return ResponseStatus.E_DIAL_ERROR, "no dialable addresses", None
        loop = asyncio.get_running_loop()
        if not self.throttle.allow(peer, loop.time()):
            return ResponseStatus.E_DIAL_REFUSED, "too many dials", None
        try:
            conn_addr = await self._dial_back(peer, addrs)
        except (Libp2pError, OSError, asyncio.TimeoutError) as exc:
            log.debug("autonat: dial-back to %s failed: %s", peer, exc)
            return ResponseStatus.E_DIAL_ERROR, "dial failed", None
        return ResponseStatus.OK, "OK", conn_addr

    async def _dial_back(self, peer: PeerId, addrs: list[Multiaddr]) -> Multiaddr | None:
        """Dials ``peer`` at ``addrs`` from the dial-back host; the address that answered."""
        dialer = await self._dialer_host()
        conn = await dialer.connect(PeerInfo(peer, addrs), timeout=self.config.dial_timeout)
        addr = conn.remote_addr
        await dialer.disconnect(peer, linger=0)
        return addr

    async def _dialer_host(self) -> Host:
        async with self._dialer_lock:
            if self._dialer is None:
                from rapidp2p.host.host import Host

                cfg = replace(
                    self.host.config,
                    enable_ping=False,
                    enable_identify=False,
                    metrics=None,
                    dial_timeout=self.config.dial_timeout,
                    close_linger=0.0,
                )
                self._dialer = Host(config=cfg)
                await self._dialer.start()
            return self._dialer


def _relayed(addr: Multiaddr | None) -> bool:
    return addr is not None and "/p2p-circuit" in str(addr)
