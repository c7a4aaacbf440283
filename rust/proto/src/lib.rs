//! libp2p protobuf messages for rapidp2p: the Noise handshake payload, Identify, the signed
//! Envelope (RFC 0002), the routing PeerRecord (RFC 0003) and the plaintext Exchange.
//!
//! The structs are hand-written `prost` derives (no protoc, no build script). Every decoder
//! bounds its input before parsing and returns [`ProtoError`] instead of panicking, because
//! every byte here comes from an untrusted peer.

mod codec;
mod messages;

pub use codec::{
    decode_envelope, decode_identify, decode_noise_payload, decode_peer_record,
    decode_plaintext_exchange, encode, envelope_signing_buffer, ProtoError, MAX_ENVELOPE_SIZE,
    MAX_IDENTIFY_SIZE, MAX_NOISE_PAYLOAD_SIZE, MAX_PEER_RECORD_SIZE, MAX_PLAINTEXT_EXCHANGE_SIZE,
};
pub use messages::{
    AddressInfo, Envelope, Identify, NoiseExtensions, NoiseHandshakePayload, PeerRecord,
    PlaintextExchange,
};
