"""Dialing for the host: one connection per peer at a time (concurrent dials to a peer share
one attempt), every known address raced happy-eyeballs style (go-libp2p's ``swarm`` dial
side), each dial admitted by the gater, the limiter and the resource manager, then upgraded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import TYPE_CHECKING, Any, cast

from rapidp2p import pnet
from rapidp2p.exceptions import (
    ConnectionGated,
    DialError,
    Libp2pError,
    ResourceLimitExceeded,
    TransportError,
)
from rapidp2p.host.addrs import set_local_addr
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.transport.base import Transport, parse_components
from rapidp2p.transport.contracts import Connection
from rapidp2p.transport.memory import MemoryTransport
from rapidp2p.transport.tcp import TcpTransport

if TYPE_CHECKING:
    from rapidp2p._aio.quic import QuicConnection
    from rapidp2p._aio.webrtc import WebRtcConnection
    from rapidp2p.host.host import Host
    from rapidp2p.transport.quic import QuicTransport
    from rapidp2p.transport.webrtc import WebRtcTransport
    from rapidp2p.transport.webrtc_direct import WebRtcDirectTransport
    from rapidp2p.transport.webtransport import WebTransportTransport

__all__ = ["Dialer", "PeerLike", "loaded_types"]

log = logging.getLogger("rapidp2p.host")

#: What :meth:`Host.connect` accepts as a peer.
PeerLike = PeerInfo | Multiaddr | str | PeerId

#: Transport classes named by (module, class), tested with :func:`loaded_types` so that the
#: host does not import a transport only to find it has none (issue 16: an idle TCP host
#: loads neither QUIC nor the WebRTC and WebTransport transports).
TypeName = tuple[str, str]
QUIC: tuple[TypeName, ...] = (("rapidp2p.transport.quic", "QuicTransport"),)
WEBRTC: tuple[TypeName, ...] = (("rapidp2p.transport.webrtc", "WebRtcTransport"),)
WEBRTC_DIRECT: tuple[TypeName, ...] = (
    ("rapidp2p.transport.webrtc_direct", "WebRtcDirectTransport"),
)
WEBTRANSPORT: tuple[TypeName, ...] = (("rapidp2p.transport.webtransport", "WebTransportTransport"),)
#: Transports that prove this host's identity in their own handshake (``bind_key``).
KEYED_TRANSPORTS = QUIC + WEBRTC_DIRECT + WEBTRANSPORT
#: Transports that deliver connections already secured and multiplexed (``listen_secured``).
SECURED_TRANSPORTS = KEYED_TRANSPORTS + WEBRTC


def loaded_types(names: tuple[TypeName, ...]) -> tuple[type, ...]:
    """The classes among ``names`` whose modules are imported already, for ``isinstance``.

    No object of a class can exist before its module is imported, so testing against the
    loaded classes alone gives the same answer as importing them all, without the import."""
    found: list[type] = []
    for module, name in names:
        mod = sys.modules.get(module)
        cls = getattr(mod, name, None) if mod is not None else None
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def to_multiaddr(addr: Multiaddr | str) -> Multiaddr:
    return addr if isinstance(addr, Multiaddr) else Multiaddr(str(addr))


def ip_of(addr: Multiaddr | None) -> str | None:
    """The IP an address reaches directly (None for a relayed ``/p2p-circuit`` address: the
    socket is the relay's, already counted)."""
    if addr is None:
        return None
    comps = parse_components(addr)
    if any(name == "p2p-circuit" for name, _ in comps):
        return None
    if comps and comps[0][0] in ("ip4", "ip6"):
        return comps[0][1]
    return None


def describe_peer(peer: object) -> str:
    if isinstance(peer, PeerInfo):
        return str(peer.peer_id)
    return str(peer)


def _reason(addr: object, err: BaseException) -> str:
    """Why a dial to ``addr`` failed, without the address again (transports name it)."""
    text = str(err) or type(err).__name__
    prefix = f"{addr}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _set_if_pending(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Dialer:
    """The dial side of one host."""

    def __init__(self, host: Host) -> None:
        self._host = host
        #: Dials in progress, by peer: a second ``connect`` waits for the first.
        self._dials: dict[PeerId, asyncio.Future[Connection]] = {}

    # ---- transports: the one lookup ----------------------------------------------------

    def find_transport(self, addr: Multiaddr, *, listen: bool = False) -> Transport | None:
        """The first transport that can dial (or listen on) ``addr``."""
        for t in self._host.transports:
            if t.can_listen(addr) if listen else t.can_dial(addr):
                return t
        return None

    def transport_for(self, addr: Multiaddr, *, listen: bool = False) -> Transport:
        """:meth:`find_transport`, refusing addresses a private network cannot use."""
        if self._host.psk is not None:
            pnet.check_addr(addr)
        t = self.find_transport(addr, listen=listen)
        if t is None:
            raise TransportError(f"no transport for {addr}")
        return t

    # ---- connect -----------------------------------------------------------------------

    async def connect(self, peer: PeerLike) -> Connection:
        """A live connection to ``peer``: an existing one, a dial in progress, or a new one."""
        host = self._host
        if host.is_closed:
            raise DialError("host is closed")
        peer_id, addrs = self._peer_and_addrs(peer)
        if peer_id is not None:
            if peer_id == host.peer_id:
                raise DialError("cannot dial self")
            gater = host.config.gater
            if gater is not None and not gater.intercept_peer_dial(peer_id):
                raise ConnectionGated(f"gater refused dialing {peer_id}")
            existing = host.live_connection(peer_id)
            if existing is not None:
                return existing
            pending = self._dials.get(peer_id)
            if pending is not None:
                return await asyncio.shield(pending)
            if not addrs:
                addrs = self._peerstore_addrs(peer_id)
            if not addrs:
                raise DialError(f"no addresses known for {peer_id}")
            fut: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
            self._dials[peer_id] = fut
            try:
                mux = await self._dial_addrs(peer_id, addrs)
            except BaseException as exc:
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # mark retrieved
                raise
            finally:
                self._dials.pop(peer_id, None)
            if not fut.done():
                fut.set_result(mux)
            return mux
        if not addrs:
            raise DialError("nothing to dial")
        return await self._dial_addrs(None, addrs)

    async def dial_for_transport(self, peer_id: PeerId, addr: Multiaddr) -> Connection:
        """Dials ``addr`` for ``peer_id`` even while a dial to the peer is in flight: for a
        transport whose dial needs another connection to the same peer first (``/webrtc``
        signals over a relayed one), which ``connect`` would join to the very dial waiting
        for it."""
        if self._host.is_closed:
            raise DialError("host is closed")
        return await self._dial_addrs(peer_id, [addr])

    async def dial_direct(
        self, peer_id: PeerId, addrs: list[Multiaddr], *, as_server: bool = False
    ) -> Connection:
        """A new direct connection to ``peer_id`` for a hole punch (DCUtR): every address at
        once (the punch needs the packets out together), TCP from a listen port, whatever
        connections exist already (a relayed one does). ``as_server``: upgrade TCP as the
        listener (the DCUtR initiator's part in a simultaneous open)."""
        if self._host.is_closed:
            raise DialError("host is closed")
        if not addrs:
            raise DialError(f"no address to punch for {peer_id}")
        return await self._dial_addrs(peer_id, addrs, punch=True, as_server=as_server)

    @staticmethod
    def _peer_and_addrs(peer: PeerLike) -> tuple[PeerId | None, list[Multiaddr]]:
        if isinstance(peer, PeerId):
            return peer, []
        if isinstance(peer, PeerInfo):
            return peer.peer_id, [a for a in peer.addrs]
        ma = to_multiaddr(peer)
        base, pid = ma.split_peer_id()
        return pid, [base] if base is not None else []

    def _peerstore_addrs(self, peer_id: PeerId) -> list[Multiaddr]:
        try:
            return list(self._host.peerstore.addrs(peer_id))
        except Libp2pError as exc:  # dial with what the caller gave; say why none came
            log.warning("peerstore: cannot read addresses of %s: %s", peer_id, exc)
        return []

    # ---- happy eyeballs ----------------------------------------------------------------

    async def _dial_addrs(
        self,
        peer_id: PeerId | None,
        addrs: list[Multiaddr],
        *,
        punch: bool = False,
        as_server: bool = False,
    ) -> Connection:
        """Dials every address (staggered; all at once for a punch), keeps the first
        success, cancels the rest."""
        if len(addrs) == 1:  # nothing to race: dial in this task (no task, no wait set)
            transport = self.find_transport(addrs[0])
            if transport is None:
                raise DialError(f"no dialable address for {peer_id}")
            try:
                return await self._dial_one(
                    peer_id, addrs[0], transport, punch=punch, as_server=as_server
                )
            except Exception as err:
                self._dial_failed(addrs[0], err)
                where = f"{peer_id} at {addrs[0]}" if peer_id is not None else str(addrs[0])
                msg = f"failed to dial {where}: {_reason(addrs[0], err)}"
                raise DialError(msg, {str(addrs[0]): err}) from None
        addrs = [a for a in dict.fromkeys(addrs) if self.find_transport(a) is not None]
        # QUIC first (one round trip less), the others a stagger later, WebTransport (QUIC
        # plus HTTP/3 plus Noise, for browsers) last: go-libp2p's order.
        from rapidp2p.transport.quic import is_quic_addr
        from rapidp2p.transport.webtransport import is_webtransport_addr

        addrs.sort(key=lambda a: 0 if is_quic_addr(a) else 2 if is_webtransport_addr(a) else 1)
        if not addrs:
            raise DialError(f"no dialable address for {peer_id}")
        errors: dict[str, BaseException] = {}
        winner: Connection | None = None
        tasks: dict[asyncio.Task[Connection], Multiaddr] = {}
        stagger = 0.0 if punch else self._host.config.dial_stagger
        loop = asyncio.get_running_loop()
        next_start = 0
        start_timer: asyncio.Future[None] | None = None
        try:
            while True:
                if next_start < len(addrs) and (not tasks or start_timer is None):
                    a = addrs[next_start]
                    next_start += 1
                    dial = self._dial_one(peer_id, a, punch=punch, as_server=as_server)
                    tasks[asyncio.ensure_future(dial)] = a
                    start_timer = loop.create_future() if next_start < len(addrs) else None
                    if start_timer is not None:
                        loop.call_later(stagger, _set_if_pending, start_timer)
                if not tasks:
                    break
                waitset: set[asyncio.Future[Any]] = set(tasks)
                if start_timer is not None:
                    waitset.add(start_timer)
                done, _ = await asyncio.wait(waitset, return_when=asyncio.FIRST_COMPLETED)
                if start_timer is not None and start_timer in done:
                    start_timer = None
                for t in done:
                    if t not in tasks:
                        continue
                    a = tasks.pop(t)
                    exc = t.exception()
                    if exc is None:
                        winner = t.result()
                        break
                    errors[str(a)] = exc
                    self._dial_failed(a, exc)
                    start_timer = None  # a failure starts the next address at once
                if winner is not None:
                    break
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    extra = await t
                    await extra.close()
        if winner is None:
            msg = "; ".join(f"{a}: {_reason(a, e)}" for a, e in errors.items())
            raise DialError(f"failed to dial {peer_id or addrs[0]}: {msg}", errors)
        return winner

    def _dial_failed(self, addr: Multiaddr, exc: BaseException) -> None:
        metrics = self._host.metrics
        if metrics is not None:
            metrics.dial_failed(addr, exc)

    # ---- one address -------------------------------------------------------------------

    async def _dial_one(
        self,
        peer_id: PeerId | None,
        addr: Multiaddr,
        transport: Transport | None = None,
        *,
        punch: bool = False,
        as_server: bool = False,
    ) -> Connection:
        host = self._host
        if transport is None:
            transport = self.transport_for(addr)
        gater = host.config.gater
        if gater is not None and not gater.intercept_addr_dial(peer_id, addr):
            raise ConnectionGated(f"gater refused dialing {addr}")
        ip = ip_of(addr)
        key = object()
        refusal = host.limiter.admit_outbound(ip, key, asyncio.get_running_loop().time())
        if refusal is not None:
            raise refusal
        try:
            in_process = isinstance(transport, MemoryTransport)
            cs = host.resource_manager.open_connection(
                "outbound",
                use_fd=ip is not None,
                allowlisted=in_process or host.limiter.allowlist.allows(ip),
            )
        except ResourceLimitExceeded:
            host.limiter.handshake_done(key, False)
            raise
        mux: Connection | None = None
        ok = False
        dial_timeout = host.config.dial_timeout
        # A transport through another peer (``/p2p-circuit``) needs to know whom it reaches.
        # (A peer-store address may carry the peer's /p2p already, as rust-libp2p's circuit
        # listen addresses do.)
        dial_addr = addr
        if (
            peer_id is not None
            and getattr(transport, "dials_peer_id", False)
            and to_multiaddr(addr).get_peer_id() != peer_id
        ):
            dial_addr = Multiaddr(f"{addr}/p2p/{peer_id}")
        try:
            if isinstance(transport, loaded_types(SECURED_TRANSPORTS)):
                # Secured and multiplexed by the transport: the handshake checked peer_id.
                secured = cast(
                    "QuicTransport | WebRtcDirectTransport | WebRtcTransport | WebTransportTransport",  # noqa: E501
                    transport,
                )
                quic = cast(
                    "QuicConnection | WebRtcConnection",
                    await run_with_timeout(
                        secured.dial_secured(addr, peer_id, host.setup_secured), dial_timeout
                    ),
                )
                mux = quic
                host._conn_scopes[mux] = cs
                quic.on_stream_end = cs.stream_ended
                quic.remote_addr = addr
                if host.metrics is not None:
                    host.metrics.socket_opened(quic)
                gater = host.config.gater
                if gater is not None and not gater.intercept_secured(
                    "outbound", quic.remote_peer, addr
                ):
                    raise ConnectionGated(f"gater refused secured connection {quic.remote_peer}")
            else:
                if punch and isinstance(transport, TcpTransport):  # from the listen port
                    dialing = transport.dial(dial_addr, host._new_protocol, reuse=True)
                else:
                    dialing = transport.dial(dial_addr, host._new_protocol)
                raw = await run_with_timeout(dialing, dial_timeout)
                mux = raw
                host._conn_scopes[mux] = cs
                raw.on_stream_end = cs.stream_ended
                raw.direction = "outbound"
                raw.remote_addr = addr
                set_local_addr(raw)
                if host.metrics is not None:
                    host.metrics.socket_opened(raw)
                await host.upgrader.upgrade_outbound(raw, peer_id, as_server=as_server)
            if mux.remote_peer == host.peer_id:
                raise DialError(f"{addr} is ourselves: cannot dial self")
            ok = True
        except asyncio.TimeoutError:
            raise TransportError(f"{addr}: timed out after {dial_timeout} s") from None
        finally:
            host.limiter.handshake_done(key, ok)
            if not ok:
                if mux is not None:
                    mux.abort()
                    host._conn_scopes.pop(mux, None)
                cs.close()
        if not host._add_connection(mux, key):
            reason = mux.close_reason
            if isinstance(reason, Libp2pError):
                raise reason
            raise TransportError(f"connection to {addr} closed as it was established")
        return mux
