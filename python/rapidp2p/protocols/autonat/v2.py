"""AutoNAT v2 on a host: per-address reachability checks, client and server.

```python
v2 = await host.add_service(AutoNATv2(host))                       # client + dial-back handler
await host.add_service(AutoNATv2(host, AutoNATv2Config(serve=True)))  # also a server
result = await v2.check(server_peer, [addr1, addr2])               # the server dials one
```

The client serves ``/libp2p/autonat/2/dial-back`` (a server's dial-back brings the nonce
there) and trusts an ``OK`` only when that nonce arrived. It pays for checks of addresses
whose IP is not the one the server sees (dial data, at most :data:`MAX_DIAL_DATA` bytes).

The server dials from a separate host with a fresh key (the spec: "SHOULD NOT reuse their
listening port"), dials exactly one address per request, asks for 30-100 kB of dial data
before dialling an IP other than the requester's, and rate limits requests per peer and in
all (``E_REQUEST_REJECTED``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import Libp2pError
from rapidp2p.host.addrs import ip_scope
from rapidp2p.host.events import PeerIdentified
from rapidp2p.host.reachability import Reachability
from rapidp2p.host.service import ServiceBase
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo
from rapidp2p.protocols.autonat._proto import AutoNATError, DialThrottle, ReachabilityTracker
from rapidp2p.protocols.autonat._proto_v2 import (
    DIAL_BACK_PROTOCOL_ID,
    DIAL_REQUEST_PROTOCOL_ID,
    MAX_DIAL_DATA,
    MAX_DIAL_DATA_CHUNK,
    MAX_MESSAGE_SIZE,
    MAX_REQUEST_ADDRS,
    MIN_DIAL_DATA,
    DialDataRequest,
    DialDataResponse,
    DialRequest,
    DialResponse,
    DialStatus,
    ResponseStatus,
    choose_addr,
    decode_dial_back,
    decode_message,
    encode_dial_back,
    encode_dial_back_response,
    encode_message,
)
from rapidp2p.protocols.framing import read_delimited, write_delimited
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.protocols.streams import close_quietly

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = ["AutoNATv2", "AutoNATv2Config", "CheckResult"]

log = logging.getLogger("rapidp2p.autonat")

VIA = "autonat/2"


@dataclass
class AutoNATv2Config:
    """AutoNAT v2 settings (seconds)."""

    #: Serve ``/libp2p/autonat/2/dial-request`` (the dial-back handler always runs).
    serve: bool = False
    #: Check our addresses in the background and let the verdict set the host's
    #: reachability (off by default: AutoNAT v1 does that unless told otherwise).
    probe: bool = False
    #: First background check after this long; then every ``refresh_interval`` once the
    #: verdict is confident, every ``retry_interval`` before.
    boot_delay: float = 15.0
    refresh_interval: float = 15 * 60.0
    retry_interval: float = 90.0
    #: Dial addresses whose IP is not global (tests, private networks).
    allow_private: bool = False
    #: Bound on one check (request, dial data, the dial-back, the response).
    request_timeout: float = 60.0
    #: Bound on the server's dial-back.
    dial_timeout: float = 15.0
    #: Dial data the server asks for (random in this range, as the spec suggests).
    dial_data_min: int = MIN_DIAL_DATA
    dial_data_max: int = MAX_DIAL_DATA
    #: Most dial data the client agrees to send for one check.
    max_dial_data: int = MAX_DIAL_DATA
    #: Server rate limits: requests per ``throttle_period`` in all and per peer.
    throttle_global: int = 30
    throttle_peer: int = 3
    throttle_period: float = 60.0
    max_confidence: int = 3


@dataclass(frozen=True)
class CheckResult:
    """One check: the server's status, the address it dialed and what happened; ``verified``
    says the nonce came back (an ``OK`` without it is not believed)."""

    server: PeerId
    status: ResponseStatus | int
    addr: Multiaddr | None
    dial_status: DialStatus | int
    verified: bool
    dial_data_sent: int

    @property
    def reachability(self) -> Reachability:
        if self.status != ResponseStatus.OK:
            return Reachability.UNKNOWN
        if self.dial_status == DialStatus.OK and self.verified:
            return Reachability.PUBLIC
        if self.dial_status == DialStatus.E_DIAL_ERROR:
            return Reachability.PRIVATE
        return Reachability.UNKNOWN


class AutoNATv2(ServiceBase):
    """AutoNAT v2 client (always) and server (``config.serve``) of one host."""

    protocols = (DIAL_REQUEST_PROTOCOL_ID, DIAL_BACK_PROTOCOL_ID)
    service_name = "libp2p.autonat2"

    def __init__(self, host: Host, config: AutoNATv2Config | None = None) -> None:
        self.host = host
        self.config = config or AutoNATv2Config()
        self.tracker = ReachabilityTracker(max_confidence=self.config.max_confidence)
        self.throttle = DialThrottle(
            self.config.throttle_global, self.config.throttle_peer, self.config.throttle_period
        )
        self._pending: dict[int, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._dialer: Host | None = None
        self._dialer_lock = asyncio.Lock()
        #: Requests answered per outcome (a server's counters), e.g. ``"OK/OK"``.
        self.served: dict[str, int] = {}
        #: Dial data bytes received by the server in all.
        self.dial_data_received = 0

    async def _start(self) -> None:
        self.host.set_stream_handler(DIAL_BACK_PROTOCOL_ID, self._handle_dial_back)
        if self.config.serve:
            self.host.set_stream_handler(
                DIAL_REQUEST_PROTOCOL_ID, self._handle_request, max_inbound_streams=4
            )
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
        if DIAL_REQUEST_PROTOCOL_ID in ev.protocols:
            self._wake.set()

    def servers(self) -> list[PeerId]:
        """Connected peers (over direct connections) that serve AutoNAT v2."""
        out: list[PeerId] = []
        for conn in self.host.connections():
            peer = conn.remote_peer
            if peer in out or "/p2p-circuit" in str(conn.remote_addr):
                continue
            try:
                protos = self.host.peerstore.get_protocols(peer)
            except Libp2pError:
                continue
            if DIAL_REQUEST_PROTOCOL_ID in protos:
                out.append(peer)
        return out

    def candidates(self, server_addr: Multiaddr | None) -> list[Multiaddr]:
        """The addresses worth checking with a server seen at ``server_addr``: confirmed
        observed addresses, then guesses (our listen ports on the IPs peers saw us at), then
        our own addresses; public ones, plus those in the server's own scope (loopback for a
        server on loopback, private for one on the LAN): the spec asks clients not to send
        private addresses to servers on the internet."""
        now = time.monotonic()
        obs = self.host.observed
        ordered = (
            obs.addrs(now)
            + obs.ip_guesses(self.host.listen_addrs, now)
            + list(self.host.addrs)
            + obs.candidates(now)
        )
        scope = ip_scope(server_addr)
        out: list[Multiaddr] = []
        for a in ordered:
            if a in out or "/p2p-circuit" in str(a):
                continue
            s = ip_scope(a)
            if s == "public" or (s is not None and s == scope):
                out.append(a)
        return out[:MAX_REQUEST_ADDRS]

    async def _run(self) -> None:
        cfg = self.config
        await asyncio.sleep(cfg.boot_delay)
        while not self._closed:
            servers = self.servers()
            if servers:
                server = random.choice(servers)
                conns = self.host.connections(server)
                addrs = self.candidates(conns[0].remote_addr if conns else None)
                if addrs:
                    try:
                        await self.check(server, addrs)
                    except (Libp2pError, asyncio.TimeoutError, OSError, ValueError) as exc:
                        log.debug("autonat v2 check failed: %s", exc)
            confident = (
                self.tracker.reachability is not Reachability.UNKNOWN
                and self.tracker.confidence >= cfg.max_confidence
            )
            self._wake.clear()
            delay = cfg.refresh_interval if confident else cfg.retry_interval
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _handle_dial_back(self, stream: Stream) -> None:
        """A server's dial-back: note the nonce if it is one we wait for, answer OK."""
        try:
            data = await run_with_timeout(read_delimited(stream, MAX_MESSAGE_SIZE), 10.0)
            if data is None:
                raise AutoNATError("dial-back stream closed before the nonce")
            nonce = decode_dial_back(data).nonce
            waiter = self._pending.get(nonce)
            if waiter is not None:
                waiter.set()
            await write_delimited(stream, encode_dial_back_response())
            await stream.close()
        except (Libp2pError, asyncio.TimeoutError, OSError) as exc:
            log.debug("autonat v2: bad dial-back from %s: %s", stream.remote_peer, exc)
            stream.reset()

    async def check(self, server: PeerId, addrs: Sequence[Multiaddr]) -> CheckResult:
        """Asks ``server`` to dial one of ``addrs`` (the first it is willing to) and records
        the verdict. Raises :class:`AutoNATError` for a malformed or unexpected answer, or a
        dial-data request over ``config.max_dial_data`` (the stream is then reset)."""
        if not addrs:
            raise ValueError("check needs at least one address")
        nonce = secrets.randbits(64)
        arrived = self._pending[nonce] = asyncio.Event()
        try:
            result = await run_with_timeout(
                self._check(server, list(addrs), nonce, arrived), self.config.request_timeout
            )
        finally:
            self._pending.pop(nonce, None)
        if self.tracker.record(result.reachability):
            self.host.set_reachability(self.tracker.reachability, addr=result.addr, via=VIA)
        return result

    async def _check(
        self, server: PeerId, addrs: list[Multiaddr], nonce: int, arrived: asyncio.Event
    ) -> CheckResult:
        stream = await self.host.new_stream(server, DIAL_REQUEST_PROTOCOL_ID)
        sent = 0
        try:
            await write_delimited(stream, encode_message(DialRequest(tuple(addrs), nonce)))
            while True:
                data = await read_delimited(stream, MAX_MESSAGE_SIZE)
                if data is None:
                    raise AutoNATError("the server closed the stream without a response")
                msg = decode_message(data)
                if isinstance(msg, DialResponse):
                    response = msg
                    break
                if not isinstance(msg, DialDataRequest):
                    raise AutoNATError(f"unexpected {type(msg).__name__} from the server")
                if not 0 <= msg.addr_idx < len(addrs):
                    raise AutoNATError(f"dial data asked for address {msg.addr_idx}")
                if sent or msg.num_bytes > self.config.max_dial_data:
                    raise AutoNATError(f"refusing to send {msg.num_bytes} bytes of dial data")
                sent = await _send_dial_data(stream, msg.num_bytes)
        except BaseException:
            stream.reset()
            raise
        await close_quietly(stream)
        msg = response
        addr = addrs[msg.addr_idx] if 0 <= msg.addr_idx < len(addrs) else None
        if msg.status == ResponseStatus.OK and addr is None:
            raise AutoNATError(f"response names address {msg.addr_idx} of {len(addrs)}")
        verified = False
        if msg.status == ResponseStatus.OK and msg.dial_status == DialStatus.OK:
            # The nonce's stream may still be in flight on the other connection.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(arrived.wait(), 5.0)
            verified = arrived.is_set()
        return CheckResult(server, msg.status, addr, msg.dial_status, verified, sent)

    # ---- server --------------------------------------------------------------------------

    async def _handle_request(self, stream: Stream) -> None:
        try:
            response = await run_with_timeout(self._serve(stream), self.config.request_timeout)
        except (Libp2pError, asyncio.TimeoutError, OSError) as exc:
            log.debug("autonat v2: request from %s failed: %s", stream.remote_peer, exc)
            stream.reset()
            return
        key = f"{_name(response.status)}/{_name(response.dial_status)}"
        self.served[key] = self.served.get(key, 0) + 1
        try:
            await write_delimited(stream, encode_message(response))
            await stream.close()
        except (Libp2pError, OSError, asyncio.TimeoutError):
            stream.reset()

    async def _serve(self, stream: Stream) -> DialResponse:
        data = await read_delimited(stream, MAX_MESSAGE_SIZE)
        if data is None:
            raise AutoNATError("stream closed before the request")
        msg = decode_message(data)
        if not isinstance(msg, DialRequest):
            raise AutoNATError(f"expected a dial request, got {type(msg).__name__}")
        observed = stream.conn.remote_addr
        if observed is None or "/p2p-circuit" in str(observed):
            return DialResponse(ResponseStatus.E_DIAL_REFUSED)
        now = asyncio.get_running_loop().time()
        if not self.throttle.allow(stream.remote_peer, now):
            return DialResponse(ResponseStatus.E_REQUEST_REJECTED)
        chosen = choose_addr(msg.addrs, observed, allow_private=self.config.allow_private)
        if chosen is None:
            return DialResponse(ResponseStatus.E_DIAL_REFUSED)
        idx, addr, needs_data = chosen
        if needs_data:
            await self._collect_dial_data(stream, idx)
        dial_status = await self._dial_back(stream.remote_peer, addr, msg.nonce)
        return DialResponse(ResponseStatus.OK, idx, dial_status)

    async def _collect_dial_data(self, stream: Stream, idx: int) -> None:
        """Asks for, and reads, the dial data that pays for dialling a third-party IP.
        Raises :class:`AutoNATError` (the stream is reset) for anything but DialDataResponse
        messages of at most 4096 data bytes."""
        lo, hi = (
            self.config.dial_data_min,
            max(self.config.dial_data_min, self.config.dial_data_max),
        )
        need = lo + secrets.randbelow(hi - lo + 1)
        await write_delimited(stream, encode_message(DialDataRequest(idx, need)))
        got = 0
        while got < need:
            data = await read_delimited(stream, MAX_DIAL_DATA_CHUNK + 64)
            if data is None:
                raise AutoNATError(f"stream ended after {got} of {need} dial data bytes")
            msg = decode_message(data)
            if not isinstance(msg, DialDataResponse) or len(msg.data) > MAX_DIAL_DATA_CHUNK:
                raise AutoNATError("expected DialDataResponse of at most 4096 bytes")
            got += len(msg.data)
        self.dial_data_received += got

    async def _dial_back(self, peer: PeerId, addr: Multiaddr, nonce: int) -> DialStatus:
        dialer = await self._dialer_host()
        try:
            conn = await dialer.connect(PeerInfo(peer, [addr]), timeout=self.config.dial_timeout)
        except (Libp2pError, OSError, asyncio.TimeoutError) as exc:
            log.debug("autonat v2: dial-back to %s at %s failed: %s", peer, addr, exc)
            return DialStatus.E_DIAL_ERROR
        try:
            # Negotiated eagerly: a peer that does not speak dial-back fails here, before the
            # nonce is sent, and is told apart from one that just closes abruptly later.
            stream = await dialer.new_stream(
                conn.remote_peer,
                DIAL_BACK_PROTOCOL_ID,
                lazy=False,
                timeout=self.config.dial_timeout,
            )
            await write_delimited(stream, encode_dial_back(nonce))
        except (Libp2pError, OSError, asyncio.TimeoutError) as exc:
            log.debug("autonat v2: dial-back stream to %s failed: %s", peer, exc)
            await dialer.disconnect(peer, linger=0)
            return DialStatus.E_DIAL_BACK_ERROR
        try:
            # Wait until the nonce was read before closing the connection: the response, EOF,
            # or a reset all say so (rust-libp2p resets right after answering, and a reset
            # discards the answer; go-libp2p's server reads one byte and ignores the outcome).
            with contextlib.suppress(Libp2pError, OSError, asyncio.TimeoutError):
                await run_with_timeout(read_delimited(stream, 64), 5.0)
            await close_quietly(stream)
        finally:
            await dialer.disconnect(peer, linger=0)
        return DialStatus.OK

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


async def _send_dial_data(stream: Stream, num_bytes: int) -> int:
    """Sends ``num_bytes`` of zeros in DialDataResponse messages of 4096 data bytes."""
    chunk = encode_message(DialDataResponse(bytes(MAX_DIAL_DATA_CHUNK)))
    sent = 0
    while sent < num_bytes:
        await write_delimited(stream, chunk)
        sent += MAX_DIAL_DATA_CHUNK
    return sent


def _name(value: int) -> str:
    return getattr(value, "name", str(value))
