"""Every metric family rapidp2p exports, by the name a scrape shows (counters with ``_total``).

Names follow go-libp2p (``libp2p_swarm_*``, ``libp2p_rcmgr_*``) and rust-libp2p
(``libp2p_bandwidth_bytes_total``, ``libp2p_kad_query_result_*``, gossipsub's
``mesh_peer_counts``, ``score_per_mesh``, ``*_per_topic``) where they define one; the rest use
the same ``libp2p_<subsystem>_`` shape. The Grafana dashboard's test checks its queries
against this list.
"""

from __future__ import annotations

__all__ = ["ALL", "COUNTERS", "GAUGES", "HISTOGRAMS"]

COUNTERS: tuple[str, ...] = (
    "libp2p_swarm_connections_opened_total",
    "libp2p_swarm_connections_closed_total",
    "libp2p_swarm_dial_errors_total",
    "libp2p_swarm_streams_opened_total",
    "libp2p_bandwidth_bytes_total",
    "libp2p_protocol_bytes_total",
    "libp2p_kad_inbound_requests_total",
    "libp2p_gossipsub_topic_msg_recv_counts_unfiltered_total",
    "libp2p_gossipsub_topic_msg_recv_counts_total",
    "libp2p_gossipsub_duplicate_messages_per_topic_total",
    "libp2p_gossipsub_accepted_messages_per_topic_total",
    "libp2p_gossipsub_rejected_messages_per_topic_total",
    "libp2p_gossipsub_topic_msg_published_total",
)

GAUGES: tuple[str, ...] = (
    "libp2p_swarm_connections_open",
    "libp2p_swarm_streams_open",
    "libp2p_kad_routing_table_peers",
    "libp2p_gossipsub_mesh_peer_counts",
    "libp2p_gossipsub_topic_peers_counts",
    "libp2p_rcmgr_connections",
    "libp2p_rcmgr_streams",
    "libp2p_rcmgr_memory",
    "libp2p_rcmgr_fds",
    "libp2p_rcmgr_blocked_resources",
)

#: Histogram families: a scrape shows ``<name>_bucket``, ``<name>_sum`` and ``<name>_count``.
HISTOGRAMS: tuple[str, ...] = (
    "libp2p_swarm_connection_duration_seconds",
    "libp2p_swarm_handshake_latency_seconds",
    "libp2p_swarm_dial_latency_seconds",
    "libp2p_kad_query_result_duration_seconds",
    "libp2p_kad_query_result_num_requests",
    "libp2p_kad_query_result_num_success",
    "libp2p_kad_query_result_num_failure",
    "libp2p_kad_query_result_hops",
    "libp2p_gossipsub_score_per_mesh",
)


def _samples() -> tuple[str, ...]:
    out = list(COUNTERS) + list(GAUGES)
    for h in HISTOGRAMS:
        out += [f"{h}_bucket", f"{h}_sum", f"{h}_count"]
    return tuple(out)


#: Every sample name a scrape can contain.
ALL: tuple[str, ...] = _samples()
