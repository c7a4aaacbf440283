"""``rapidp2p._core.proto``: the libp2p protobuf messages (crate ``rapidp2p-proto``).

Keep in step with ``rust/py/src/proto.rs``.
"""

__all__ = [
    "MAX_ENVELOPE_SIZE",
    "MAX_IDENTIFY_SIZE",
    "MAX_NOISE_PAYLOAD_SIZE",
    "MAX_PLAINTEXT_EXCHANGE_SIZE",
    "decode_envelope",
    "decode_identify",
    "decode_noise_certhashes",
    "decode_noise_payload",
    "decode_peer_record",
    "decode_plaintext_exchange",
    "encode_envelope",
    "encode_identify",
    "encode_noise_payload",
    "encode_peer_record",
    "encode_plaintext_exchange",
    "envelope_signing_buffer",
]

# Decoders raise rapidp2p.exceptions.ProtobufError (undecodable, over the size cap, or a
# required field missing). Decoded messages are tuples in field-number order.

MAX_IDENTIFY_SIZE: int  # 8192: larger Identify messages are refused before parsing
MAX_ENVELOPE_SIZE: int  # 65536: cap on a signed envelope and on a peer record
MAX_NOISE_PAYLOAD_SIZE: int  # 65535
MAX_PLAINTEXT_EXCHANGE_SIZE: int  # 4096

def encode_noise_payload(
    identity_key: bytes,
    identity_sig: bytes,
    stream_muxers: list[str] = ...,
    webtransport_certhashes: list[bytes] = ...,
) -> bytes: ...
def decode_noise_payload(data: bytes) -> tuple[bytes, bytes, list[str]]:
    """-> (identity_key, identity_sig, stream_muxers); key and sig must be present."""

def decode_noise_certhashes(data: bytes) -> list[bytes]:
    """The ``webtransport_certhashes`` of the payload's extensions (empty: none)."""

def encode_identify(
    *,
    public_key: bytes | None = None,
    listen_addrs: list[bytes] = ...,
    protocols: list[str] = ...,
    observed_addr: bytes | None = None,
    protocol_version: str | None = None,
    agent_version: str | None = None,
    signed_peer_record: bytes | None = None,
) -> bytes: ...
def decode_identify(
    data: bytes,
) -> tuple[
    bytes | None, list[bytes], list[str], bytes | None, str | None, str | None, bytes | None
]:
    """-> (public_key, listen_addrs, protocols, observed_addr, protocol_version,
    agent_version, signed_peer_record); None for an absent optional field."""

def encode_envelope(
    public_key: bytes, payload_type: bytes, payload: bytes, signature: bytes
) -> bytes:
    """``public_key`` is the encoded PublicKey protobuf."""

def decode_envelope(data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """-> (public_key, payload_type, payload, signature); the signature is NOT verified."""

def envelope_signing_buffer(domain: bytes, payload_type: bytes, payload: bytes) -> bytes:
    """uvarint-length-prefixed domain || payload_type || payload (RFC 0002)."""

def encode_peer_record(peer_id: bytes, seq: int, addrs: list[bytes]) -> bytes: ...
def decode_peer_record(data: bytes) -> tuple[bytes, int, list[bytes]]:
    """-> (peer_id bytes, seq, binary multiaddrs); peer_id must be present."""

def encode_plaintext_exchange(peer_id: bytes, public_key: bytes) -> bytes:
    """``/plaintext/2.0.0`` Exchange; ``public_key`` is the encoded PublicKey protobuf."""

def decode_plaintext_exchange(data: bytes) -> tuple[bytes, bytes]:
    """-> (peer_id, public_key protobuf); both must be present."""
