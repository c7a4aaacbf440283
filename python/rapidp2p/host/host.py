"""The libp2p host: listen, dial, open and serve streams (go-libp2p's ``host.Host`` shape).

```python
async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as host:
    host.set_stream_handler("/echo/1.0.0", echo)
    stream = await host.new_stream(peer_id, ["/echo/1.0.0"])
```

A host owns listeners (one per transport address), connections (secured with Noise and
multiplexed with yamux by the :class:`Upgrader`), the stream handlers, a peerstore and an
event bus. Ping and identify are served by default; other services join with
:meth:`Host.add_service`. Every wait has a timeout and every resource a cap
(:class:`HostConfig`, :class:`Limits`).

This module is the facade and the connection bookkeeping (admission, scopes, close); the
dial side is :mod:`rapidp2p.host.dialer`, inbound stream dispatch
:mod:`rapidp2p.host.dispatch`, and the services :mod:`rapidp2p.host.registry` (as go-libp2p
splits ``basichost`` from ``swarm``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from rapidp2p import pnet
from rapidp2p._aio.connection import MuxedConnection
from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import (
    ConnectionGated,
    DialTimeout,
    HostClosedError,
    Libp2pError,
    ResourceLimitError,
    ResourceLimitExceeded,
    StreamTimeout,
)
from rapidp2p.host import connlog
from rapidp2p.host.addrs import expand_unspecified, set_local_addr
from rapidp2p.host.config import HostConfig
from rapidp2p.host.connmgr import ConnectionManager
from rapidp2p.host.dialer import (
    KEYED_TRANSPORTS,
    QUIC,
    SECURED_TRANSPORTS,
    WEBRTC,
    Dialer,
    PeerLike,
    describe_peer,
    ip_of,
    loaded_types,
    to_multiaddr,
)
from rapidp2p.host.dispatch import ServedStreams, StreamDispatcher, StreamHandler
from rapidp2p.host.events import (
    EventBus,
    LocalAddressesChanged,
    PeerConnected,
    PeerDisconnected,
    ReachabilityChanged,
)
from rapidp2p.host.limits import ConnectionLimiter, raise_resource_limits
from rapidp2p.host.observed import ObservedAddrManager
from rapidp2p.host.peer_gc import PeerGC
from rapidp2p.host.reachability import Reachability
from rapidp2p.host.refusal import ConnectionRefuser, RefusalLog
from rapidp2p.host.registry import ServiceRegistry
from rapidp2p.host.upgrader import STAGE_SECURED, MuxerOptions, Upgrader
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo
from rapidp2p.protocols.multistream import select_outbound, select_outbound_lazy
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.resources.allowlist import Allowlist
from rapidp2p.resources.limits import ResourceLimits, autoscale, load_limits
from rapidp2p.resources.manager import (
    ConnectionScope,
    ResourceManager,
    StreamScope,
)
from rapidp2p.transport.base import Listener, Transport
from rapidp2p.transport.contracts import Connection
from rapidp2p.transport.memory import MemoryTransport
from rapidp2p.transport.tcp import TcpTransport
from rapidp2p.transport.websocket import WebSocketTransport

if TYPE_CHECKING:
    from rapidp2p._aio.quic import QuicConnection
    from rapidp2p._aio.webrtc import WebRtcConnection
    from rapidp2p.crypto import PrivateKey
    from rapidp2p.host.identify import IdentifyService
    from rapidp2p.host.service import Service
    from rapidp2p.metrics import Metrics
    from rapidp2p.peerstore import PeerStore
    from rapidp2p.transport.quic import QuicTransport
    from rapidp2p.transport.webrtc import WebRtcTransport
    from rapidp2p.transport.webrtc_direct import WebRtcDirectTransport
    from rapidp2p.transport.webtransport import WebTransportTransport

__all__ = ["Host", "HostConfig", "ServedStreams", "StreamHandler"]

log = logging.getLogger("rapidp2p.host")

#: The first receive-window grant a QUIC connection asks its scopes for, once its peer is known.
QUIC_WINDOW_GRANT = 4 * 1024 * 1024

_S = TypeVar("_S", bound="Service")
_T = TypeVar("_T")


class Host:
    """A libp2p node. Build it with :meth:`create` (or the constructor, then :meth:`listen`)::

        async with await Host.create(listen=["/ip4/0.0.0.0/tcp/4001",
                                             "/ip4/0.0.0.0/udp/4001/quic-v1"]) as host:
            print(host.peer_id, host.full_addrs)   # interface addresses, never 0.0.0.0
            conn = await host.connect("/ip4/192.0.2.1/tcp/4001/p2p/12D3KooW...")
            stream = await host.new_stream(conn.remote_peer, "/my-proto/1.0.0")

    Transports by default: TCP, QUIC v1, WebSocket (``/ws``) and memory (no QUIC with a
    private-network key); connections are secured with Noise or TLS 1.3 and multiplexed with
    yamux (mplex for old peers). ``peer_id`` and ``key`` are this node's identity,
    ``peerstore`` what it knows of other peers, ``events`` its event bus (connections,
    identify, reachability), ``connections()`` its live connections. Ping and identify are
    served from the start; the DHT, pubsub, relay, AutoNAT and HTTP are services
    (:meth:`add_service`). Settings: :class:`~rapidp2p.host.config.HostConfig`.
    """

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
        self._peerstore: PeerStore = peerstore
        self._events = EventBus()
        if transports is None:
            transports = [TcpTransport(), WebSocketTransport(), MemoryTransport()]
            if self.config.psk is None:  # QUIC encrypts below us: no private network over it
                from rapidp2p.transport.quic import QuicTransport
                from rapidp2p.transport.webrtc_direct import WebRtcDirectTransport
                from rapidp2p.transport.webtransport import WebTransportTransport

                transports.insert(1, QuicTransport())
                # Listens only when asked (/webrtc-direct addresses); never dials yet.
                transports.append(WebRtcDirectTransport())
                # Listens only when asked (/quic-v1/webtransport addresses); dials those
                # with /certhash.
                transports.append(WebTransportTransport())
        self.transports: list[Transport] = list(transports)
        for t in self.transports:
            if isinstance(t, loaded_types(KEYED_TRANSPORTS)):
                cast("QuicTransport | WebRtcDirectTransport | WebTransportTransport", t).bind_key(
                    self.key
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
        # QUIC tells the peer its stream limit in the handshake (MAX_STREAMS cannot shrink
        # later): no more than the conn and peer scopes would accept.
        lim = self.resource_manager.limits
        stream_cap = min(
            self.config.limits.max_streams_per_connection,
            *(min(s.streams_inbound, s.streams) for s in (lim.conn, lim.peer)),
        )
        for t in self.transports:
            if isinstance(t, loaded_types(QUIC)):
                cast("QuicTransport", t).cap_streams(stream_cap)
        self._conn_scopes: dict[Connection, ConnectionScope] = {}
        #: Stream handlers, per-protocol caps and the tasks serving each connection.
        self._dispatch = StreamDispatcher(self)
        self._dialer = Dialer(self)
        self.connmgr = ConnectionManager(self, self.config.connmgr)
        self.peer_gc = PeerGC(self.peerstore, self.config.peer_gc)
        self.peer_gc.keepers += [self.is_connected, self.connmgr.is_tagged]
        self.peer_gc.on_forget.append(self.connmgr.forget)
        self._maintenance: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []
        self._conns: dict[PeerId, list[Connection]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        #: While :meth:`close` runs: the loop time by which connections are dropped. Services
        #: bound their own graceful shutdown by it (the linger is one budget for all).
        self.closing_deadline: float | None = None
        self._services = ServiceRegistry(self)
        self._started = False
        #: Identify's observed addresses; :meth:`observed_addrs` gives the confirmed ones.
        self.observed = ObservedAddrManager()
        self._reachability = Reachability.UNKNOWN
        #: Extra advertised addresses (the port mapper's mapped ones), asked at each read.
        self._addr_sources: list[Callable[[], list[Multiaddr]]] = []
        #: Called after each :meth:`listen` (the port mapper maps new ports).
        self._listen_callbacks: list[Callable[[], None]] = []
        #: The metrics sink (``metrics=`` or ``config.metrics``); None when metrics are off.
        self.metrics: Metrics | None = metrics if metrics is not None else self.config.metrics
        if self.metrics is not None:
            self.metrics.attach(self)
        for t in self.transports:
            if isinstance(t, loaded_types(WEBRTC)):  # /webrtc: signalling runs on this host
                cast("WebRtcTransport", t).attach(self)

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
            mplex=m.mplex,
            mplex_max_buffered=m.mplex_max_buffered,
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
        await host.start()
        addrs = list(listen)
        if addrs:
            try:
                await host.listen(*addrs)
            except BaseException:
                await host.close()
                raise
        return host

    async def start(self) -> None:
        """Starts the default services (ping, identify, as configured). Idempotent;
        :meth:`create`, ``async with``, :meth:`listen` and :meth:`add_service` call it."""
        if self._started:
            return
        if self._closed:
            raise HostClosedError("cannot start: the host is closed (create a new Host)")
        self._started = True
        from rapidp2p.host.services import default_services

        for svc in default_services(self):
            await self._services.add(svc)

    async def add_service(self, service: _S) -> _S:
        """Attaches ``service`` (a :class:`~rapidp2p.host.service.Service`: pubsub, DHT,
        perf, ...) to this host and returns it once it serves::

            dht = await host.add_service(KadDHT(host))

        Starts the host if needed, then awaits ``service.start(host)`` (which registers its
        stream handlers), then calls ``service.on_connection(conn)`` for the connections that
        already exist; from then on the host calls it for every new connection, and
        ``service.close()`` when the host closes (services close in the order they were
        added, before the connections). Adding a service twice does nothing.

        Raises :class:`HostClosedError` once the host is closed."""
        if self._closed:
            raise HostClosedError("cannot add a service: the host is closed")
        await self.start()
        await self._services.add(service)
        return service

    @property
    def services(self) -> ServiceRegistry:
        """The services attached to this host, in order (``find(Kind)`` looks one up)."""
        return self._services

    @property
    def is_closed(self) -> bool:
        """True once :meth:`close` started."""
        return self._closed

    async def __aenter__(self) -> Host:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- identity, peerstore, events ---------------------------------------------------

    @property
    def peer_id(self) -> PeerId:
        """This host's :class:`PeerId`, derived from its key (what remote peers verify)."""
        return self._peer_id

    @property
    def peerstore(self) -> PeerStore:
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
        address (loopback first), then the confirmed observed addresses
        (:meth:`observed_addrs`) unless AutoNAT found us private, as identify and the DHT
        advertise them. Identify leaves loopback addresses out for peers that are not on
        loopback."""
        own = expand_unspecified(self.listen_addrs)
        for source in self._addr_sources:
            own += [a for a in source() if a not in own]
        if self._reachability is Reachability.PRIVATE:
            return own
        extra = [a for a in self.observed_addrs() if a not in own]
        return own + extra if extra else own

    def add_address_source(self, source: Callable[[], list[Multiaddr]]) -> None:
        """Adds ``source()``'s addresses to :attr:`addrs` (after the listen addresses, before
        observed ones; shown whatever the reachability): the port mapper's mapped addresses.
        The source calls :meth:`notify_addresses_changed` when its list changes."""
        self._addr_sources.append(source)

    def on_listen(self, callback: Callable[[], None]) -> None:
        """Calls ``callback()`` after each :meth:`listen` (new listen addresses)."""
        self._listen_callbacks.append(callback)

    def notify_addresses_changed(self) -> None:
        """What :attr:`addrs` returns changed (an address source's list did): emits
        ``LocalAddressesChanged`` and tells connected peers (identify push)."""
        self._addresses_changed()

    def observed_addrs(self) -> list[Multiaddr]:
        """Addresses peers see us at that are confirmed: reported by identify from at least 4
        observers in distinct IP groups, on connections to one of our listen ports
        (:class:`~rapidp2p.host.observed.ObservedAddrManager`)."""
        if not len(self.observed):
            return []
        return self.observed.addrs(time.monotonic())

    def record_observed_addr(self, conn: Connection, observed: Multiaddr) -> bool:
        """Identify's report that the peer of ``conn`` sees us at ``observed``; True when it
        counts towards confirming that address. When the confirmed set changes, connected
        peers hear our new addresses (identify-push)."""
        now = time.monotonic()
        before = self.observed.addrs(now) if len(self.observed) else []
        counted = self.observed.record(
            observed,
            local=conn.local_addr,
            observer=conn.remote_addr,
            listen_addrs=self.listen_addrs,
            now=now,
        )
        if counted and self.observed.addrs(now) != before:
            self._addresses_changed()
        return counted

    def _addresses_changed(self) -> None:
        """What we advertise changed: tell subscribers, and connected peers (identify-push
        carries the addresses too)."""
        self.events.emit(LocalAddressesChanged(self.peer_id, tuple(self.addrs)))
        self._protocols_changed()

    @property
    def reachability(self) -> Reachability:
        """Whether peers can dial us (``public``, ``private``, ``unknown``), as AutoNAT last
        decided; ``unknown`` without an AutoNAT service."""
        return self._reachability

    def set_reachability(
        self, value: Reachability, *, addr: Multiaddr | None = None, via: str = ""
    ) -> None:
        """Records a new verdict (called by AutoNAT); emits
        :class:`~rapidp2p.host.events.ReachabilityChanged` when it differs from the last."""
        previous = self._reachability
        if value is previous:
            return
        self._reachability = value
        log.info("reachability: %s -> %s (%s)", previous.value, value.value, via or "set")
        self.events.emit(ReachabilityChanged(self.peer_id, value, previous, addr, via))
        if self.observed_addrs():  # observed addresses are hidden or shown again
            self._addresses_changed()

    @property
    def full_addrs(self) -> list[Multiaddr]:
        """:attr:`addrs` ending in ``/p2p/<our peer id>`` (what to give to dialers)."""
        return [to_multiaddr(f"{a}/p2p/{self.peer_id}") for a in self.addrs]

    async def listen(self, *addrs: Multiaddr | str) -> list[Multiaddr]:
        """Starts listening on each address; returns the dialable addresses it added (real
        ports; an unspecified address such as ``/ip4/0.0.0.0/tcp/0`` comes back expanded to
        the interface addresses, as :attr:`addrs` shows it).

        Raises :class:`HostClosedError` once the host is closed."""
        if self._closed:
            raise HostClosedError("cannot listen: the host is closed (create a new Host)")
        await self.start()
        bound: list[Multiaddr] = []
        for a in addrs:
            ma = to_multiaddr(a)
            transport = self._dialer.transport_for(ma, listen=True)
            lst: Listener
            if isinstance(transport, loaded_types(SECURED_TRANSPORTS)):
                secured = cast(
                    "QuicTransport | WebRtcDirectTransport | WebTransportTransport"
                    " | WebRtcTransport",
                    transport,
                )
                lst = await secured.listen_secured(ma, self.setup_secured, self._on_secured)
            else:
                lst = await transport.listen(ma, self._new_protocol, self._on_inbound)
            self._listeners.append(lst)
            bound.extend(lst.addrs)
        for callback in self._listen_callbacks:
            callback()
        return expand_unspecified(bound)

    def _new_protocol(self) -> MuxedConnection:
        mux = MuxedConnection(max_unread=self.config.max_unread_per_connection)
        mux.local_peer = self.peer_id
        mux.default_write_timeout = self.config.stream_write_timeout
        # Set before the upgrade: the remote may open streams in the same segment as its
        # last handshake message, and those arrive while the muxer starts.
        mux.on_stream = self._dispatch.on_inbound_stream
        return mux

    def setup_secured(self, conn: QuicConnection | WebRtcConnection) -> None:
        """Prepares a connection that comes secured and multiplexed (QUIC) before its first
        event, as ``_new_protocol`` does for a socket."""
        conn.local_peer = self.peer_id
        conn.default_write_timeout = self.config.stream_write_timeout
        conn.on_stream = self._dispatch.on_inbound_stream

    def _on_secured(self, conn: QuicConnection | WebRtcConnection) -> None:
        """An inbound connection finished its handshake inside its transport (QUIC): the
        checks an upgrade would run (gater, limits, resource scope), then registration."""
        conn.direction = "inbound"
        remote = conn.remote_addr
        ip = ip_of(remote) if remote is not None else None
        if self.metrics is not None:
            self.metrics.socket_opened(conn)
        if self._closed:
            conn.abort()
            return
        gater = self.config.gater
        if gater is not None and not (
            gater.intercept_accept(None, remote)
            and gater.intercept_secured("inbound", conn.remote_peer, remote)
        ):
            err = ConnectionGated(f"gater refused the connection from {remote}")
            self._refusal_log.refused(f"inbound connection from {remote}", err)
            conn.abort(err)
            return
        key = object()
        refusal = self.limiter.admit_inbound(ip, conn.loop.time(), key)
        if refusal is None:
            try:
                self._open_conn_scope(conn, "inbound", ip, False)
            except ResourceLimitExceeded as err:
                refusal = err
        if refusal is not None:
            self.limiter.handshake_done(key, False)
            self._refusal_log.refused(f"inbound connection from {remote}", refusal)
            conn.abort(refusal)
            return
        self.limiter.handshake_done(key, True)
        self._add_connection(conn, key)

    # ---- stream handlers ---------------------------------------------------------------

    def set_stream_handler(
        self, protocol: str, handler: StreamHandler, *, max_inbound_streams: int | None = None
    ) -> None:
        """Serves ``protocol``: ``handler(stream)`` runs in its own task per inbound stream.

        At most ``max_inbound_streams`` streams of the protocol are served at once on one
        connection (None: ``Limits.max_inbound_streams_per_protocol``); excess streams are
        reset after negotiation. This is the one place inbound streams are capped per
        protocol: a service passes its own cap here rather than counting streams itself."""
        if self._dispatch.set_handler(protocol, handler, max_inbound_streams):
            self._protocols_changed()

    def remove_stream_handler(self, protocol: str) -> None:
        if self._dispatch.remove_handler(protocol):
            self._protocols_changed()

    def _protocols_changed(self) -> None:
        ident = self.identify
        if ident is not None and self._started and not self._closed:
            ident.protocols_changed()

    @property
    def protocols(self) -> list[str]:
        return sorted(self._dispatch.handlers)

    def inbound_stream_cap(self, protocol: str) -> int:
        """How many inbound streams of ``protocol`` one connection may have served at once."""
        return self._dispatch.inbound_cap(protocol)

    # ---- connections -------------------------------------------------------------------

    def connections(self, peer_id: PeerId | None = None) -> list[Connection]:
        if peer_id is None:
            return [c for conns in self._conns.values() for c in conns]
        return list(self._conns.get(peer_id, ()))

    def is_connected(self, peer_id: PeerId) -> bool:
        return any(not c.is_closed for c in self._conns.get(peer_id, ()))

    def live_connection(self, peer_id: PeerId) -> Connection | None:
        """A connection to ``peer_id`` that can open streams (open, no GoAway), or None. A
        direct connection wins over a limited (relayed) one: once a hole punch succeeded, new
        streams take the direct path (DCUtR: "prioritise it over the relay connection")."""
        fallback: Connection | None = None
        for c in self._conns.get(peer_id, ()):
            if not c.is_closed and c.go_away_code is None:
                if not c.limited:
                    return c
                if fallback is None:
                    fallback = c
        return fallback

    def direct_connection(self, peer_id: PeerId) -> Connection | None:
        """A live connection to ``peer_id`` that is not relayed (not ``limited``), or None."""
        c = self.live_connection(peer_id)
        return c if c is not None and not c.limited else None

    async def dial_direct(
        self, peer_id: PeerId, addrs: Sequence[Multiaddr], *, as_server: bool = False
    ) -> Connection:
        """A new direct connection to ``peer_id`` at one of ``addrs``, dialed for a hole
        punch (all at once, TCP from a listen port, ``as_server`` for the listener's part
        of a simultaneous open), whatever connections exist already. Used by DCUtR."""
        return await self._dialer.dial_direct(peer_id, list(addrs), as_server=as_server)

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
        set_local_addr(mux)
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
            self._dispatch.cancel_served(mux)
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
        self._services.connection_added(mux)
        return True

    def spawn_for(self, conn: Connection, coro: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        """Runs ``coro`` as work serving ``conn``: cancelled when the connection ends (or
        the host closes); the task holds no other reference once it is done."""
        return self._dispatch.spawn_for(conn, coro)

    def tasks_serving(self, conn: Connection) -> set[asyncio.Task[object]]:
        """The live tasks serving ``conn`` (stream handlers, identify), a copy."""
        return self._dispatch.tasks_serving(conn)

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

    def _peerstore_add_connection(self, mux: Connection) -> None:
        ps = self.peerstore
        key = mux.remote_key
        if key is not None:
            ps.add_pubkey(mux.remote_peer, key)
        if mux.remote_addr is not None and mux.direction == "outbound":
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
        # QUIC: the peer learns the stream limit (MAX_STREAMS) instead of seeing resets, and the
        # connection's receive window grows past its first 1 MiB by what the scopes grant.
        limit_streams = getattr(mux, "limit_inbound_streams", None)
        if limit_streams is not None:
            limit_streams(cs.inbound_stream_cap())
            self._grow_quic_window(mux, cs)
        # Window growth and unread received bytes are reserved from the connection's scopes
        # (the peer's from now on) as they happen: nothing up front.
        who = f"unread bytes from {mux.remote_peer}"
        cs.on_refused = lambda err: self._refusal_log.refused(who, err)
        mux.receive_memory = cs
        if self._maintenance is None and not self._closed:
            # Not in _tasks: it is housekeeping, not work the host waits for.
            self._maintenance = asyncio.ensure_future(self._maintain())
        return True

    async def _maintain(self) -> None:
        """Rare housekeeping: the connection manager and the peer store's forgetting."""
        while not self._closed:
            await asyncio.sleep(self.config.maintenance_interval)
            self.maintenance_round()

    @staticmethod
    def _grow_quic_window(mux: Any, cs: Any) -> None:
        """Reserves more receive window for a QUIC connection (at first 4 MiB, then doubling;
        halved on refusal, at least 256 KiB or nothing) and raises its window by it."""
        want = max(cs.grant, QUIC_WINDOW_GRANT)
        added = cs.reserve_window(want, floor=256 * 1024)
        if added:
            mux.set_receive_budget(mux.receive_window_total + added)

    def maintenance_round(self) -> None:
        """One round of :meth:`_maintain` (public so tests need not wait for the timer)."""
        for mux, cs in list(self._conn_scopes.items()):
            # QUIC windows grow here (yamux grows its own, per stream, as auto-tuning asks).
            quic = getattr(mux, "limit_inbound_streams", None) is not None
            if quic and cs.peer is not None and mux.receive_budget_hit:
                self._grow_quic_window(mux, cs)
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
        self._dispatch.cancel_served(mux)  # handlers of a dead connection end with it
        conns = self._conns.get(mux.remote_peer)
        if conns is None or mux not in conns:
            return
        conns.remove(mux)
        if not conns:
            del self._conns[mux.remote_peer]
            self.connmgr.disconnected(mux.remote_peer)
            self.peer_gc.disconnected(mux.remote_peer)
            self.events.emit(PeerDisconnected(mux.remote_peer, mux))

    async def connect(self, peer: PeerLike, *, timeout: float | None = None) -> Connection:
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
            return await self._dialer.connect(peer)
        try:
            return await run_with_timeout(self._dialer.connect(peer), timeout)
        except asyncio.TimeoutError as exc:
            if isinstance(exc, Libp2pError):  # a library timeout from inside: already typed
                raise
            msg = f"connecting to {describe_peer(peer)} took over {timeout} s"
            raise DialTimeout(msg) from None

    async def ping(self, peer: PeerLike, count: int = 1) -> list[float]:
        """Round-trip times (seconds) of ``count`` libp2p pings to ``peer``."""
        from rapidp2p.host.services import PingService

        svc = self._services.find(PingService)
        if svc is None:
            raise RuntimeError("ping is disabled on this host")
        return await svc.ping(peer, count)

    @property
    def identify(self) -> IdentifyService | None:
        """The identify service (None when disabled)."""
        from rapidp2p.host.identify import IdentifyService

        return self._services.find(IdentifyService)

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
                f"opening {', '.join(protos)} to {describe_peer(peer)} took over {timeout} s"
            ) from None

    async def _new_stream(
        self,
        peer: PeerId | PeerInfo | Multiaddr | str,
        protos: list[str],
        lazy: bool | None,
    ) -> Stream:
        mux = await self._dialer.connect(peer)
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
                ss.set_protocol(stream.protocol, self._services.scope_of(stream.protocol))
        except BaseException:
            stream.reset()
            raise
        self._observe_stream(stream)
        return stream

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
        await self._services.close_all()
        for lst in self._listeners:
            try:
                await lst.close()
            except Exception:  # nor one failing listener
                log.exception("closing listener %r failed", lst)
        self._listeners.clear()
        conns = self.connections()
        handler_tasks = self._dispatch.all_tasks()
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
        for transport in self.transports:
            if isinstance(transport, loaded_types(SECURED_TRANSPORTS)):  # UDP sockets
                await cast(
                    "QuicTransport | WebRtcDirectTransport | WebTransportTransport"
                    " | WebRtcTransport",
                    transport,
                ).close()
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
