"""The resource manager: scoped accounting in go-libp2p's model.

Scopes and who counts what:

- ``system``: everything; ``transient``: connections not yet bound to a peer and streams not
  yet bound to a protocol (allowlisted connections use ``allowlisted_system`` and
  ``allowlisted_transient`` instead, with their own limits);
- ``peer:<id>``: a remote peer's connections, streams and memory;
- ``conn``: one connection (its memory grant for receive windows);
- ``protocol:<id>`` / ``service:<name>``: streams of one protocol / service, whichever peer;
- ``stream``: one stream (its limits, one stream and its window, hold by construction, so no
  object is kept per stream beyond its :class:`StreamScope`).

A connection is opened in the transient scope, moves to its peer's scope once the remote is
authenticated (:meth:`ConnectionScope.set_peer`); a stream is opened in transient + peer +
connection and moves from transient to its protocol once negotiated
(:meth:`StreamScope.set_protocol`). Every refusal raises
:class:`~rapidp2p.exceptions.ResourceLimitExceeded` naming the scope and the limit; the caller
refuses only that stream or connection. Accounting happens per stream open/close, per
connection and per memory grant: never per frame or per read.

Memory, as go-yamux does it: a connection reserves nothing up front and an idle stream costs
only what it buffers. Receive windows start at their initial size for free; auto-tuning growth
beyond it is reserved when a window actually grows (:meth:`ConnectionScope.reserve_window`,
asked by the connection right after the ack that wanted the growth), halved when refused and
skipped when even the floor is refused (the window stays as it is); windows given back when
streams end are released (:meth:`ConnectionScope.release_window`). Bytes received but not yet
read by the application are reserved from the same scopes: the :class:`ConnectionScope` is the
connection's ``receive_memory`` (:class:`~rapidp2p.transport.contracts.ReceiveMemory`), asked at
most once per socket read. Unread bytes sit inside the windows, so a connection holds
``max(window growth, unread bytes)``: unread bytes within the growth are already paid for.
When an unread reservation is refused the connection keeps its windows as they are and resets
the stream holding the most (see ``ReceiveMemory``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rapidp2p.exceptions import ResourceLimitExceeded
from rapidp2p.resources.limits import ResourceLimits, autoscale
from rapidp2p.resources.scope import (
    Direction,
    ResourceScope,
    release_conn,
    release_memory,
    release_stream,
    reserve_conn,
    reserve_memory,
    reserve_stream,
)

__all__ = ["ConnectionScope", "ResourceManager", "StreamScope"]

#: Smallest window growth worth reserving when a larger one is refused (halving stops here).
WINDOW_GROWTH_FLOOR = 64 * 1024
#: Window growth may fill a scope's memory up to this share of the limit (``(prio + 1) / 256``,
#: go-yamux's priority for it): the rest stays for bytes received in windows that cost nothing
#: up front (the streams' initial windows), so our own growth never starves them.
WINDOW_GROWTH_PRIORITY = 128


class ResourceManager:
    """Scopes of one host. ``stat()`` / ``blocked`` give snapshots for metrics."""

    def __init__(self, limits: ResourceLimits | None = None) -> None:
        self.limits = limits or autoscale()
        lim = self.limits
        self.system = ResourceScope("system", lim.system)
        self.transient = ResourceScope("transient", lim.transient)
        self.allowlisted_system = ResourceScope("allowlisted_system", lim.allowlisted_system)
        self.allowlisted_transient = ResourceScope(
            "allowlisted_transient", lim.allowlisted_transient
        )
        self._peers: dict[Any, ResourceScope] = {}
        self._protocols: dict[str, ResourceScope] = {}
        self._services: dict[str, ResourceScope] = {}
        #: Refusals so far, keyed ``"<scope kind>/<limit>"`` (``"peer/streams_inbound"``).
        self.blocked: dict[str, int] = {}

    # ---- scopes ------------------------------------------------------------------------

    def peer_scope(self, peer: Any) -> ResourceScope:
        scope = self._peers.get(peer)
        if scope is None:
            scope = self._peers[peer] = ResourceScope(
                f"peer:{peer}", self.limits.for_peer(str(peer))
            )
        return scope

    def protocol_scope(self, proto: str) -> ResourceScope:
        scope = self._protocols.get(proto)
        if scope is None:
            if len(self._protocols) >= 1024:  # protocols come from our handlers: bounded
                self._gc(self._protocols)
            scope = self._protocols[proto] = ResourceScope(
                f"protocol:{proto}", self.limits.for_protocol(proto)
            )
        return scope

    def service_scope(self, name: str) -> ResourceScope:
        scope = self._services.get(name)
        if scope is None:
            scope = self._services[name] = ResourceScope(
                f"service:{name}", self.limits.for_service(name)
            )
        return scope

    def _gc(self, table: dict[Any, ResourceScope]) -> None:
        for key in [k for k, s in table.items() if s.is_idle and not s.blocked]:
            del table[key]

    def _release_peer(self, peer: Any) -> None:
        scope = self._peers.get(peer)
        if scope is not None and scope.is_idle:
            del self._peers[peer]

    def _count(self, err: ResourceLimitExceeded) -> ResourceLimitExceeded:
        key = f"{err.scope.split(':', 1)[0]}/{err.limit}"
        self.blocked[key] = self.blocked.get(key, 0) + 1
        return err

    # ---- opening -----------------------------------------------------------------------

    def open_connection(
        self, direction: Direction, *, use_fd: bool = True, allowlisted: bool = False
    ) -> ConnectionScope:
        """Reserves a connection in the transient and system scopes, or raises."""
        cs = ConnectionScope(self, direction, use_fd, allowlisted)
        try:
            reserve_conn(cs._chain, direction, use_fd)
        except ResourceLimitExceeded as err:
            raise self._count(err) from None
        return cs

    # ---- snapshots ---------------------------------------------------------------------

    def stat(self) -> dict[str, dict[str, int]]:
        """Usage per scope: system, transient, the allowlisted pair, each protocol and service,
        and ``peers`` (how many peer scopes are live, and their summed usage)."""
        out = {
            s.name: s.stat()
            for s in (
                self.system,
                self.transient,
                self.allowlisted_system,
                self.allowlisted_transient,
            )
        }
        for s in [*self._protocols.values(), *self._services.values()]:
            out[s.name] = s.stat()
        peers = {"count": len(self._peers), "memory": 0, "streams": 0, "conns": 0}
        for s in self._peers.values():
            peers["memory"] += s.memory
            peers["streams"] += s.streams_in + s.streams_out
            peers["conns"] += s.conns_in + s.conns_out
        out["peers"] = peers
        return out

    def stat_peer(self, peer: Any) -> dict[str, int] | None:
        scope = self._peers.get(peer)
        return None if scope is None else scope.stat()


class ConnectionScope:
    """One connection's accounting; owned by the host for the connection's life."""

    __slots__ = (
        "_chain",
        "_mgr",
        "_reserved",
        "_stream_base",
        "allowlisted",
        "closed",
        "direction",
        "grant",
        "on_refused",
        "peer",
        "scope",
        "streams",
        "unread",
        "use_fd",
    )

    def __init__(
        self, mgr: ResourceManager, direction: Direction, use_fd: bool, allowlisted: bool
    ) -> None:
        self._mgr = mgr
        self.direction = direction
        self.use_fd = use_fd
        self.allowlisted = allowlisted
        self.scope = ResourceScope("conn", mgr.limits.conn)
        self.peer: Any = None
        system = mgr.allowlisted_system if allowlisted else mgr.system
        transient = mgr.allowlisted_transient if allowlisted else mgr.transient
        self._chain: list[ResourceScope] = [self.scope, transient, system]
        #: What a new stream reserves from besides its own scope (conn, peer, transient, system).
        self._stream_base: list[ResourceScope] = [self.scope, transient, system]
        #: Memory reserved for receive-window growth beyond the streams' initial windows.
        self.grant = 0
        #: Received bytes the application has not read yet (as the connection reported them).
        self.unread = 0
        #: What this connection holds in its memory chain: ``max(grant, unread)``.
        self._reserved = 0
        #: Called with each refused unread reservation (the host logs it, rate-limited).
        self.on_refused: Callable[[ResourceLimitExceeded], None] | None = None
        self.streams: dict[int, StreamScope] = {}
        self.closed = False

    @property
    def system(self) -> ResourceScope:
        return self._chain[-1]

    def set_peer(self, peer: Any) -> list[int]:
        """The remote is authenticated: move from transient to its peer scope, or raise.

        Streams the remote opened before (in the same segment as its last handshake message)
        join the peer scope too; the ids of those it refuses are returned for the caller to
        reset (their reservations are already given back).
        """
        mgr = self._mgr
        ps = mgr.peer_scope(peer)
        err = ps.check_conn(self.direction, self.use_fd)
        if err is not None:
            mgr._release_peer(peer)
            raise mgr._count(err)
        ps.add_conn(self.direction, self.use_fd)
        ps.add_memory(self._reserved)  # held from now on in the peer scope too
        self._chain[1].add_conn(self.direction, self.use_fd, -1)  # leave transient
        self.peer = peer
        self._chain = [self.scope, ps, self.system]
        self._stream_base = [self.scope, ps, self._stream_base[1], self.system]
        refused: list[int] = []
        for sid, ss in list(self.streams.items()):
            chain = ss.chain
            if chain is None:
                continue
            err = ps.check_stream(ss.direction)
            if err is not None:
                mgr._count(err)
                ss.done()
                refused.append(sid)
                continue
            ps.add_stream(ss.direction)
            chain.insert(1, ps)  # [conn, peer, transient or protocol..., system]
        return refused

    def inbound_stream_cap(self) -> int:
        """The most inbound streams this connection may have open at once under the conn
        and peer scopes' limits (a QUIC connection tells the peer as its MAX_STREAMS)."""
        scopes = [self.scope, *([] if self.peer is None else [self._chain[1]])]
        return min(min(s.limit.streams_inbound, s.limit.streams) for s in scopes)

    # ---- ReceiveMemory (window growth and unread bytes) --------------------------------

    def _memory_chain(self) -> list[ResourceScope]:
        return [self.scope, *([] if self.peer is None else [self._chain[1]]), self.system]

    def _settle(self, grant: int, unread: int, prio: int = 255) -> None:
        """Holds ``max(grant, unread)`` in the memory chain: reserves the increase (raises,
        changing nothing, when refused) or gives back the decrease."""
        target = max(grant, unread)
        delta = target - self._reserved
        if delta > 0:
            reserve_memory(self._memory_chain(), delta, prio)
        elif delta < 0:
            release_memory(self._memory_chain(), -delta)
        self._reserved = target
        self.grant = grant
        self.unread = unread

    @property
    def stream_memory_limit(self) -> int:
        return self._mgr.limits.stream.memory

    @property
    def memory(self) -> int:
        """Bytes this connection holds in its scopes now."""
        return self._reserved

    def reserve_window(self, want: int, floor: int = WINDOW_GROWTH_FLOOR) -> int:
        """Window growth: reserves up to ``want`` bytes from conn, peer and system (halving
        on refusal, not below ``floor`` or ``want``), within half of each scope's memory
        (:data:`WINDOW_GROWTH_PRIORITY`); returns what was reserved (0 when even the floor was
        refused: the windows stay as they are, and the refusal is counted)."""
        if self.closed or want <= 0:
            return 0
        n = want
        last: ResourceLimitExceeded | None = None
        chain = self._memory_chain()
        while n >= max(min(floor, want), 1):
            # The growth must fit in its share even where unread bytes hold the memory now:
            # they are read soon, the growth stays.
            growth_delta = self.grant + n - self._reserved
            err = next(
                (e for s in chain if (e := s.check_memory(growth_delta, WINDOW_GROWTH_PRIORITY))),
                None,
            )
            if err is None:
                try:
                    self._settle(self.grant + n, self.unread)
                    return n
                except ResourceLimitExceeded as refused:
                    err = refused
            last = err
            n //= 2
        if last is not None:
            self._mgr._count(last)
        return 0

    def release_window(self, n: int) -> None:
        """Window growth given back (streams ended): releases what unread bytes do not hold."""
        if self.closed or n <= 0:
            return
        self._settle(self.grant - min(n, self.grant), self.unread)

    def reserve_unread(self, n: int) -> ResourceLimitExceeded | None:
        """``n`` more unread bytes: charges conn, peer and system for what the window growth
        does not cover; the refusal (counted, reported to ``on_refused``), if any."""
        if self.closed:
            return None
        try:
            self._settle(self.grant, self.unread + n)
        except ResourceLimitExceeded as err:
            self._mgr._count(err)
            if self.on_refused is not None:
                self.on_refused(err)
            return err
        return None

    def release_unread(self, n: int) -> None:
        """``n`` unread bytes were read (or dropped): gives back what no longer needs a charge."""
        if self.closed:
            return
        self._settle(self.grant, self.unread - min(n, self.unread))

    def open_stream(self, direction: Direction) -> StreamScope:
        """Reserves a stream in its own, this connection's, the peer's, transient and system
        scopes, or raises ResourceLimitExceeded (nothing taken)."""
        ss = StreamScope(self, direction)
        try:
            reserve_stream(ss.chain or (), direction)
        except ResourceLimitExceeded as err:
            raise self._mgr._count(err) from None
        return ss

    def stream_ended(self, stream_id: int) -> None:
        """The muxer dropped a stream (``MuxedConnection.on_stream_end``)."""
        ss = self.streams.pop(stream_id, None)
        if ss is not None:
            ss.done()

    def close(self) -> None:
        """The connection ended: gives back its streams, its grant and its slot."""
        if self.closed:
            return
        self.closed = True
        for ss in list(self.streams.values()):
            ss.done()
        self.streams.clear()
        if self._reserved:
            release_memory(self._memory_chain(), self._reserved)
        self.grant = self.unread = self._reserved = 0
        release_conn(self._chain, self.direction, self.use_fd)
        if self.peer is not None:
            self._mgr._release_peer(self.peer)


class StreamScope:
    """One stream's accounting; :meth:`done` gives it back (idempotent)."""

    __slots__ = ("_conn", "chain", "direction", "protocol", "stream_id")

    def __init__(self, conn: ConnectionScope, direction: Direction) -> None:
        self._conn = conn
        self.direction = direction
        self.protocol: str | None = None
        self.stream_id = -1
        # No scope object of its own: the stream scope's limits (one stream, its window's
        # memory) hold by construction, and a stream open is the hot path of accounting.
        self.chain: list[ResourceScope] | None = list(conn._stream_base)

    def attach(self, stream_id: int) -> None:
        """Ties the reservation to a muxer stream id (released when it ends)."""
        self.stream_id = stream_id
        self._conn.streams[stream_id] = self

    def set_protocol(self, proto: str, service: str | None = None) -> None:
        """Negotiated: moves the stream from transient to its protocol (and service) scope."""
        chain = self.chain
        if chain is None:
            return
        mgr = self._conn._mgr
        ps = mgr._protocols.get(proto) or mgr.protocol_scope(proto)
        inbound = self.direction == "inbound"
        if service is None:
            lim = ps.limit  # inlined check: this runs per stream
            if (
                ps.streams_in >= lim.streams_inbound
                if inbound
                else ps.streams_out >= lim.streams_outbound
            ) or ps.streams_in + ps.streams_out >= lim.streams:
                err = ps.check_stream(self.direction)
                raise mgr._count(err or ResourceLimitExceeded(ps.name, "streams"))
            moved = [ps]
        else:
            moved = [ps, mgr.service_scope(service)]
            for s in moved:
                err = s.check_stream(self.direction)
                if err is not None:
                    raise mgr._count(err)
        transient = chain[-2]
        if inbound:
            transient.streams_in -= 1
            for s in moved:
                s.streams_in += 1
        else:
            transient.streams_out -= 1
            for s in moved:
                s.streams_out += 1
        chain[-2] = ps
        if service is not None:
            chain.insert(-1, moved[1])
        self.protocol = proto

    def done(self) -> None:
        chain = self.chain
        if chain is None:
            return
        self.chain = None
        release_stream(chain, self.direction)
        if self.stream_id >= 0:
            self._conn.streams.pop(self.stream_id, None)
