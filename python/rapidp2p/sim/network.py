"""A simulated network under the unchanged :class:`~rapidp2p.host.Host`.

Each node gets a :class:`SimTransport` that listens on and dials ``/memory/<n>`` addresses of
one :class:`SimNetwork` (its own registry: no clash with :mod:`rapidp2p.transport.memory`).
A connection is a reliable, ordered byte pipe like TCP, with delays from the model:

- latency: the regions' one-way delay plus both nodes' last-mile delay, plus per-write jitter
  (uniform in ``[0, jitter * base]``); bytes never overtake each other;
- bandwidth: each node's uplink and downlink serialise what crosses them (``size / rate``);
- loss: each MSS-sized segment is lost with probability ``loss``; a lost segment costs a
  retransmission timeout (doubling when the retransmission is lost too) and, the stream
  being reliable, delays everything behind it (head-of-line blocking), as in TCP;
- dialing costs a round trip (SYN, SYN-ACK) before either side sees the connection;
- NAT: a node marked ``nat`` never receives an inbound connection (SYNs are dropped, the
  dialer times out); it can dial out;
- partitions and departures black-hole the affected connections (bytes vanish) and reset
  them after ``broken_timeout`` (TCP's user timeout); dials across them time out.

Everything random comes from one :class:`random.Random` seeded by the caller, and the
:attr:`SimNetwork.trace_digest` hashes every delivery (time, endpoints, size): the same seed
and the same code give the same digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rapidp2p._aio.connection import MuxedConnection
from rapidp2p.exceptions import TransportError
from rapidp2p.sim.geo import Placement, one_way_base, place
from rapidp2p.transport.base import ConnectionFactory, InboundHandler, parse_components

if TYPE_CHECKING:
    from rapidp2p.peer import Multiaddr

__all__ = ["NetConfig", "SimListener", "SimNetwork", "SimNode", "SimTransport"]

_HIGH_WATER = 1 << 20
_LOW_WATER = 1 << 18


@dataclass
class NetConfig:
    """Knobs of the simulated network (times in seconds)."""

    #: Share of nodes that cannot be dialled (behind NAT).
    nat_share: float = 0.0
    #: Probability that one MSS-sized segment is lost (then retransmitted).
    loss: float = 0.0
    #: Jitter as a fraction of a link's base one-way delay (uniform, per write).
    jitter: float = 0.1
    #: A dial whose SYN is dropped (NAT, partition, departed node) fails after this long.
    connect_timeout: float = 30.0
    #: A black-holed connection is reset after this long.
    broken_timeout: float = 30.0
    mss: int = 1400
    #: Minimum retransmission timeout (Linux: 200 ms).
    min_rto: float = 0.2


@dataclass(eq=False)
class SimNode:
    """One machine of the simulated network."""

    index: int
    placement: Placement
    nat: bool = False
    online: bool = True
    #: Partition group: nodes of different groups cannot exchange packets.
    group: int = 0
    up_busy: float = 0.0
    down_busy: float = 0.0
    listener: SimListener | None = None
    port: int = 0
    links: dict[_Link, None] = field(default_factory=dict)


class _End(asyncio.Transport):
    """One end of a simulated TCP connection (what the host's protocol writes to)."""

    def __init__(self, link: _Link, local: SimNode, remote: SimNode) -> None:
        super().__init__()
        self._link = link
        self.local = local
        self.remote = remote
        self.peer: _End | None = None
        self._protocol: asyncio.Protocol | None = None
        self._queue: deque[tuple[float, bytes | None]] = deque()  # in flight to the peer
        self._timer: asyncio.TimerHandle | None = None
        self._last_arrival = 0.0
        self._inflight = 0
        self._rx: list[bytes] = []  # arrived but our protocol paused reading
        self._rx_size = 0
        self._reading_paused = False
        self._writing_paused = False
        self._closing = False
        self._lost = False
        #: One-way propagation delay to the peer (fixed for the link's life).
        self._base = link.net.latency(local, remote)

    # -- asyncio.BaseTransport
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return ("memory", str(self.remote.port))
        if name == "sockname":
            return ("memory", str(self.local.port))
        return default

    def is_closing(self) -> bool:
        return self._closing

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._send(None)  # FIN after the queued bytes

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        self._queue.clear()
        self._inflight = 0
        self._link.lose(ConnectionResetError("connection reset by peer"), self)

    # -- reading side
    def is_reading(self) -> bool:
        return not self._reading_paused

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if not self._reading_paused:
            return
        self._reading_paused = False
        if self._rx:
            self._link.net.loop.call_soon(self._flush_rx)

    def _flush_rx(self) -> None:
        if self._lost or self._reading_paused or not self._rx:
            return
        data = b"".join(self._rx)
        self._rx.clear()
        self._rx_size = 0
        assert self._protocol is not None
        self._protocol.data_received(data)
        if self.peer is not None:
            self.peer._check_resume()

    # -- writing side
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        self._send(bytes(data))
        if not self._writing_paused and self.get_write_buffer_size() > _HIGH_WATER:
            self._writing_paused = True
            if self._protocol is not None:
                self._protocol.pause_writing()

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        peer_rx = self.peer._rx_size if self.peer is not None else 0
        return self._inflight + peer_rx

    def _check_resume(self) -> None:
        if self._writing_paused and self.get_write_buffer_size() <= _LOW_WATER:
            self._writing_paused = False
            if self._protocol is not None and not self._lost:
                self._protocol.resume_writing()

    def _send(self, data: bytes | None) -> None:
        if self._lost:
            return
        net = self._link.net
        when = net.arrival_time(self.local, self.remote, len(data) if data else 0, self._base)
        when = max(when, self._last_arrival)
        self._last_arrival = when
        self._queue.append((when, data))
        if data:
            self._inflight += len(data)
        if self._timer is None:
            self._timer = net.loop.call_at(when, self._arrive)

    def _arrive(self) -> None:
        """Delivers everything due, in order, to the peer; re-arms for the next."""
        self._timer = None
        loop = self._link.net.loop
        now = loop.time()
        peer = self.peer
        chunks: list[bytes] = []
        fin = False
        while self._queue and self._queue[0][0] <= now:
            _, data = self._queue.popleft()
            if data is None:
                fin = True
                break
            self._inflight -= len(data)
            chunks.append(data)
        if self._queue and not fin:
            self._timer = loop.call_at(self._queue[0][0], self._arrive)
        if self._link.blackholed or peer is None or peer._lost:
            return
        if chunks:
            size = sum(len(c) for c in chunks)
            self._link.net.record(now, self.local.index, self.remote.index, size)
            peer._rx.extend(chunks)
            peer._rx_size += size
            if not peer._reading_paused:
                peer._flush_rx()
        self._check_resume()
        if fin:
            self._queue.clear()
            self._link.lose(None, None)

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        proto = self._protocol
        if proto is not None:
            self._link.net.loop.call_soon(proto.connection_lost, exc)


class _Link:
    """One connection between two nodes (both ends), registered with the network."""

    def __init__(self, net: SimNetwork, a: SimNode, b: SimNode) -> None:
        self.net = net
        self.a_end = _End(self, a, b)
        self.b_end = _End(self, b, a)
        self.a_end.peer, self.b_end.peer = self.b_end, self.a_end
        self.blackholed = False
        self.closed = False
        a.links[self] = None
        b.links[self] = None

    def lose(self, exc: Exception | None, aborted_by: _End | None) -> None:
        """Ends both sides: at once for the aborting side, after the RST's trip for the other."""
        if self.closed:
            return
        if aborted_by is None:
            self._finish(exc)
            return
        aborted_by._lose(None)
        if self.blackholed:
            return  # the RST is lost too: the other side learns at the broken timeout
        other = aborted_by.peer
        assert other is not None
        delay = self.net.latency(aborted_by.local, aborted_by.remote)
        self.net.loop.call_at(self.net.loop.time() + delay, self._finish, exc)

    def blackhole(self) -> None:
        if self.blackholed or self.closed:
            return
        self.blackholed = True
        timeout = self.net.config.broken_timeout
        self.net.loop.call_at(
            self.net.loop.time() + timeout,
            self._finish,
            TimeoutError("simulated connection timed out (black-holed)"),
        )

    def _finish(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.a_end._lose(exc)
        self.b_end._lose(exc)
        self.a_end.local.links.pop(self, None)
        self.b_end.local.links.pop(self, None)


class SimListener:
    """A node's ``/memory/<n>`` endpoint in a :class:`SimNetwork`."""

    def __init__(
        self, node: SimNode, factory: ConnectionFactory, handler: InboundHandler, addr: Multiaddr
    ) -> None:
        self.node = node
        self.factory = factory
        self.handler = handler
        self._addr = addr

    @property
    def addrs(self) -> list[Multiaddr]:
        return [self._addr]

    async def close(self) -> None:
        if self.node.listener is self:
            self.node.listener = None


class SimTransport:
    """The transport of one simulated node (give it to ``Host(transports=[...])``)."""

    carries_psk = True

    def __init__(self, net: SimNetwork, node: SimNode) -> None:
        self.net = net
        self.node = node

    def can_dial(self, addr: Multiaddr) -> bool:
        comps = parse_components(addr)
        return bool(comps) and comps[0][0] == "memory"

    can_listen = can_dial

    async def listen(
        self, addr: Multiaddr, factory: ConnectionFactory, handler: InboundHandler
    ) -> SimListener:
        from rapidp2p.peer import Multiaddr

        if self.node.listener is not None:
            raise TransportError(f"node {self.node.index} already listens")
        lst = SimListener(self.node, factory, handler, Multiaddr(f"/memory/{self.node.port}"))
        self.node.listener = lst
        return lst

    async def dial(self, addr: Multiaddr, factory: ConnectionFactory) -> MuxedConnection:
        return await self.net.connect(self.node, int(parse_components(addr)[0][1]), factory)


class SimNetwork:
    """Nodes, links and the delay model; one per simulation, bound to the running loop."""

    def __init__(self, seed: int, config: NetConfig | None = None) -> None:
        self.config = config or NetConfig()
        self.rng = random.Random(seed)
        self.nodes: list[SimNode] = []
        self._by_port: dict[int, SimNode] = {}
        self._digest = hashlib.sha256()
        self._pending: list[str] = []
        self.deliveries = 0
        self.bytes_delivered = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # ---- topology --------------------------------------------------------------------

    def add_node(self, *, nat: bool | None = None, placement: Placement | None = None) -> SimNode:
        """A new machine: placed by the geographic model, behind NAT with ``nat_share``."""
        p = placement or place(self.rng)
        is_nat = self.rng.random() < self.config.nat_share if nat is None else nat
        node = SimNode(len(self.nodes), p, nat=is_nat)
        node.port = node.index + 1  # /memory/0 means "pick one" elsewhere
        self.nodes.append(node)
        self._by_port[node.port] = node
        return node

    def transport(self, node: SimNode) -> SimTransport:
        return SimTransport(self, node)

    def can_talk(self, a: SimNode, b: SimNode) -> bool:
        return a.online and b.online and a.group == b.group

    def partition(self, groups: list[list[SimNode]]) -> None:
        """Splits the network: nodes in different groups lose every packet between them.
        Nodes not named stay in group 0."""
        for n in self.nodes:
            n.group = 0
        for i, g in enumerate(groups):
            for n in g:
                n.group = i
        self._blackhole_cut_links()

    def heal(self) -> None:
        """Ends the partition (black-holed connections stay dead, as after a real cut)."""
        for n in self.nodes:
            n.group = 0

    def set_online(self, node: SimNode, online: bool) -> None:
        """A departure (crash: its connections go silent) or a (re)join."""
        node.online = online
        if not online:
            self._blackhole_cut_links()

    def _blackhole_cut_links(self) -> None:
        for n in self.nodes:
            for link in list(n.links):
                if not self.can_talk(link.a_end.local, link.b_end.local):
                    link.blackhole()

    # ---- delay model -----------------------------------------------------------------

    def latency(self, src: SimNode, dst: SimNode) -> float:
        """One-way propagation delay without jitter."""
        return (
            one_way_base(src.placement.region, dst.placement.region)
            + src.placement.access_delay
            + dst.placement.access_delay
        )

    def arrival_time(
        self, src: SimNode, dst: SimNode, size: int, base: float | None = None
    ) -> float:
        """When ``size`` bytes written now by ``src`` reach ``dst``'s socket (see module);
        ``base`` is :meth:`latency` when the caller has it already."""
        cfg = self.config
        now = self.loop.time()
        if base is None:
            base = self.latency(src, dst)
        start = max(now, src.up_busy)
        src.up_busy = start + size * 8 / src.placement.up_bps
        delay = base + (self.rng.uniform(0.0, cfg.jitter * base) if cfg.jitter > 0 else 0.0)
        if cfg.loss > 0 and size > 0:
            rto = max(cfg.min_rto, 3 * base)
            worst = 0
            for _ in range(max(1, math.ceil(size / cfg.mss))):
                k = 0
                while self.rng.random() < cfg.loss and k < 6:
                    k += 1
                worst = max(worst, k)
            delay += rto * ((1 << worst) - 1)
        arrive = src.up_busy + delay
        rx = max(arrive, dst.down_busy)
        dst.down_busy = rx + size * 8 / dst.placement.down_bps
        return dst.down_busy

    def record(self, t: float, src: int, dst: int, size: int) -> None:
        self.deliveries += 1
        self.bytes_delivered += size
        # Hashed in batches (the same bytes in the same order, so the same digest): one
        # hash update per delivery was a measurable share of a large run.
        pending = self._pending
        pending.append(f"{t:.9f} {src} {dst} {size}\n")
        if len(pending) >= 4096:
            self._flush_digest()

    def _flush_digest(self) -> None:
        if self._pending:
            self._digest.update("".join(self._pending).encode())
            self._pending.clear()

    @property
    def trace_digest(self) -> str:
        """SHA-256 over every delivery so far: equal for equal seeds."""
        self._flush_digest()
        return self._digest.hexdigest()

    # ---- connections -----------------------------------------------------------------

    async def connect(self, src: SimNode, port: int, factory: ConnectionFactory) -> MuxedConnection:
        """A TCP-like dial: SYN and SYN-ACK cross the links, then both protocols start."""
        dst = self._by_port.get(port)
        if not src.online:
            raise TransportError("simulated node is offline")
        if dst is None:
            raise TransportError(f"no simulated node at /memory/{port}")
        await asyncio.sleep(self.latency(src, dst))  # SYN
        if not self.can_talk(src, dst) or dst.nat:
            # The SYN is dropped: the dialer hears nothing until it gives up.
            await asyncio.sleep(self.config.connect_timeout)
            raise TransportError(f"dial to /memory/{port} timed out (simulated)")
        if dst.listener is None:
            await asyncio.sleep(self.latency(dst, src))  # RST
            raise TransportError(f"connection refused by /memory/{port} (simulated)")
        await asyncio.sleep(self.latency(dst, src))  # SYN-ACK
        lst = dst.listener
        if lst is None or not self.can_talk(src, dst):
            raise TransportError(f"dial to /memory/{port} failed during the handshake")
        link = _Link(self, src, dst)
        client = factory()
        server = lst.factory()
        link.a_end.set_protocol(client)
        link.b_end.set_protocol(server)
        client.connection_made(link.a_end)
        server.connection_made(link.b_end)
        lst.handler(server)
        return client
