"""Type stub for ``rapidp2p._core.quic``: a QUIC v1 endpoint (quinn-proto with the libp2p TLS
verifier) over one UDP socket, driven by readiness: one call per readable event, per flush and
per timer, each returning every event at once.

Events are ``(kind, conn, stream, value)`` tuples; ``value`` per kind:

- ``EV_CONNECTED``: ``(peer_id_bytes, public_key_protobuf, remote_host, remote_port, inbound)``
- ``EV_CLOSED``: the exception saying why (a ``rapidp2p.exceptions`` instance)
- ``EV_SESSION`` (a WebTransport connection, instead of ``EV_CONNECTED``): a listener
  accepted the extended CONNECT, or a dial sent it:
  ``(remote_host, remote_port, inbound, certhash)`` (``certhash``: a dial's, the sha2-256
  multihash of the certificate the server presented; None inbound); nobody's identity is
  proven yet (Noise on the first stream does that)
- ``EV_DATA``: the stream's bytes; ``EV_PING_RTT``: seconds; the others: None
"""

from typing import final

from rapidp2p._core.conn import TlsIdentity

__all__ = [
    "EV_CLOSED",
    "EV_CONNECTED",
    "EV_DATA",
    "EV_FIN",
    "EV_FINISHED",
    "EV_PING_RTT",
    "EV_RESET",
    "EV_SESSION",
    "EV_STREAMS_AVAILABLE",
    "EV_STREAM_OPENED",
    "EV_WRITABLE",
    "Endpoint",
    "new_webtransport_certificate",
    "webtransport_certhash",
]

EV_CONNECTED: int
EV_CLOSED: int
EV_STREAM_OPENED: int
EV_DATA: int
EV_FIN: int
EV_RESET: int
EV_WRITABLE: int
EV_STREAMS_AVAILABLE: int
EV_PING_RTT: int
#: Everything written on the stream, FIN included, was acknowledged.
EV_FINISHED: int
#: A WebTransport session was accepted (see the module docstring).
EV_SESSION: int

def new_webtransport_certificate(not_before: int, validity: int) -> tuple[bytes, bytes]:
    """A self-signed ECDSA P-256 certificate valid from ``not_before`` (Unix seconds) for
    ``validity`` seconds (at most 14 days): ``(der, pkcs8_key_der)``."""

def webtransport_certhash(der: bytes) -> bytes:
    """The sha2-256 multihash of a DER certificate."""

_Event = tuple[int, int, int, object]

@final
class Endpoint:
    """One UDP socket's QUIC endpoint (dials; accepts too when ``listen``)."""

    def __new__(
        cls,
        identity: TlsIdentity,
        listen: bool,
        now: float,
        fd: int | None = None,
        *,
        handshake_timeout: float = 10.0,
        idle_timeout: float = 30.0,
        keep_alive: float | None = 10.0,
        max_streams: int = 256,
        stream_window: int = ...,
        connection_window: int = ...,
        initial_connection_window: int = ...,
        max_handshakes: int = 256,
        retry_above: int = 64,
        icmp_errors: bool = True,
        webtransport: tuple[bytes, bytes] | None = None,
    ) -> Endpoint: ...
    def read_socket(self, now: float) -> tuple[list[_Event], bool]: ...
    def flush(self, now: float) -> tuple[list[_Event], bool]: ...
    def handle_timer(self, now: float) -> list[_Event]: ...
    def next_timer(self) -> float | None: ...
    def receive_datagram(self, data: bytes, host: str, port: int, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, str, int]]: ...
    def connect(self, host: str, port: int, expected_peer: bytes | None, now: float) -> int: ...
    def connect_webtransport(
        self, host: str, port: int, digests: list[bytes], now: float
    ) -> int: ...
    def open_stream(self, conn: int) -> int | None: ...
    def send(
        self, conn: int, stream: int, data: bytes, start: int = 0, end: int | None = None
    ) -> int: ...
    def send_window(self, conn: int, stream: int, cap: int = ...) -> int: ...
    def finish(self, conn: int, stream: int) -> bool: ...
    def reset(self, conn: int, stream: int) -> None: ...
    def ack(self, conn: int, stream: int, n: int) -> None: ...
    def ping(self, conn: int, now: float) -> None: ...
    def rtt(self, conn: int) -> float | None: ...
    def close(self, conn: int, now: float, code: int = 0, reason: str = "") -> None: ...
    def set_max_streams(self, conn: int, n: int) -> None: ...
    def set_receive_window(self, conn: int, bytes: int) -> None: ...
    def receive_window(self, conn: int) -> int: ...
    def window_capped(self, conn: int) -> bool: ...
    def stop_listening(self) -> None: ...
    def set_webtransport_certificate(self, der: bytes, key: bytes) -> None: ...
    @property
    def connection_count(self) -> int: ...
    @property
    def stats(self) -> tuple[int, int, int, int, int]: ...
