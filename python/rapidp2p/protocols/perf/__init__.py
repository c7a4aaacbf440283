"""Perf (``/perf/1.0.0``): the libp2p throughput benchmark protocol, client and server."""

from rapidp2p.protocols.perf._proto import (
    BLOCK_SIZE,
    MAX_U64,
    PROTOCOL_ID,
    SERVER_PEER_ID,
    Progress,
    Report,
    decode_header,
    encode_header,
    parse_server_address,
    server_key,
)
from rapidp2p.protocols.perf.service import PerfService, handle_perf, perf_on_stream, run_perf

__all__ = [
    "BLOCK_SIZE",
    "MAX_U64",
    "PROTOCOL_ID",
    "SERVER_PEER_ID",
    "PerfService",
    "Progress",
    "Report",
    "decode_header",
    "encode_header",
    "handle_perf",
    "parse_server_address",
    "perf_on_stream",
    "run_perf",
    "server_key",
]
