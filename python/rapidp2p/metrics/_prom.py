"""The Prometheus side of :class:`rapidp2p.metrics.Metrics` (needs ``prometheus_client``).

Two kinds of metric live here:

- events counted when they happen, at most once per connection, stream, dial or query
  (``prometheus_client`` counters and histograms): connections opened/closed, handshake and
  dial latency, streams opened, dial errors, kad queries;
- state read when Prometheus scrapes (one collector): open connections and streams, byte
  totals (plain ints the data path adds to, see ``_counters``), gossipsub meshes, topic
  counters and peer scores, the kad routing table, resource-manager usage. Nothing of this
  costs anything between scrapes.
"""

from __future__ import annotations

import errno
import logging
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from rapidp2p.metrics._counters import ByteCounter

__all__ = ["Metrics"]

log = logging.getLogger("rapidp2p.metrics")

#: Latency buckets (seconds) for handshakes and dials: 1 ms to the 15 s timeouts.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)
#: Connection lifetimes: 1/16 s doubling up to about 12 days (go-libp2p's shape, shorter).
DURATION_BUCKETS = tuple(2.0**i / 16 for i in range(25))
#: Kad query durations (rust-libp2p: exponential from 0.1 s, factor 2, 10 buckets).
KAD_DURATION_BUCKETS = tuple(0.1 * 2.0**i for i in range(10))
#: Kad request counts per query (rust-libp2p: exponential from 1, factor 2).
KAD_COUNT_BUCKETS = tuple(2.0**i for i in range(10))
KAD_HOP_BUCKETS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 16.0)
#: Peer score buckets (rust-libp2p's gossipsub defaults, from its default thresholds).
SCORE_BUCKETS = (-16000.0, -8000.0, -4000.0, -2000.0, -1000.0, 0.0, 1.0, 10.0, 100.0)
#: Label values beyond this many protocols (or topics) are folded into ``"other"``.
MAX_LABEL_VALUES = 256


def transport_stack(mux: Any) -> str:
    """rust-libp2p's ``protocols`` label: the multiaddr's protocol names, e.g. ``/ip4/tcp``."""
    addr = getattr(mux, "remote_addr", None)
    if addr is not None:
        from rapidp2p.transport.base import parse_components

        names = [name for name, _ in parse_components(addr) if name != "p2p"]
        if names:
            return "/" + "/".join(names)
    tr = getattr(mux, "transport", None)
    peername = tr.get_extra_info("peername") if tr is not None else None
    if isinstance(peername, tuple) and peername and peername[0] == "memory":
        return "/memory"
    return "unknown"


def transport_name(stack: str) -> str:
    """go-libp2p's ``transport`` label: the last transport protocol of the stack (``tcp``)."""
    for name in ("quic-v1", "quic", "webtransport", "ws", "wss", "webrtc", "tcp", "memory"):
        if f"/{name}" in stack:
            return name
    return "unknown"


def dial_error_kind(exc: BaseException) -> str:
    """A small, fixed set of error labels (go-libp2p: canceled, deadline, refused, other)."""
    from rapidp2p.exceptions import PeerIdMismatch, ResourceLimitError

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, TimeoutError) or "timed out" in str(e):
            return "timeout"
        if isinstance(e, ResourceLimitError):
            return "resource limit"
        if isinstance(e, PeerIdMismatch):
            return "peer id mismatch"
        e = e.__cause__ or e.__context__
    text = str(exc)
    if "refused" in text or f"[Errno {errno.ECONNREFUSED}]" in text:
        return "connection refused"  # TransportError keeps only the OSError's text
    return "other"


class Metrics:
    """Prometheus metrics of one or more hosts, in ``registry`` (default: a new
    ``CollectorRegistry``, never the global one). Give it to ``Host.create(metrics=...)``;
    serve it with :func:`rapidp2p.metrics.serve_metrics` or read :meth:`exposition`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        conn_labels = ("dir", "transport", "security", "muxer")
        self.conns_opened = Counter(
            "libp2p_swarm_connections_opened", "Connections opened", conn_labels, registry=reg
        )
        self.conns_closed = Counter(
            "libp2p_swarm_connections_closed", "Connections closed", conn_labels, registry=reg
        )
        self.conn_duration = Histogram(
            "libp2p_swarm_connection_duration_seconds",
            "Lifetime of a connection",
            ("dir", "transport"),
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.handshake_latency = Histogram(
            "libp2p_swarm_handshake_latency_seconds",
            "Duration of the libp2p handshake (security and muxer negotiation)",
            ("dir", "transport", "security", "muxer"),
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.dial_latency = Histogram(
            "libp2p_swarm_dial_latency_seconds",
            "Time from starting a dial to an upgraded connection",
            ("transport",),
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.dial_errors = Counter(
            "libp2p_swarm_dial_errors", "Failed dials", ("transport", "error"), registry=reg
        )
        self.streams_opened = Counter(
            "libp2p_swarm_streams_opened",
            "Streams opened (after protocol negotiation)",
            ("dir", "transport", "protocol"),
            registry=reg,
        )
        qlabels = ("type",)
        self.kad_duration = Histogram(
            "libp2p_kad_query_result_duration_seconds",
            "Duration of a Kademlia query",
            qlabels,
            buckets=KAD_DURATION_BUCKETS,
            registry=reg,
        )
        self.kad_requests = Histogram(
            "libp2p_kad_query_result_num_requests",
            "Requests sent by a Kademlia query",
            qlabels,
            buckets=KAD_COUNT_BUCKETS,
            registry=reg,
        )
        self.kad_success = Histogram(
            "libp2p_kad_query_result_num_success",
            "Successful requests of a Kademlia query",
            qlabels,
            buckets=KAD_COUNT_BUCKETS,
            registry=reg,
        )
        self.kad_failure = Histogram(
            "libp2p_kad_query_result_num_failure",
            "Failed requests of a Kademlia query",
            qlabels,
            buckets=KAD_COUNT_BUCKETS,
            registry=reg,
        )
        self.kad_hops = Histogram(
            "libp2p_kad_query_result_hops",
            "Hops to the closest peer a Kademlia query found",
            qlabels,
            buckets=KAD_HOP_BUCKETS,
            registry=reg,
        )
        self.kad_inbound = Counter(
            "libp2p_kad_inbound_requests", "Inbound Kademlia requests", ("request",), registry=reg
        )
        self._hosts: weakref.WeakSet[Any] = weakref.WeakSet()
        self._services: weakref.WeakSet[Any] = weakref.WeakSet()
        self._transport_bytes: dict[str, ByteCounter] = {}
        self._protocol_bytes: dict[str, ByteCounter] = {}
        reg.register(_ScrapeCollector(self))

    # ---- byte accumulators -------------------------------------------------------------

    def transport_bytes(self, stack: str) -> ByteCounter:
        """The accumulator of one transport stack (``/ip4/tcp``)."""
        bc = self._transport_bytes.get(stack)
        if bc is None:
            if len(self._transport_bytes) >= MAX_LABEL_VALUES:
                return self.transport_bytes("other")
            bc = self._transport_bytes[stack] = ByteCounter()
        return bc

    def protocol_bytes(self, protocol: str) -> ByteCounter:
        """The accumulator of one stream protocol."""
        bc = self._protocol_bytes.get(protocol)
        if bc is None:
            if len(self._protocol_bytes) >= MAX_LABEL_VALUES:
                return self.protocol_bytes("other")
            bc = self._protocol_bytes[protocol] = ByteCounter()
        return bc

    # ---- host hooks --------------------------------------------------------------------

    def attach(self, host: Any) -> None:
        """Scrapes read ``host``'s connections, streams, services and resource manager."""
        self._hosts.add(host)

    def watch_service(self, service: Any) -> None:
        """Scrapes also read ``service`` (a DHT that is not one of a host's services)."""
        self._services.add(service)

    def socket_opened(self, mux: Any) -> None:
        """A raw connection exists (before its upgrade): count its bytes from now on."""
        mux.byte_counter = self.transport_bytes(transport_stack(mux))

    def connection_opened(self, mux: Any, now: float) -> None:
        """The connection finished its upgrade and joined the host."""
        stack = transport_stack(mux)
        transport = transport_name(stack)
        if getattr(mux, "byte_counter", None) is None:
            mux.byte_counter = self.transport_bytes(stack)
        labels = (mux.direction, transport, mux.security or "", mux.muxer or "")
        self.conns_opened.labels(*labels).inc()
        connected_at = getattr(mux, "connected_at", None) or mux.opened_at
        self.handshake_latency.labels(*labels).observe(max(0.0, now - connected_at))
        if mux.direction == "outbound":
            self.dial_latency.labels(transport).observe(max(0.0, now - mux.opened_at))
        mux.on_close.append(lambda m: self._connection_closed(m, labels))

    def _connection_closed(self, mux: Any, labels: tuple[str, str, str, str]) -> None:
        self.conns_closed.labels(*labels).inc()
        self.conn_duration.labels(labels[0], labels[1]).observe(
            max(0.0, mux.loop.time() - mux.opened_at)
        )

    def stream_opened(self, stream: Any) -> None:
        """A stream's protocol was negotiated: count it, and its bytes from now on."""
        proto = stream.protocol or "unknown"
        bc = self.protocol_bytes(proto)
        stream._bytes = bc
        mux = stream.conn
        direction = "outbound" if stream.initiator else "inbound"
        self.streams_opened.labels(
            direction, transport_name(transport_stack(mux)), _bounded(proto, self._protocol_bytes)
        ).inc()

    def dial_failed(self, addr: Any, exc: BaseException) -> None:
        from rapidp2p.transport.base import parse_components

        stack = "/" + "/".join(n for n, _ in parse_components(addr) if n != "p2p")
        self.dial_errors.labels(transport_name(stack), dial_error_kind(exc)).inc()

    def kad_query(self, kind: str, seconds: float, requests: int, failures: int, hops: int) -> None:
        self.kad_duration.labels(kind).observe(seconds)
        self.kad_requests.labels(kind).observe(requests)
        self.kad_success.labels(kind).observe(max(0, requests - failures))
        self.kad_failure.labels(kind).observe(failures)
        if hops:
            self.kad_hops.labels(kind).observe(hops)

    def kad_inbound_request(self, kind: str) -> None:
        self.kad_inbound.labels(kind).inc()

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format (what ``/metrics`` serves)."""
        return bytes(generate_latest(self.registry))


def _bounded(value: str, known: Mapping[str, Any]) -> str:
    return value if value in known else "other"


class _ScrapeCollector:
    """Reads state at scrape time; see the module docstring."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        m = self._m
        bw = CounterMetricFamily(
            "libp2p_bandwidth_bytes",
            "Bytes on the wire by transport stack and direction",
            labels=("protocols", "direction"),
        )
        for stack, bc in sorted(m._transport_bytes.items()):
            bw.add_metric((stack, "inbound"), bc.inbound)
            bw.add_metric((stack, "outbound"), bc.outbound)
        yield bw
        pb = CounterMetricFamily(
            "libp2p_protocol_bytes",
            "Stream payload bytes by protocol and direction",
            labels=("protocol", "direction"),
        )
        for proto, bc in sorted(m._protocol_bytes.items()):
            pb.add_metric((proto, "inbound"), bc.inbound)
            pb.add_metric((proto, "outbound"), bc.outbound)
        yield pb
        hosts = list(m._hosts)
        services = list(_services(hosts, m._services))
        yield from _swarm_state(hosts)
        yield from _kad_state(services)
        yield from _gossipsub_state(services)
        yield from _rcmgr_state(hosts)


def _swarm_state(hosts: list[Any]) -> Iterator[Metric]:
    conns: dict[tuple[str, str], int] = {}
    streams: dict[tuple[str, str, str], int] = {}
    for host in hosts:
        for mux in host.connections():
            if mux.is_closed:
                continue
            transport = transport_name(transport_stack(mux))
            key = (mux.direction, transport)
            conns[key] = conns.get(key, 0) + 1
            for st in list(mux._streams.values()):
                skey = (
                    "outbound" if st.initiator else "inbound",
                    transport,
                    st.protocol or "unknown",
                )
                streams[skey] = streams.get(skey, 0) + 1
    g = GaugeMetricFamily(
        "libp2p_swarm_connections_open", "Open connections", labels=("dir", "transport")
    )
    for ckey, n in sorted(conns.items()):
        g.add_metric(ckey, n)
    yield g
    s = GaugeMetricFamily(
        "libp2p_swarm_streams_open", "Open streams", labels=("dir", "transport", "protocol")
    )
    for skey, n in sorted(streams.items())[:MAX_LABEL_VALUES]:
        s.add_metric(skey, n)
    yield s


def _services(hosts: Iterable[Any], extra: Iterable[Any]) -> Iterator[Any]:
    seen: set[int] = set()
    for svc in [s for h in hosts for s in h.services] + list(extra):
        if id(svc) not in seen:
            seen.add(id(svc))
            yield svc


def _kad_state(services: list[Any]) -> Iterator[Metric]:
    g = GaugeMetricFamily("libp2p_kad_routing_table_peers", "Peers in the Kademlia routing table")
    total = 0
    found = False
    from rapidp2p.kad.dht import KadDHT

    for svc in services:
        if isinstance(svc, KadDHT):
            total += len(svc.routing)
            found = True
    if found:
        g.add_metric((), total)
    yield g


def _gossipsub_state(services: list[Any]) -> Iterator[Metric]:
    mesh = GaugeMetricFamily(
        "libp2p_gossipsub_mesh_peer_counts", "Peers in our mesh, per topic", labels=("topic",)
    )
    peers = GaugeMetricFamily(
        "libp2p_gossipsub_topic_peers_counts", "Peers subscribed, per topic", labels=("topic",)
    )
    names = {
        "unfiltered": ("topic_msg_recv_counts_unfiltered", "Messages received (duplicates too)"),
        "received": ("topic_msg_recv_counts", "Messages received, duplicates filtered"),
        "duplicate": ("duplicate_messages_per_topic", "Duplicate messages received"),
        "accepted": ("accepted_messages_per_topic", "Messages validated and delivered"),
        "rejected": ("rejected_messages_per_topic", "Messages rejected (invalid)"),
        "published": ("topic_msg_published", "Messages we published"),
    }
    counters = {
        k: CounterMetricFamily(f"libp2p_gossipsub_{n}", h, labels=("topic",))
        for k, (n, h) in names.items()
    }
    score = HistogramMetricFamily(
        "libp2p_gossipsub_score_per_mesh", "Scores of our mesh peers, per topic", labels=("topic",)
    )
    from rapidp2p.pubsub.service import PubSub

    for svc in services:
        if not isinstance(svc, PubSub):
            continue
        router = svc.router
        now = svc.loop.time()
        for topic, members in sorted(router.mesh.items())[:MAX_LABEL_VALUES]:
            mesh.add_metric((topic,), len(members))
            scores = [router.peer_score(p, now) for p in list(members)]
            buckets = [(str(b), float(sum(1 for s in scores if s <= b))) for b in SCORE_BUCKETS]
            buckets.append(("+Inf", float(len(scores))))
            score.add_metric((topic,), buckets, sum(scores))
        for topic, subs in sorted(router.topics.items())[:MAX_LABEL_VALUES]:
            peers.add_metric((topic,), len(subs))
        for topic, tc in sorted(router.topic_counts.items()):
            for k, fam in counters.items():
                fam.add_metric((topic,), getattr(tc, k))
    yield mesh
    yield peers
    yield from counters.values()
    yield score


def _rcmgr_state(hosts: list[Any]) -> Iterator[Metric]:
    """go-libp2p's ``libp2p_rcmgr_*`` families from each host's ``resource_manager``.

    Read at scrape time: ``stat()`` maps scope names (``system``, ``transient``,
    ``allowlisted_system``, ``protocol:<id>``, ``service:<name>``, and ``peers``, the sum of
    the live peer scopes) to usage (``conns_inbound``, ``conns_outbound``, ``streams_inbound``,
    ``streams_outbound``, ``memory``, ``fd``); ``blocked`` maps ``"<scope kind>/<limit>"`` to
    the refusals so far. A host without a resource manager falls back to its ``limiter``'s
    ``stat()`` (flat ``connections`` / ``pending`` counts and ``blocked``).
    """
    conns = GaugeMetricFamily(
        "libp2p_rcmgr_connections", "Connections per scope", labels=("dir", "scope")
    )
    streams = GaugeMetricFamily(
        "libp2p_rcmgr_streams", "Streams per scope", labels=("dir", "scope", "protocol")
    )
    memory = GaugeMetricFamily(
        "libp2p_rcmgr_memory", "Memory reserved per scope", labels=("scope", "protocol")
    )
    fds = GaugeMetricFamily("libp2p_rcmgr_fds", "File descriptors per scope", labels=("scope",))
    blocked = GaugeMetricFamily(
        "libp2p_rcmgr_blocked_resources",
        "Refused reservations so far",
        labels=("dir", "scope", "resource"),
    )
    totals: dict[str, dict[tuple[str, ...], float]] = {
        "conns": {},
        "streams": {},
        "memory": {},
        "fds": {},
        "blocked": {},
    }

    def add(kind: str, key: tuple[str, ...], value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            d = totals[kind]
            d[key] = d.get(key, 0.0) + float(value)

    for host in hosts:
        snap, refused = _resource_snapshot(host)
        if snap is None:
            continue
        add("conns", ("", "system"), snap.get("connections"))
        add("conns", ("", "transient"), snap.get("pending"))
        scopes = snap.get("scopes", snap)
        if isinstance(scopes, Mapping):
            for name, sc in scopes.items():
                if not isinstance(sc, Mapping):
                    continue
                scope, _, proto = str(name).partition(":")
                if scope in ("peer", "conn", "stream"):
                    continue  # one scope per peer/connection: unbounded label values
                if scope == "service":
                    scope, proto = f"service:{proto}", ""
                if scope == "peers":  # the live peer scopes, summed
                    add("conns", ("", scope), sc.get("conns"))
                    add("streams", ("", scope, ""), sc.get("streams"))
                add("conns", ("inbound", scope), sc.get("conns_inbound"))
                add("conns", ("outbound", scope), sc.get("conns_outbound"))
                add("streams", ("inbound", scope, proto), sc.get("streams_inbound"))
                add("streams", ("outbound", scope, proto), sc.get("streams_outbound"))
                add("memory", (scope, proto), sc.get("memory"))
                add("fds", (scope,), sc.get("fd", sc.get("fds")))
        for key, n in refused.items():
            parts = str(key).split("/")
            if len(parts) == 2:
                parts = ["", *parts]
            if len(parts) == 3:
                add("blocked", (parts[0], parts[1].split(":", 1)[0], parts[2]), n)
    for fam, kind in ((conns, "conns"), (streams, "streams"), (memory, "memory"), (fds, "fds")):
        for labels, v in sorted(totals[kind].items())[:MAX_LABEL_VALUES]:
            fam.add_metric(labels, v)
    for labels, v in sorted(totals["blocked"].items())[:MAX_LABEL_VALUES]:
        blocked.add_metric(labels, v)
    yield conns
    yield streams
    yield memory
    yield fds
    yield blocked


def _resource_snapshot(host: Any) -> tuple[Mapping[str, Any] | None, Mapping[str, Any]]:
    """(usage snapshot, refusals) of the host's resource manager, else of its limiter."""
    for name in ("resource_manager", "limiter"):
        obj = getattr(host, name, None)
        stat = getattr(obj, "stat", None)
        if not callable(stat):
            continue
        try:
            snap = stat()
        except Exception:  # a broken snapshot must not break the scrape
            log.exception("resource snapshot of %r failed", obj)
            return None, {}
        if not isinstance(snap, Mapping):
            return None, {}
        refused = getattr(obj, "blocked", None)
        if not isinstance(refused, Mapping):
            refused = snap.get("blocked")
        return snap, refused if isinstance(refused, Mapping) else {}
    return None, {}
