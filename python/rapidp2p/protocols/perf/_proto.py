"""Perf (``/perf/1.0.0``, libp2p/specs ``perf/perf.md``), sans-IO: header, identity, reports.

The client sends the number of bytes it wants back as one big-endian u64, uploads any amount,
half-closes, then reads until EOF. The server reads the u64, drains the upload until EOF, and
only then sends the requested bytes and closes. Nothing here touches a socket or a clock:
times come in as ``now`` (seconds from a monotonic clock).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rapidp2p.exceptions import RemoteProtocolError

if TYPE_CHECKING:
    from rapidp2p.crypto import PrivateKey

__all__ = [
    "BLOCK_SIZE",
    "HEADER_SIZE",
    "MAX_U64",
    "PROTOCOL_ID",
    "SERVER_PEER_ID",
    "Progress",
    "Report",
    "decode_header",
    "encode_header",
    "parse_server_address",
    "server_key",
]

PROTOCOL_ID = "/perf/1.0.0"
HEADER_SIZE = 8
MAX_U64 = (1 << 64) - 1
#: Bytes written per ``write`` call: large enough that Python's per-call cost is noise, small
#: enough that the muxer's window slices stay whole (the runner's "64 KiB chunks" are a
#: minimum granularity, not a wire format: yamux frames are cut by the muxer anyway).
BLOCK_SIZE = 256 * 1024
#: The test-plans servers' stable identity: Ed25519 from a 32-byte all-zero seed, so a client
#: needs only HOST:PORT.
SERVER_SEED = bytes(32)
SERVER_PEER_ID = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"


def encode_header(download_bytes: int) -> bytes:
    """The client's request: how many bytes the server sends back (u64, big-endian)."""
    if not 0 <= download_bytes <= MAX_U64:
        raise ValueError(f"download size {download_bytes} is not a u64")
    return download_bytes.to_bytes(HEADER_SIZE, "big")


def decode_header(header: bytes) -> int:
    """The server's view of the request; any u64 is valid (zero and max included)."""
    if len(header) != HEADER_SIZE:
        raise RemoteProtocolError(f"perf header is {len(header)} bytes, expected {HEADER_SIZE}")
    return int.from_bytes(header, "big")


def server_key() -> PrivateKey:
    """The fixed server identity every perf implementation shares (see SERVER_PEER_ID)."""
    from rapidp2p.crypto import Ed25519PrivateKey

    return Ed25519PrivateKey.from_seed(SERVER_SEED)


def parse_server_address(address: str, transport: str = "tcp") -> str:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) to a TCP multiaddr, without ``/p2p``.

    ``localhost`` means 127.0.0.1; other names are refused (no resolver on the hot path).
    """
    if transport != "tcp":
        raise ValueError(f"transport {transport!r} is not supported (only 'tcp')")
    host, sep, port_text = address.rpartition(":")
    if not sep or not host:
        raise ValueError(f"server address {address!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        host = "127.0.0.1"
    try:
        port = int(port_text)
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"server address {address!r} is not IP:PORT") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    proto = "ip4" if ip.version == 4 else "ip6"
    return f"/{proto}/{ip}/tcp/{port}"


@dataclass(frozen=True)
class Report:
    """One line of the runner's output schema."""

    type: str  # "intermediary" | "final"
    time_seconds: float
    upload_bytes: int
    download_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "timeSeconds": self.time_seconds,
            "uploadBytes": self.upload_bytes,
            "downloadBytes": self.download_bytes,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


class Progress:
    """Counts bytes moved and yields an ``intermediary`` report once per ``interval``.

    Each report covers the bytes since the previous one and the time it took (the runner's
    schema); ``final`` covers everything since ``start``, connection setup included.
    """

    __slots__ = ("_last", "_last_down", "_last_up", "download", "interval", "start", "upload")

    def __init__(self, start: float, interval: float = 1.0) -> None:
        self.start = start
        self.interval = interval
        self.upload = 0
        self.download = 0
        self._last = start
        self._last_up = 0
        self._last_down = 0

    def add(self, now: float, *, up: int = 0, down: int = 0) -> Report | None:
        """Counts bytes; returns a report when ``interval`` passed since the last one."""
        self.upload += up
        self.download += down
        if now - self._last < self.interval:
            return None
        report = Report(
            "intermediary",
            now - self._last,
            self.upload - self._last_up,
            self.download - self._last_down,
        )
        self._last = now
        self._last_up = self.upload
        self._last_down = self.download
        return report

    def final(self, now: float) -> Report:
        return Report("final", now - self.start, self.upload, self.download)
