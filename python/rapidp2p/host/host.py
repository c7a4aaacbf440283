"""The libp2p host: listen, dial, open and serve streams (go-libp2p's ``host.Host`` shape).

```python
async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as host:
    host.set_stream_handler("/echo/1.0.0", echo)
    stream = await host.new_stream(peer_id, ["/echo/1.0.0"])
```

A host owns listeners (one per transport address), connections (secured with Noise and
multiplexed with yamux by the :class:`Upgrader`), the stream handlers, a peerstore and an
event bus. Ping and identify are served by default. Every wait has a timeout and every
resource a cap (:class:`HostConfig`, :class:`Limits`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rapidp2p import pnet
from rapidp2p._aio.connection import MuxedConnection
from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import (
    ConnectionGated,
    DialError,
    DialTimeout,
    HostClosedError,
    Libp2pError,
    ResourceLimitError,
    ResourceLimitExceeded,
    StreamTimeout,
    TransportError,
)
from rapidp2p.host import connlog
from rapidp2p.host.addrs import expand_unspecified
from rapidp2p.host.connmgr import ConnectionManager, ConnManagerConfig
from rapidp2p.host.events import EventBus, PeerConnected, PeerDisconnected
from rapidp2p.host.gater import ConnectionGater
from rapidp2p.host.limits import ConnectionLimiter, Limits, raise_resource_limits
from rapidp2p.host.peer_gc import PeerGC, PeerGCConfig
from rapidp2p.host.refusal import ConnectionRefuser, RefusalLog
from rapidp2p.host.upgrader import STAGE_SECURED, MuxerOptions, StageTimeouts, Upgrader
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo
from rapidp2p.pnet import PskSource
from rapidp2p.protocols.multistream import select_inbound, select_outbound, select_outbound_lazy
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.resources.allowlist import DEFAULT_ALLOWLIST, Allowlist
from rapidp2p.resources.limits import ResourceLimits, autoscale, load_limits
from rapidp2p.resources.manager import (
    INITIAL_WINDOW_GRANT,
    ConnectionScope,
    ResourceManager,
    StreamScope,
)
from rapidp2p.transport.base import Listener, Transport, parse_components
from rapidp2p.transport.contracts import Connection
from rapidp2p.transport.memory import MemoryTransport
from rapidp2p.transport.tcp import TcpTransport
from rapidp2p.transport.websocket import WebSocketTransport

if TYPE_CHECKING:
    from rapidp2p.crypto import PrivateKey
    from rapidp2p.host.identify import IdentifyService
    from rapidp2p.metrics import Metrics
    from rapidp2p.peerstore import PeerStore

__all__ = ["Host", "HostConfig", "StreamHandler"]

log = logging.getLogger("rapidp2p.host")

StreamHandler = Callable[[Stream], Awaitable[None]]


def _version() -> str:
    from rapidp2p import __version__

    return str(__version__)


@dataclass
class HostConfig:
    """Timeouts (seconds), limits and feature switches, with safe defaults."""

    dial_timeout: float = 15.0
    upgrade_timeout: float = 15.0
    negotiation_timeout: float = 10.0
    #: Delay between starting dials to a peer's successive addresses (happy eyeballs).
    dial_stagger: float = 0.25
    #: A stream's ``drain`` raises StreamTimeout after this long without progress (None: never).
    stream_write_timeout: float | None = 60.0
    limits: Limits = field(default_factory=Limits)
    muxer: MuxerOptions = field(default_factory=MuxerOptions)
    #: ``/plaintext/2.0.0`` (NO encryption) is offered only when this is True.
    enable_plaintext: bool = False
    #: Offer yamux inside the Noise handshake (else multistream-select runs inside Noise).
    early_muxer_negotiation: bool = True
    #: Security protocols, in order (``/noise``, ``/tls/1.0.0``, ``/plaintext/2.0.0``). Default:
    #: accept ``/noise`` and ``/tls/1.0.0`` (and plaintext if enabled), dial ``/noise`` alone
    #: (zero round trips); a list given here is both accepted and proposed in its order.
    security_protocols: list[str] | None = None
    enable_ping: bool = True
    enable_identify: bool = True
    agent_version: str = field(default_factory=lambda: f"rapidp2p/{_version()}")
    protocol_version: str = "ipfs/0.1.0"
    #: Unread bytes per connection before the socket stops being read.
    max_unread_per_connection: int = 32 * 1024 * 1024
    #: Seconds :meth:`Host.close` waits for remote peers to consume what was written (their
    #: side of each stream closed or reset) before the sockets close; 0 closes at once.
    close_linger: float = 2.0
    #: Networks (CIDRs, IPs or ``/ip4|ip6/../ipcidr/..`` multiaddrs) exempt from the per-IP
    #: cap and rate, with their own totals (``Limits.allowlist_*``); loopback by default.
    allowlist: list[str] = field(default_factory=lambda: list(DEFAULT_ALLOWLIST))
    #: Deadlines of each upgrade stage (first byte, multistream, security, muxer).
    stage_timeouts: StageTimeouts = field(default_factory=StageTimeouts)
    #: Scoped resource limits (None: computed from this machine's memory and fd limit, see
    #: :func:`rapidp2p.resources.autoscale`), then ``limits_file`` (JSON, or TOML on 3.11+)
    #: applied over them; never below the flat caps of ``limits``.
    resource_limits: ResourceLimits | None = None
    limits_file: str | None = None
    #: Seconds between maintenance rounds (window grants, connection trimming, peer GC).
    maintenance_interval: float = 1.0
    #: Connection manager watermarks and grace period (``host.connmgr``).
    connmgr: ConnManagerConfig = field(default_factory=ConnManagerConfig)
    #: Vetoes dials and connections at each step (:mod:`rapidp2p.host.gater`).
    gater: ConnectionGater | None = None
    #: When the peer store forgets peers that left (:mod:`rapidp2p.host.peer_gc`).
    peer_gc: PeerGCConfig = field(default_factory=PeerGCConfig)
    #: Prometheus metrics sink (:class:`rapidp2p.metrics.Metrics`); None: metrics off.
    metrics: Metrics | None = None
    #: Private network (libp2p pnet): a :class:`rapidp2p.pnet.PreSharedKey`, its 32 bytes, a
    #: ``/key/swarm/psk/1.0.0/`` file's contents or path. Only peers with the same key connect.
    psk: PskSource | None = None


def _to_multiaddr(addr: Multiaddr | str) -> Multiaddr:
    return addr if isinstance(addr, Multiaddr) else Multiaddr(str(addr))


def _ip_of(addr: Any) -> str | None:
    if addr is None:
        return None
    comps = parse_components(addr)
    if comps and comps[0][0] in ("ip4", "ip6"):
        return comps[0][1]
    return None


@dataclass
class ServedStreams:
    """What the host runs for one connection: its handler tasks (cancelled with it) and its
    inbound streams being served per protocol (the per-protocol cap)."""

    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    protocol_counts: dict[str, int] = field(default_factory=dict)


class Host:
    """A libp2p node. Build it with :meth:`create` (or the constructor, then :meth:`listen`)."""

    def __init__(
        self,
        key: PrivateKey | None = None,
        config: HostConfig | None = None,
        *,
        peerstore: PeerStore | None = None,
        transports: Sequence[Transport] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        from rapidp2p.crypto import generate_keypair

        self.key: PrivateKey = key or generate_keypair()
        self.config = config or HostConfig()
        self._peer_id: PeerId = PeerId.from_public_key(self.key.public_key())
        if peerstore is None:
            from rapidp2p.peerstore import MemoryPeerStore

            peerstore = MemoryPeerStore()
        self._peerstore = peerstore
        self._events = EventBus()
        self.transports: list[Transport] = list(
            transports or [TcpTransport(), WebSocketTransport(), MemoryTransport()]
        )
        #: The private network's key (None: a public host). Checked before anything starts.
        self.psk = pnet.host_psk(self.config.psk, self.transports)
        self.upgrader = Upgrader(
            self.key,
            enable_plaintext=self.config.enable_plaintext,
            timeout=self.config.upgrade_timeout,
            muxer_options=self._muxer_options(),
            security_protocols=self.config.security_protocols,
            early_muxer=self.config.early_muxer_negotiation,
            stage_timeouts=self.config.stage_timeouts,
            psk=self.psk,
        )
        self.limiter = ConnectionLimiter(self.config.limits, Allowlist(self.config.allowlist))
        self.upgrader.on_stage = self._on_stage
        self._refuser = ConnectionRefuser()
        self._refuser.silent = self.psk is not None
        self._refusal_log = RefusalLog()
        self.resource_manager = ResourceManager(self._resource_limits())
        self._conn_scopes: dict[Connection, ConnectionScope] = {}
        #: Per connection: the tasks serving it and its inbound streams per protocol.
        self._served: dict[Connection, ServedStreams] = {}
        self.connmgr = ConnectionManager(self, self.config.connmgr)
        self.peer_gc = PeerGC(self.peerstore, self.config.peer_gc)
        self.peer_gc.keepers += [self.is_connected, self.connmgr.is_tagged]
        self.peer_gc.on_forget.append(self.connmgr.forget)
        self._maintenance: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []
        self._handlers: dict[str, StreamHandler] = {}
        self._handler_ids: dict[str, str] = {}
        self._conns: dict[Any, list[Connection]] = {}
        self._dials: dict[Any, asyncio.Future[Connection]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        #: While :meth:`close` runs: the loop time by which connections are dropped. Services
        #: bound their own graceful shutdown by it (the linger is one budget for all).
        self.closing_deadline: float | None = None
        self._services: list[Any] = []
        self._started = False
        #: The metrics sink (``metrics=`` or ``config.metrics``); None when metrics are off.
        self.metrics: Metrics | None = metrics if metrics is not None else self.config.metrics
        if self.metrics is not None:
            self.metrics.attach(self)

    def _resource_limits(self) -> ResourceLimits:
        cfg = self.config
        limits = cfg.resource_limits or autoscale()
        if cfg.limits_file is not None:
            limits = load_limits(cfg.limits_file, limits)
        return raise_resource_limits(cfg.limits, limits)

    def _muxer_options(self) -> MuxerOptions:
        m = self.config.muxer
        return MuxerOptions(
            max_streams=min(m.max_streams, self.config.limits.max_streams_per_connection),
            initial_window=m.initial_window,
            max_window=m.max_window,
            ack_backlog=m.ack_backlog,
            keepalive_interval=m.keepalive_interval,
        )

    @classmethod
    async def create(
        cls,
        key: PrivateKey | None = None,
        listen: Iterable[Multiaddr | str] = (),
        config: HostConfig | None = None,
        *,
        peerstore: PeerStore | None = None,
        transports: Sequence[Transport] | None = None,
        metrics: Metrics | None = None,
    ) -> Host:
        """A started host, listening on ``listen`` (``/tcp/0`` picks a free port)."""
        host = cls(key, config, peerstore=peerstore, transports=transports, metrics=metrics)
        host.start()
        addrs = list(listen)
        if addrs:
            try:
                await host.listen(*addrs)
            except BaseException:
                await host.close()
                raise
        return host

    def start(self) -> None:
        """Registers the default services (ping, identify). Idempotent."""
        if self._started:
            return
        self._started = True
        from rapidp2p.host import services

        self._services = services.install_default_services(self) + self._services

    def add_service(self, service: object) -> None:
        """Attaches a protocol service (pubsub, DHT, ...) to this host's lifecycle.

        The host calls ``service.on_connection(conn)`` (if defined) for every new connection and
        ``service.close()`` (sync or async, if defined) when the host closes. Services register
        their own stream handlers with :meth:`set_stream_handler`.
        """
        if service not in self._services:
            self._services.append(service)

    async def __aenter__(self) -> Host:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- identity, peerstore, events ---------------------------------------------------

    @property
    def peer_id(self) -> PeerId:
        """This host's :class:`PeerId`, derived from its key (what remote peers verify)."""
        return self._peer_id

    @property
    def peerstore(self) -> Any:
        """What the host knows of other peers: addresses, keys, protocols, metadata
        (a :class:`~rapidp2p.peerstore.MemoryPeerStore` unless one was given)."""
        return self._peerstore

    @property
    def events(self) -> EventBus:
        """The event bus: ``subscribe()`` to, or ``on(EventType, callback)`` for, peer
        connected / disconnected / identified and protocols changed."""
        return self._events

    # ---- addresses ---------------------------------------------------------------------

    @property
    def listen_addrs(self) -> list[Multiaddr]:
        """The listeners' bound addresses as given, with their real ports (``/ip4/0.0.0.0``
        stays as it is here; see :attr:`addrs`)."""
        out: list[Multiaddr] = []
        for lst in self._listeners:
            out.extend(lst.addrs)
        return out

    @property
    def addrs(self) -> list[Multiaddr]:
        """The addresses peers can dial us at (no ``/p2p`` suffix): the listen addresses with
        their real ports, ``/ip4/0.0.0.0`` and ``/ip6/::`` expanded to every interface's
        address (loopback first), as identify and the DHT advertise them. Identify leaves
        loopback addresses out for peers that are not on loopback."""
        return expand_unspecified(self.listen_addrs)

    @property
    def full_addrs(self) -> list[Multiaddr]:
        """:attr:`addrs` ending in ``/p2p/<our peer id>`` (what to give to dialers)."""
        return [_to_multiaddr(f"{a}/p2p/{self.peer_id}") for a in self.addrs]

    async def listen(self, *addrs: Multiaddr | str) -> list[Multiaddr]:
        """Starts listening on each address; returns the dialable addresses it added (real
        ports; an unspecified address such as ``/ip4/0.0.0.0/tcp/0`` comes back expanded to
        the interface addresses, as :attr:`addrs` shows it).

        Raises :class:`HostClosedError` once the host is closed."""
        if self._closed:
            raise HostClosedError("cannot listen: the host is closed (create a new Host)")
        self.start()
        bound: list[Multiaddr] = []
        for a in addrs:
            ma = _to_multiaddr(a)
            transport = self._transport_for(ma, listen=True)
            lst = await transport.listen(ma, self._new_protocol, self._on_inbound)
            self._listeners.append(lst)
            bound.extend(lst.addrs)
        return expand_unspecified(bound)

    def _transport_for(self, addr: Multiaddr, *, listen: bool = False) -> Transport:
        if self.psk is not None:
            pnet.check_addr(addr)
        for t in self.transports:
            if t.can_listen(addr) if listen else t.can_dial(addr):
                return t
        raise TransportError(f"no transport for {addr}")

    def _new_protocol(self) -> MuxedConnection:
        mux = MuxedConnection(max_unread=self.config.max_unread_per_connection)
        mux.local_peer = self.peer_id
        mux.default_write_timeout = self.config.stream_write_timeout
        # Set before the upgrade: the remote may open streams in the same segment as its
        # last handshake message, and those arrive while the muxer starts.
        mux.on_stream = self._on_inbound_stream
        return mux

    # ---- stream handlers ---------------------------------------------------------------

    def set_stream_handler(self, protocol: str, handler: StreamHandler) -> None:
        """Serves ``protocol``: ``handler(stream)`` runs in its own task per inbound stream."""
        new = protocol not in self._handlers
        self._handlers[protocol] = handler
        self._handler_ids[protocol] = protocol
        if new:
            self._protocols_changed()

    def remove_stream_handler(self, protocol: str) -> None:
        self._handler_ids.pop(protocol, None)
        if self._handlers.pop(protocol, None) is not None:
            self._protocols_changed()

    def _protocols_changed(self) -> None:
        ident = self.identify
        if ident is not None and self._started and not self._closed:
            ident.protocols_changed()

    @property
    def protocols(self) -> list[str]:
        return sorted(self._handlers)

    # ---- connections -------------------------------------------------------------------

    def connections(self, peer_id: PeerId | None = None) -> list[Connection]:
        if peer_id is None:
            return [c for conns in self._conns.values() for c in conns]
        return list(self._conns.get(peer_id, ()))

    def is_connected(self, peer_id: PeerId) -> bool:
        return any(not c.is_closed for c in self._conns.get(peer_id, ()))

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_inbound(self, mux: MuxedConnection) -> None:
        """A socket was accepted: admit it (limits) and start its upgrade."""
        mux.direction = "inbound"
        remote = None
        ip: str | None = None
        peername: Any = None
        if mux.transport is not None:
            peername = mux.transport.get_extra_info("peername")
            if isinstance(peername, tuple) and len(peername) >= 2 and peername[0] != "memory":
                from rapidp2p.transport.tcp import sockaddr_to_multiaddr

                # The per-IP limits key on the address text, known even when it has no
                # multiaddr form (an IPv6 zone, say): such a peer is still counted.
                ip = str(peername[0])
                try:
                    remote = sockaddr_to_multiaddr(peername)
                except (ValueError, TypeError) as exc:  # MultiaddrError is a ValueError
                    log.debug("no multiaddr for inbound peer address %r: %s", peername, exc)
        if mux.remote_addr is None:  # a transport that frames TCP (/ws) sets its own
            mux.remote_addr = remote
        if self.metrics is not None:
            self.metrics.socket_opened(mux)
        if self._closed:
            mux.abort()
            return
        gater = self.config.gater
        if gater is not None and not gater.intercept_accept(None, remote):
            err = ConnectionGated(f"gater refused the connection from {remote}")
            self._refusal_log.refused(f"inbound connection from {remote or ip}", err)
            self._refuser.refuse(mux, err)
            return
        refusal = self.limiter.admit_inbound(
            ip, mux.loop.time(), mux, lambda: self._evict_pending(mux)
        )
        if refusal is None:
            in_process = isinstance(peername, tuple) and peername[:1] == ("memory",)
            try:
                self._open_conn_scope(mux, "inbound", ip, in_process)
            except ResourceLimitExceeded as err:
                self.limiter.handshake_done(mux, False)
                refusal = err
        if refusal is not None:
            self._refuse_inbound(mux, remote or ip, refusal)
            return
        self._spawn(self._upgrade_inbound(mux))

    def _open_conn_scope(
        self, mux: Connection, direction: Any, ip: str | None, in_process: bool
    ) -> None:
        """Reserves the connection in the resource manager (raises ResourceLimitExceeded).
        In-process (memory transport) connections count as allowlisted, like loopback."""
        cs = self.resource_manager.open_connection(
            direction,
            use_fd=ip is not None,
            allowlisted=in_process or self.limiter.allowlist.allows(ip),
        )
        self._conn_scopes[mux] = cs
        mux.on_stream_end = cs.stream_ended

    def _close_conn_scope(self, mux: Connection) -> None:
        cs = self._conn_scopes.pop(mux, None)
        if cs is not None:
            cs.close()

    def _refuse_inbound(self, mux: MuxedConnection, who: object, err: ResourceLimitError) -> None:
        """Tells the dialer why (where the protocol allows it) and logs it, rate-limited."""
        self._refusal_log.refused(f"inbound connection from {who}", err)
        self._refuser.refuse(mux, err)

    def _on_stage(self, mux: MuxedConnection, stage: int) -> None:
        """An upgrade progressed: the pending table's eviction order, the gater's secured hook."""
        self.limiter.progress(mux, stage)
        gater = self.config.gater
        if (
            stage == STAGE_SECURED
            and gater is not None
            and not gater.intercept_secured(mux.direction, mux.remote_peer, mux.remote_addr)
        ):
            mux.abort(ConnectionGated(f"gater refused secured connection {mux.remote_peer}"))

    def _evict_pending(self, mux: MuxedConnection) -> None:
        err = ResourceLimitExceeded(
            "transient", "pending", "evicted: the oldest least-progressed pending handshake"
        )
        self._refusal_log.refused(f"pending connection from {mux.remote_addr}", err)
        self._close_conn_scope(mux)  # now: the newcomer takes its transient slot
        mux.abort(err)

    async def _upgrade_inbound(self, mux: MuxedConnection) -> None:
        try:
            await self.upgrader.upgrade_inbound(mux)
        except (Libp2pError, OSError, asyncio.IncompleteReadError) as exc:
            self.limiter.handshake_done(mux, False)
            self._close_conn_scope(mux)
            log.debug("inbound upgrade failed: %s", exc)
            return
        except BaseException:
            self.limiter.handshake_done(mux, False)
            self._close_conn_scope(mux)
            mux.abort()
            raise
        self.limiter.handshake_done(mux, True)
        self._add_connection(mux, mux)

    def _add_connection(self, mux: Connection, key: object) -> bool:
        """Registers an upgraded connection; False when it is closed or was refused (the
        upgraded hook, the peer scope)."""
        peer = mux.remote_peer
        gater = self.config.gater
        ok = not mux.is_closed
        if ok and gater is not None and not gater.intercept_upgraded(mux):
            mux.abort(ConnectionGated(f"gater refused upgraded connection {peer}"))
            ok = False
        if ok and not self._bind_peer_scope(mux):
            mux.abort()
            ok = False
        if not ok:
            self.limiter.connection_closed(key)
            self._close_conn_scope(mux)
            self._cancel_served(mux)
            return False
        mux.on_close.append(lambda m: self._on_connection_closed(m, key))
        self._observe_connection(mux)
        conns = self._conns.setdefault(peer, [])
        first = not conns
        conns.append(mux)
        try:
            self._peerstore_add_connection(mux)
        except Libp2pError as exc:  # a full or broken peerstore must not refuse the peer
            log.warning("peerstore: cannot record %s: %s", peer, exc)
        if first:
            self.events.emit(PeerConnected(peer, mux))
        self.connmgr.connected(peer)
        self.peer_gc.connected(peer)
        for svc in self._services:
            hook = getattr(svc, "on_connection", None)
            if hook is not None:
                hook(mux)
        return True

    def _served_by(self, conn: Connection) -> ServedStreams:
        served = self._served.get(conn)
        if served is None:
            served = self._served[conn] = ServedStreams()
        return served

    def spawn_for(self, conn: Connection, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Runs ``coro`` as work serving ``conn``: cancelled when the connection ends (or
        the host closes); the task holds no other reference once it is done."""
        served = self._served_by(conn)
        task = conn.loop.create_task(coro)
        served.tasks.add(task)
        task.add_done_callback(served.tasks.discard)
        return task

    def tasks_serving(self, conn: Connection) -> set[asyncio.Task[Any]]:
        """The live tasks serving ``conn`` (stream handlers, identify), a copy."""
        served = self._served.get(conn)
        return set() if served is None else set(served.tasks)

    def _cancel_served(self, conn: Connection) -> None:
        served = self._served.pop(conn, None)
        if served is not None:
            for task in list(served.tasks):
                task.cancel()

    def _observe_connection(self, mux: Connection) -> None:
        """Metrics and the INFO log lines of a connection that joined the host."""
        if self.metrics is not None:
            self.metrics.connection_opened(mux, mux.loop.time())
        connlog.connection_opened(mux)
        mux.on_close.append(connlog.connection_closed)

    def _observe_stream(self, stream: Stream) -> None:
        """A stream's protocol is known: count it (and its bytes from now on), log it."""
        if self.metrics is not None:
            self.metrics.stream_opened(stream)
        connlog.stream_opened(stream)

    def _dial_failed(self, addr: Multiaddr, exc: BaseException) -> None:
        if self.metrics is not None:
            self.metrics.dial_failed(addr, exc)

    def _peerstore_add_connection(self, mux: Connection) -> None:
        ps = self.peerstore
        key = mux.remote_key
        if key is not None and hasattr(ps, "add_pubkey"):
            ps.add_pubkey(mux.remote_peer, key)
        if mux.remote_addr is not None and mux.direction == "outbound" and hasattr(ps, "add_addrs"):
            ps.add_addrs(mux.remote_peer, [mux.remote_addr])

    def _bind_peer_scope(self, mux: Connection) -> bool:
        """Moves the connection to its peer's scope and grants its receive-window memory;
        False when the peer scope refuses it (the connection is then closed)."""
        cs = self._conn_scopes.get(mux)
        if cs is None:
            return True
        try:
            refused = cs.set_peer(mux.remote_peer)
        except ResourceLimitExceeded as err:
            self._refusal_log.refused(f"{mux.direction} connection with {mux.remote_peer}", err)
            mux.close_reason = err
            return False
        if refused:
            by_id = {st.stream_id: st for st in mux.streams}
            for sid in refused:
                st = by_id.get(sid)
                if st is not None:
                    st.reset()
        grant = cs.reserve_window_grant(INITIAL_WINDOW_GRANT)
        mux.set_receive_budget(mux.receive_window_total + grant)
        # Unread received bytes are reserved from the same scopes (the peer's from now on).
        who = f"unread bytes from {mux.remote_peer}"
        cs.on_refused = lambda err: self._refusal_log.refused(who, err)
        mux.receive_memory = cs
        if self._maintenance is None and not self._closed:
            # Not in _tasks: it is housekeeping, not work the host waits for.
            self._maintenance = asyncio.ensure_future(self._maintain())
        return True

    async def _maintain(self) -> None:
        """Rare housekeeping: grows window grants that auto-tuning asked for."""
        while not self._closed:
            await asyncio.sleep(self.config.maintenance_interval)
            self.maintenance_round()

    def maintenance_round(self) -> None:
        """One round of :meth:`_maintain` (public so tests need not wait for the timer)."""
        for mux, cs in list(self._conn_scopes.items()):
            if cs.peer is not None and mux.receive_budget_hit:
                cs.grow_window_grant(mux)
        self.connmgr.tick()
        try:
            self.peer_gc.run()
        except Libp2pError as exc:  # a broken peer store must not stop the maintenance
            log.warning("peerstore: forgetting peers failed: %s", exc)

    def add_peer_keeper(self, keep: Callable[[PeerId], bool]) -> None:
        """Registers a predicate: peers it returns True for keep their peer-store data after
        they disconnect (the DHT registers its routing table)."""
        self.peer_gc.keepers.append(keep)

    def _on_connection_closed(self, mux: Connection, key: object) -> None:
        self.limiter.connection_closed(key)
        self._close_conn_scope(mux)
        self._cancel_served(mux)  # handlers of a dead connection end with it
        conns = self._conns.get(mux.remote_peer)
        if conns is None or mux not in conns:
            return
        conns.remove(mux)
        if not conns:
            del self._conns[mux.remote_peer]
            self.connmgr.disconnected(mux.remote_peer)
            self.peer_gc.disconnected(mux.remote_peer)
            self.events.emit(PeerDisconnected(mux.remote_peer, mux))

    async def connect(
        self, peer: PeerInfo | Multiaddr | str | PeerId, *, timeout: float | None = None
    ) -> Connection:
        """A live connection to the peer: an existing one, or dials all known addresses.

        ``peer`` is a :class:`PeerInfo`, a multiaddr (with or without ``/p2p/<id>``) or a
        :class:`PeerId` whose addresses are in the peerstore. Dialing ourselves fails with
        :class:`DialError`; a remote that proves another peer ID fails with PeerIdMismatch
        (inside the DialError's ``errors``). ``timeout`` (seconds) bounds the whole call
        (every address, handshakes included) and raises :class:`DialTimeout` (a
        TimeoutError); without it each address is bounded by ``HostConfig.dial_timeout`` and
        ``upgrade_timeout``.
        """
        if timeout is None:
            return await self._connect(peer)
        try:
            return await run_with_timeout(self._connect(peer), timeout)
        except asyncio.TimeoutError as exc:
            if isinstance(exc, Libp2pError):  # a library timeout from inside: already typed
                raise
            msg = f"connecting to {_describe_peer(peer)} took over {timeout} s"
            raise DialTimeout(msg) from None

    async def _connect(self, peer: PeerInfo | Multiaddr | str | PeerId) -> Connection:
        if self._closed:
            raise DialError("host is closed")
        peer_id, addrs = self._peer_and_addrs(peer)
        if peer_id is not None:
            if peer_id == self.peer_id:
                raise DialError("cannot dial self")
            gater = self.config.gater
            if gater is not None and not gater.intercept_peer_dial(peer_id):
                raise ConnectionGated(f"gater refused dialing {peer_id}")
            existing = self._live_connection(peer_id)
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

    def _live_connection(self, peer_id: PeerId) -> Connection | None:
        for c in self._conns.get(peer_id, ()):
            if not c.is_closed and c.go_away_code is None:
                return c
        return None

    def _peer_and_addrs(
        self, peer: PeerInfo | Multiaddr | str | PeerId
    ) -> tuple[PeerId | None, list[Multiaddr]]:
        if isinstance(peer, PeerId):
            return peer, []
        if isinstance(peer, PeerInfo):
            return peer.peer_id, [a for a in peer.addrs]
        ma = _to_multiaddr(peer)
        base, pid = ma.split_peer_id()
        return pid, [base] if base is not None else []

    def _peerstore_addrs(self, peer_id: PeerId) -> list[Multiaddr]:
        ps = self.peerstore
        if hasattr(ps, "addrs"):
            try:
                return list(ps.addrs(peer_id))
            except Libp2pError as exc:  # dial with what the caller gave; say why none came
                log.warning("peerstore: cannot read addresses of %s: %s", peer_id, exc)
        return []

    async def _dial_addrs(self, peer_id: PeerId | None, addrs: list[Multiaddr]) -> Connection:
        """Dials every address (staggered), keeps the first success, cancels the rest."""
        if len(addrs) == 1:  # nothing to race: dial in this task (no task, no wait set)
            transport = self._transport_or_none(addrs[0])
            if transport is None:
                raise DialError(f"no dialable address for {peer_id}")
            try:
                return await self._dial_one(peer_id, addrs[0], transport)
            except Exception as err:
                self._dial_failed(addrs[0], err)
                where = f"{peer_id} at {addrs[0]}" if peer_id is not None else str(addrs[0])
                msg = f"failed to dial {where}: {_reason(addrs[0], err)}"
                raise DialError(msg, {str(addrs[0]): err}) from None
        addrs = [a for a in dict.fromkeys(addrs) if self._can_dial(a)]
        if not addrs:
            raise DialError(f"no dialable address for {peer_id}")
        errors: dict[str, BaseException] = {}
        winner: Connection | None = None
        tasks: dict[asyncio.Task[Connection], Multiaddr] = {}
        stagger = self.config.dial_stagger
        loop = asyncio.get_running_loop()
        next_start = 0
        start_timer: asyncio.Future[None] | None = None
        try:
            while True:
                if next_start < len(addrs) and (not tasks or start_timer is None):
                    a = addrs[next_start]
                    next_start += 1
                    tasks[asyncio.ensure_future(self._dial_one(peer_id, a))] = a
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

    def _can_dial(self, addr: Multiaddr) -> bool:
        return any(t.can_dial(addr) for t in self.transports)

    def _transport_or_none(self, addr: Multiaddr) -> Transport | None:
        for t in self.transports:
            if t.can_dial(addr):
                return t
        return None

    async def _dial_one(
        self, peer_id: PeerId | None, addr: Multiaddr, transport: Transport | None = None
    ) -> Connection:
        if transport is None:
            transport = self._transport_for(addr)
        gater = self.config.gater
        if gater is not None and not gater.intercept_addr_dial(peer_id, addr):
            raise ConnectionGated(f"gater refused dialing {addr}")
        ip = _ip_of(addr)
        key = object()
        refusal = self.limiter.admit_outbound(ip, key, asyncio.get_running_loop().time())
        if refusal is not None:
            raise refusal
        try:
            in_process = isinstance(transport, MemoryTransport)
            cs = self.resource_manager.open_connection(
                "outbound",
                use_fd=ip is not None,
                allowlisted=in_process or self.limiter.allowlist.allows(ip),
            )
        except ResourceLimitExceeded:
            self.limiter.handshake_done(key, False)
            raise
        mux: Connection | None = None
        ok = False
        try:
            mux = await run_with_timeout(
                transport.dial(addr, self._new_protocol), self.config.dial_timeout
            )
            self._conn_scopes[mux] = cs
            mux.on_stream_end = cs.stream_ended
            mux.direction = "outbound"
            mux.remote_addr = addr
            if self.metrics is not None:
                self.metrics.socket_opened(mux)
            await self.upgrader.upgrade_outbound(mux, peer_id)
            if mux.remote_peer == self.peer_id:
                raise DialError(f"{addr} is ourselves: cannot dial self")
            ok = True
        except asyncio.TimeoutError:
            raise TransportError(f"{addr}: timed out after {self.config.dial_timeout} s") from None
        finally:
            self.limiter.handshake_done(key, ok)
            if not ok:
                if mux is not None:
                    mux.abort()
                    self._conn_scopes.pop(mux, None)
                cs.close()
        if not self._add_connection(mux, key):
            reason = mux.close_reason
            if isinstance(reason, Libp2pError):
                raise reason
            raise TransportError(f"connection to {addr} closed as it was established")
        return mux

    async def ping(self, peer: PeerId | PeerInfo | Multiaddr | str, count: int = 1) -> list[float]:
        """Round-trip times (seconds) of ``count`` libp2p pings to ``peer``."""
        for svc in self._services:
            if hasattr(svc, "ping"):
                rtts: list[float] = await svc.ping(peer, count)
                return rtts
        raise RuntimeError("ping is disabled on this host")

    @property
    def identify(self) -> IdentifyService | None:
        """The identify service (None when disabled)."""
        from rapidp2p.host.identify import IdentifyService

        for svc in self._services:
            if isinstance(svc, IdentifyService):
                return svc
        return None

    async def disconnect(self, peer_id: PeerId, linger: float | None = None) -> None:
        """Closes every connection to the peer, gracefully as :meth:`close` does: streams are
        half-closed and the peer gets up to ``linger`` seconds (default
        ``config.close_linger``) to consume what was written, then GoAway and close."""
        conns = list(self._conns.get(peer_id, ()))
        if not conns:
            return
        loop = asyncio.get_running_loop()
        linger = self.config.close_linger if linger is None else max(0.0, linger)
        await self._close_gracefully(conns, loop.time() + linger)

    # ---- streams -----------------------------------------------------------------------

    async def new_stream(
        self,
        peer: PeerId | PeerInfo | Multiaddr | str,
        protocols: str | Sequence[str],
        *,
        lazy: bool | None = None,
        timeout: float | None = None,
    ) -> Stream:
        """Opens a stream to the peer (connecting if needed) speaking one of ``protocols``.

        **Lazy negotiation.** With a single protocol the negotiation is lazy by default
        (zero round trips, as go-libp2p does): the stream is returned at once and the peer's
        answer is checked on the first read, so writing to a peer that does not speak the
        protocol succeeds (``write``, ``drain`` and ``close`` too) and the first ``read``
        raises :class:`~rapidp2p.exceptions.ProtocolNotSupported`. Pass ``lazy=False`` to
        wait for the answer here (one round trip): then ``new_stream`` itself raises
        ProtocolNotSupported. With several protocols the negotiation is always eager.

        ``timeout`` (seconds) bounds the whole call, connecting included, and raises
        :class:`~rapidp2p.exceptions.StreamTimeout` (a TimeoutError); without it the steps
        are bounded by the host's dial, upgrade and negotiation timeouts.
        """
        protos = [protocols] if isinstance(protocols, str) else list(protocols)
        if not protos:
            raise ValueError("new_stream needs at least one protocol")
        if timeout is None:
            return await self._new_stream(peer, protos, lazy)
        try:
            return await run_with_timeout(self._new_stream(peer, protos, lazy), timeout)
        except asyncio.TimeoutError as exc:
            if isinstance(exc, Libp2pError):  # a library timeout from inside: already typed
                raise
            raise StreamTimeout(
                f"opening {', '.join(protos)} to {_describe_peer(peer)} took over {timeout} s"
            ) from None

    async def _new_stream(
        self,
        peer: PeerId | PeerInfo | Multiaddr | str,
        protos: list[str],
        lazy: bool | None,
    ) -> Stream:
        mux = await self._connect(peer)
        timeout = self.config.negotiation_timeout
        cs = self._conn_scopes.get(mux)
        ss: StreamScope | None = None if cs is None else cs.open_stream("outbound")
        try:
            stream = await run_with_timeout(mux.open_stream(), timeout)
        except BaseException as exc:
            if ss is not None:
                ss.done()
            if isinstance(exc, asyncio.TimeoutError):
                raise ResourceLimitError("timed out waiting for a stream slot") from None
            raise
        if ss is not None:
            ss.attach(stream.stream_id)
        try:
            if lazy is None:
                lazy = len(protos) == 1
            if lazy and len(protos) == 1:
                lazy_stream = await select_outbound_lazy(stream, protos[0], timeout=timeout)
                stream._set_lazy(lazy_stream)
                stream.protocol = protos[0]
            else:
                stream.protocol = await select_outbound(stream, protos, timeout=timeout)
            if ss is not None:
                ss.set_protocol(stream.protocol)
        except BaseException:
            stream.reset()
            raise
        self._observe_stream(stream)
        return stream

    def _on_inbound_stream(self, stream: Stream) -> None:
        # The connection's ServedStreams holds the only strong reference (cancelled when the
        # connection closes); the task removes itself when it ends, so an idle stream costs
        # no done-callback, bound method or host-wide set entry (~300 B per stream).
        mux = stream.conn
        cs = self._conn_scopes.get(mux)
        if cs is not None:
            try:
                ss = cs.open_stream("inbound")
            except ResourceLimitExceeded as err:
                self._refusal_log.refused(f"inbound stream from {mux.remote_peer}", err)
                stream.reset()
                return
            ss.attach(stream.stream_id)
        self.spawn_for(mux, self._serve_stream(stream))

    async def _serve_stream(self, stream: Stream) -> None:
        handlers = self._handlers
        mux = stream.conn
        try:
            try:
                proto = await select_inbound(
                    stream, handlers.__contains__, timeout=self.config.negotiation_timeout
                )
            except (
                Libp2pError,
                asyncio.IncompleteReadError,
                asyncio.TimeoutError,
                OSError,
            ) as exc:
                log.debug("inbound stream negotiation failed: %s", exc)
                stream.reset()
                return
            handler = handlers.get(proto)
            # The registered id object, not the decoded copy (one string less per stream).
            stream.protocol = proto = self._handler_ids.get(proto, proto)
            self._observe_stream(stream)
            counts = self._served_by(mux).protocol_counts
            if (
                handler is None
                or counts.get(proto, 0) >= self.config.limits.max_inbound_streams_per_protocol
            ):
                stream.reset()
                return
            cs = self._conn_scopes.get(mux)
            ss = None if cs is None else cs.streams.get(stream.stream_id)
            if ss is not None:
                try:
                    ss.set_protocol(proto)
                except ResourceLimitExceeded as err:
                    self._refusal_log.refused(f"inbound {proto} stream from {mux.remote_peer}", err)
                    stream.reset()
                    return
            counts[proto] = counts.get(proto, 0) + 1
            try:
                await handler(stream)
            except asyncio.CancelledError:
                stream.reset()
                raise
            except Exception as exc:  # a handler's failure resets its stream, nothing more
                if not isinstance(exc, Libp2pError):
                    log.exception("stream handler for %s failed", proto)
                stream.reset()
            finally:
                counts[proto] -= 1
        finally:
            served = self._served.get(mux)
            if served is not None:
                served.tasks.discard(asyncio.current_task())

    # ---- shutdown ----------------------------------------------------------------------

    async def close(self, linger: float | None = None) -> None:
        """Shuts down gracefully: stops listening, closes the services, half-closes every
        stream (FIN after its queued data; nothing is reset), then waits up to ``linger``
        seconds (default ``config.close_linger``) until the remote peers consumed what was
        written, as their FIN or reset on each stream shows; then sends GoAway, closes every
        connection and cancels every task. The whole close takes at most ``linger`` seconds,
        however many connections are open. ``linger=0`` closes at once (data a remote has not
        read yet may be lost)."""
        if self._closed:
            return
        self._closed = True
        if self._maintenance is not None:
            self._maintenance.cancel()
        loop = asyncio.get_running_loop()
        linger = self.config.close_linger if linger is None else max(0.0, linger)
        deadline = self.closing_deadline = loop.time() + linger
        for svc in self._services:
            stop = getattr(svc, "close", None)
            if stop is not None:
                try:
                    res = stop()
                    if asyncio.iscoroutine(res):
                        await res
                except Exception:  # one failing service must not keep the host open
                    log.exception("closing service %r failed", svc)
        for lst in self._listeners:
            try:
                await lst.close()
            except Exception:  # nor one failing listener
                log.exception("closing listener %r failed", lst)
        self._listeners.clear()
        conns = self.connections()
        handler_tasks = [t for s in self._served.values() for t in s.tasks]
        if conns:
            await self._close_gracefully(conns, deadline)
        # A task cancelled before its first step never runs its body, so an upgrade spawned
        # just now would keep its limiter counters: let every spawned task start first.
        await asyncio.sleep(0)
        tasks = list(self._tasks) + [t for t in handler_tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        self.events.close()

    @classmethod
    async def _close_gracefully(cls, conns: list[Connection], deadline: float) -> None:
        """Lingers (see :meth:`_linger`), then GoAway, flush and close; whatever has not
        closed by ``deadline`` is dropped."""
        await cls._linger(conns, deadline)
        closing = [asyncio.ensure_future(c.close()) for c in conns]
        loop = asyncio.get_running_loop()
        _done, stuck = await asyncio.wait(closing, timeout=max(0.0, deadline - loop.time()))
        for c in conns:
            c.abort()
        if stuck:  # aborted: their close() returns as soon as the socket is gone
            await asyncio.wait(stuck, timeout=1.0)

    @staticmethod
    async def _linger(conns: list[Connection], deadline: float) -> None:
        """Half-closes every stream and waits, until ``deadline`` at most, for the remotes to
        close or reset the streams we wrote on (one deadline for all connections)."""
        for c in conns:
            c.shutdown_streams()
        waits = [asyncio.ensure_future(c.wait_settled()) for c in conns if not c.settled]
        if not waits:
            return
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining > 0:
            _done, pending = await asyncio.wait(waits, timeout=remaining)
        else:
            pending = set(waits)
        for w in pending:
            w.cancel()
        if pending:
            log.debug(
                "close: %d connection(s) still had unconsumed data at the linger", len(pending)
            )

    def __repr__(self) -> str:
        return f"<Host {self.peer_id} addrs={[str(a) for a in self.listen_addrs]}>"


def _reason(addr: object, err: BaseException) -> str:
    """Why a dial to ``addr`` failed, without the address again (transports name it)."""
    text = str(err) or type(err).__name__
    prefix = f"{addr}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _describe_peer(peer: object) -> str:
    if isinstance(peer, PeerInfo):
        return str(peer.peer_id)
    return str(peer)


def _set_if_pending(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
