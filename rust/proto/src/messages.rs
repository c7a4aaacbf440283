//! The message structs, written by hand from the `.proto` files of libp2p/specs.
//!
//! Field numbers and proto2/proto3 presence follow the specs exactly; prost encodes fields in
//! tag order, which is the canonical order other implementations produce.

/// `noise/README.md`: `NoiseExtensions` (proto2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NoiseExtensions {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub webtransport_certhashes: Vec<Vec<u8>>,
    #[prost(string, repeated, tag = "2")]
    pub stream_muxers: Vec<String>,
}

/// `noise/README.md`: `NoiseHandshakePayload` (proto2, every field optional).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NoiseHandshakePayload {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub identity_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub identity_sig: Option<Vec<u8>>,
    #[prost(message, optional, tag = "4")]
    pub extensions: Option<NoiseExtensions>,
}

/// `identify/README.md`: `Identify` (proto2). Absent optional fields matter for identify-push,
/// where only the changed fields are sent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Identify {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub public_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub listen_addrs: Vec<Vec<u8>>,
    #[prost(string, repeated, tag = "3")]
    pub protocols: Vec<String>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub observed_addr: Option<Vec<u8>>,
    #[prost(string, optional, tag = "5")]
    pub protocol_version: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub agent_version: Option<String>,
    #[prost(bytes = "vec", optional, tag = "8")]
    pub signed_peer_record: Option<Vec<u8>>,
}

/// RFC 0002: `Envelope` (proto3).
///
/// `public_key` is the `PublicKey` message of the peer-id spec. A nested message and a `bytes`
/// field share one wire encoding, so it is kept here as the encoded `PublicKey` protobuf: the
/// key codec (strict, deterministic) decodes it, and the exact bytes the signer sent are kept.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    #[prost(bytes = "vec", tag = "1")]
    pub public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub payload_type: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    pub signature: Vec<u8>,
}

/// RFC 0003: `PeerRecord.AddressInfo` (proto3).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AddressInfo {
    #[prost(bytes = "vec", tag = "1")]
    pub multiaddr: Vec<u8>,
}

/// RFC 0003: `PeerRecord` (proto3).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PeerRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub peer_id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    #[prost(message, repeated, tag = "3")]
    pub addresses: Vec<AddressInfo>,
}

/// `plaintext/README.md`: `Exchange` (proto2). `pubkey` is the `PublicKey` message, kept as
/// its encoded bytes (a length-delimited field either way) for the key decoder to check.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PlaintextExchange {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub id: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub pubkey: Option<Vec<u8>>,
}
