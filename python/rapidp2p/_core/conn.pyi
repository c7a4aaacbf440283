"""``rapidp2p._core.conn``: Noise, TLS, the private-network protector and the connection
(Noise or TLS transport + yamux), sans-IO.

Keep in step with ``rust/py/src/{noise,tls,conn,pnet,yamux}.rs``.
"""

__all__ = [
    "EV_DATA",
    "EV_FIN",
    "EV_GO_AWAY",
    "EV_MUXER",
    "EV_PING_RTT",
    "EV_RESET",
    "EV_SECURED",
    "EV_SECURITY",
    "EV_STREAM_ACKED",
    "EV_STREAM_OPENED",
    "EV_VERIFY",
    "EV_WINDOW",
    "MPLEX_DEFAULTS",
    "MPLEX_PROTOCOL_ID",
    "NOISE_MAX_FRAME_PLAINTEXT",
    "NOISE_PROTOCOL_NAME",
    "PNET_NONCE_LEN",
    "TLS_SIGNING_PREFIX",
    "YAMUX_DEFAULTS",
    "Connection",
    "NoiseHandshake",
    "NoiseTransport",
    "Protector",
    "TlsCertKey",
    "TlsHandshake",
    "TlsIdentity",
    "_noise_gil_release_min",
    "format_swarm_key",
    "parse_swarm_key",
    "tune_allocator",
]

from typing import Any, TypedDict, final

# noise

NOISE_PROTOCOL_NAME: str
NOISE_MAX_FRAME_PLAINTEXT: int

@final
class NoiseHandshake:
    """One side of a libp2p Noise XX handshake (Noise_XX_25519_ChaChaPoly_SHA256).

    Message bodies exclude the 2-byte length prefix; the caller frames them. Any error
    (HandshakeError) leaves the handshake failed for good.
    """

    def __new__(
        cls, initiator: bool, static_secret: bytes | None = None, prologue: bytes = b""
    ) -> NoiseHandshake: ...
    def write_message(self, payload: bytes) -> bytes: ...
    def read_message(self, message: bytes) -> bytes: ...
    @property
    def local_static_public(self) -> bytes: ...
    @property
    def remote_static_public(self) -> bytes | None: ...
    @property
    def handshake_hash(self) -> bytes: ...
    @property
    def is_finished(self) -> bool: ...
    @property
    def is_initiator(self) -> bool: ...
    @property
    def is_my_turn(self) -> bool: ...
    def into_transport(self) -> NoiseTransport: ...

@final
class NoiseTransport:
    """Transport cipher pair with libp2p framing (``[u16 BE length][ciphertext + 16-byte tag]``).

    `decrypt` keeps an incomplete trailing frame for the next call; on DecryptionError the
    buffered input is dropped and the receive nonce stays put.
    """

    def encrypt(self, data: bytes) -> bytes: ...
    def decrypt(self, data: bytes) -> bytes: ...
    @property
    def pending(self) -> int: ...
    @property
    def send_nonce(self) -> int: ...
    @property
    def recv_nonce(self) -> int: ...
    @property
    def handshake_hash(self) -> bytes: ...
    @property
    def remote_static_public(self) -> bytes: ...

def _noise_gil_release_min(value: int | None = None) -> int: ...

# tls

TLS_SIGNING_PREFIX: bytes

@final
class TlsCertKey:
    """A fresh ECDSA P-256 certificate key; sign ``message_to_sign`` with the identity key."""

    def __new__(cls) -> TlsCertKey: ...
    @property
    def message_to_sign(self) -> bytes: ...
    def certify(self, public_key: bytes, signature: bytes) -> TlsIdentity: ...
    def _certify_unchecked(
        self, public_key: bytes | None = None, signature: bytes | None = None
    ) -> TlsIdentity: ...

@final
class TlsIdentity:
    """The host's self-signed certificate with the libp2p extension, and its key."""

    @property
    def certificate(self) -> bytes: ...
    @property
    def peer_id(self) -> bytes: ...

@final
class TlsHandshake:
    """One side of a libp2p TLS 1.3 handshake (records in, records out)."""

    def __new__(
        cls,
        identity: TlsIdentity,
        initiator: bool,
        expected_peer: bytes | None = None,
        muxers: list[str] = ...,
        now: int | None = None,
    ) -> TlsHandshake: ...
    def receive(self, data: bytes) -> None: ...
    def data_to_send(self) -> bytes: ...
    @property
    def is_finished(self) -> bool: ...
    def remote(self) -> tuple[bytes, bytes, str | None]: ...
    def take_early_data(self) -> bytes: ...

# connection

# Event kinds of Connection.receive_data / start_muxer: (kind, stream_id, value).
EV_STREAM_OPENED: int  # the peer opened stream_id (already ACKed); value None
EV_DATA: int  # value: bytes, in order, coalesced per stream per call; ack() once consumed
EV_FIN: int  # the peer half-closed stream_id (EOF after the data); value None
EV_RESET: int  # the peer reset stream_id; it is gone; value None
EV_WINDOW: int  # the send window of stream_id grew; value: the window now (int)
EV_STREAM_ACKED: int  # the peer acknowledged a stream we opened; value None
EV_PING_RTT: int  # stream 0; value: round-trip time in seconds (float)
EV_GO_AWAY: int  # stream 0; value: the peer's GoAway code (int)
EV_MUXER: int  # stream 0; value: the muxer id the negotiation agreed on (str); comes first
EV_SECURITY: int  # upgrading: the security protocol agreed (str)
EV_VERIFY: int  # upgrading: (key protobuf, signature, static key); answer with verified()
EV_SECURED: int  # upgrading: (protocol, peer id bytes, key protobuf, early muxer or None)

def tune_allocator(trim_threshold: int = ..., mmap_threshold: int = ...) -> bool: ...

@final
class Connection:
    """A secured connection after its handshake, sans-IO: the private-network layer, the
    Noise or TLS transport (or plaintext), the muxer negotiation when ``muxers`` is given,
    then yamux (or mplex, when negotiated or ``early_muxer``). One call per read (a partial
    frame stays inside), one per flush."""

    def __new__(
        cls,
        handshake: NoiseHandshake | TlsHandshake | None,
        *,
        initiator: bool,
        muxers: list[str] | None = None,
        max_streams: int = 512,
        initial_window: int = 262144,
        max_window: int = 16777216,
        ack_backlog: int = 256,
        keepalive_interval: float | None = ...,
        min_autotune_rtt: float = 0.01,
        early_muxer: str | None = None,
        mplex_max_buffered: int = 4194304,
    ) -> Connection: ...
    @staticmethod
    def upgrading(
        *,
        initiator: bool,
        protocols: list[str],
        muxers: list[str],
        early_muxers: list[str] = ...,
        noise_static_secret: bytes | None = None,
        noise_payload: bytes | None = None,
        tls_identity: TlsIdentity | None = None,
        expected_peer: bytes | None = None,
        max_streams: int = 512,
        initial_window: int = 262144,
        max_window: int = 16777216,
        ack_backlog: int = 256,
        keepalive_interval: float | None = ...,
        min_autotune_rtt: float = 0.01,
        mplex_max_buffered: int = 4194304,
        now: int | None = None,
    ) -> Connection: ...
    def verified(self, error: str | None, now: float) -> list[tuple[int, int, Any]]: ...
    def receive_eof(self) -> None: ...
    @property
    def is_upgrading(self) -> bool: ...
    def receive_data(
        self, data: bytes, now: float
    ) -> list[tuple[int, int, bytes | str | int | float | None]]: ...
    def receive_into(
        self, buffer: bytearray, length: int, now: float
    ) -> list[tuple[int, int, bytes | str | int | float | None]]: ...
    def data_to_send(self) -> bytes: ...
    @property
    def muxer(self) -> str | None: ...
    @property
    def muxers_refused(self) -> list[str]: ...
    @property
    def mplex_max_buffered(self) -> int | None: ...
    @property
    def carried(self) -> int: ...
    def open_stream(self) -> int: ...
    def send(
        self, stream_id: int, data: bytes, fin: bool = False, start: int = 0, end: int | None = None
    ) -> int: ...
    def send_window(self, stream_id: int) -> int: ...
    def close_stream(self, stream_id: int) -> None: ...
    def reset_stream(self, stream_id: int) -> None: ...
    def ack(self, stream_id: int, n: int, now: float | None = None) -> int: ...
    def grow_window(self, stream_id: int) -> int: ...
    def ping(self, now: float) -> None: ...
    def go_away(self, code: int = 0) -> None: ...
    def closing_data(self) -> bytes: ...
    @property
    def peer_closed(self) -> bool: ...
    def next_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...
    def receive_window(self, stream_id: int) -> int | None: ...
    def set_max_window_growth(self, bytes: int) -> None: ...
    @property
    def total_window(self) -> int: ...
    @property
    def window_growth(self) -> int: ...
    @property
    def window_wanted(self) -> int: ...
    @property
    def window_capped(self) -> bool: ...
    @property
    def rtt(self) -> float | None: ...
    @property
    def num_streams(self) -> int: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def is_encrypted(self) -> bool: ...
    @property
    def pending_output(self) -> int: ...
    def set_protector(self, protector: Protector) -> None: ...
    @property
    def is_protected(self) -> bool: ...

# pnet

PNET_NONCE_LEN: int

def parse_swarm_key(data: bytes) -> bytes: ...
def format_swarm_key(key: bytes) -> str: ...

@final
class Protector:
    """XSalsa20 keystreams of one connection (our nonce out, the remote's in)."""

    def __new__(cls, key: bytes, nonce: bytes | None = None) -> Protector: ...
    @property
    def local_nonce(self) -> bytes: ...
    @property
    def remote_nonce(self) -> bytes | None: ...
    @property
    def remote_nonce_received(self) -> int: ...
    def encrypt(self, data: bytes) -> bytes: ...
    def decrypt(self, data: bytes) -> bytes: ...
    @property
    def moved(self) -> bool: ...

# yamux

class _YamuxDefaults(TypedDict):
    max_streams: int
    initial_window: int
    max_window: int
    ack_backlog: int
    keepalive_interval: float | None  # seconds between keep-alive pings; None: none
    min_autotune_rtt: float  # seconds

YAMUX_DEFAULTS: _YamuxDefaults
"""``rapidp2p_yamux::Config::default()``, the one source of the yamux defaults."""

class _MplexDefaults(TypedDict):
    max_buffered: int  # unread bytes per stream before it is reset
    max_frame: int  # largest frame body accepted

MPLEX_DEFAULTS: _MplexDefaults
"""``rapidp2p_mplex::Config::default()``, the one source of the mplex defaults."""
MPLEX_PROTOCOL_ID: str
