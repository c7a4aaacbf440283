"""Type stub for ``rapidp2p._core.webrtc``: a WebRTC-direct listener (str0m: ICE-lite, DTLS,
SCTP data channels; Noise XX on data channel 0; the libp2p stream framing) over one UDP socket,
driven by readiness: one call per readable event, per flush and per timer. The same endpoint
carries ``/webrtc`` connections set up by an SDP offer and answer (``offer``,
``accept_offer``, ``accept_answer``, ``add_remote_candidate``): full ICE, no Noise (their
EV_CONNECTED has an empty payload and static key).

Events are ``(kind, conn, stream, value)`` tuples; ``value`` per kind:

- ``EV_CONNECTED``: ``(noise_payload, remote_static_key, remote_host, remote_port)`` (the
  remote's NoiseHandshakePayload, to verify against the static key)
- ``EV_CLOSED``: the exception saying why (a ``rapidp2p.exceptions`` instance)
- ``EV_DATA``: the stream's bytes; the others: None
"""

from typing import final

__all__ = [
    "EV_CLOSED",
    "EV_CONNECTED",
    "EV_DATA",
    "EV_FIN",
    "EV_FINISHED",
    "EV_RESET",
    "EV_STREAM_OPENED",
    "EV_WRITABLE",
    "Endpoint",
    "certificate_certhash",
    "fingerprint_of_certhash",
    "new_certificate",
]

EV_CONNECTED: int
EV_CLOSED: int
EV_STREAM_OPENED: int
EV_DATA: int
EV_FIN: int
EV_RESET: int
EV_WRITABLE: int
EV_FINISHED: int

_Event = tuple[int, int, int, object]

def new_certificate() -> tuple[bytes, bytes]:
    """A fresh self-signed DTLS certificate: ``(der, private_key_der)``."""

def certificate_certhash(der: bytes) -> str:
    """The ``/certhash`` value (multibase base64url sha2-256 multihash) of a certificate."""

def fingerprint_of_certhash(text: str) -> bytes | None:
    """The SHA-256 fingerprint a ``/certhash`` value names (None: not a sha2-256 multihash)."""

@final
class Endpoint:
    def __new__(
        cls,
        host: str,
        port: int,
        certificate: bytes,
        private_key: bytes,
        noise_secret: bytes,
        noise_payload: bytes,
        now: float,
        fd: int | None = None,
        *,
        handshake_timeout: float = 10.0,
        max_handshakes: int = 64,
        max_connections: int = 1024,
        max_streams: int = 512,
        send_buffer: int = ...,  # 1 MiB
        fin_ack: bool = True,
    ) -> Endpoint: ...
    @property
    def certhash(self) -> str: ...
    @property
    def connection_count(self) -> int: ...
    @property
    def stats(self) -> tuple[int, int, int, int]: ...
    def read_socket(self, now: float) -> tuple[list[_Event], bool]: ...
    def receive_datagram(self, data: bytes, host: str, port: int, now: float) -> list[_Event]: ...
    def datagrams_to_send(self) -> list[tuple[bytes, str, int]]: ...
    def flush(self) -> tuple[list[_Event], bool]: ...
    def handle_timer(self, now: float) -> list[_Event]: ...
    def next_timer(self) -> float | None: ...
    def stop_listening(self) -> None: ...
    def open_stream(self, conn: int) -> int: ...
    def send(self, conn: int, stream: int, data: bytes, start: int, end: int) -> int: ...
    def send_window(self, conn: int, stream: int) -> int: ...
    def finish(self, conn: int, stream: int) -> bool: ...
    def reset(self, conn: int, stream: int) -> None: ...
    def close(self, conn: int) -> None: ...
    def dial(self, host: str, port: int, fingerprint: bytes, ufrag: str, now: float) -> int: ...
    def offer(self, ufrag: str, pwd: str, now: float) -> tuple[int, str]: ...
    def accept_offer(self, sdp: str, ufrag: str, pwd: str, now: float) -> tuple[int, str]: ...
    def accept_answer(self, conn: int, sdp: str) -> None: ...
    def add_remote_candidate(self, conn: int, candidate: str) -> bool: ...
