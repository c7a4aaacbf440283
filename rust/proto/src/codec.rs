//! Bounded decoding, encoding, and the RFC 0002 signing buffer.

use prost::Message;

use crate::messages::{Envelope, Identify, NoiseHandshakePayload, PeerRecord, PlaintextExchange};

/// A Noise handshake message is at most 65535 bytes, so its payload cannot be larger.
pub const MAX_NOISE_PAYLOAD_SIZE: usize = 65535;
/// Identify messages over 8 KiB are refused (go-libp2p's `signedIDSize` limit; ROBUSTNESS 27).
pub const MAX_IDENTIFY_SIZE: usize = 8 * 1024;
/// A signed envelope: a key (an RSA key is at most ~1.1 KiB), a type hint, a payload and a
/// signature. 64 KiB leaves room for a large record and bounds a hostile one.
pub const MAX_ENVELOPE_SIZE: usize = 64 * 1024;
/// A peer record travels inside an envelope, so the same cap applies.
pub const MAX_PEER_RECORD_SIZE: usize = MAX_ENVELOPE_SIZE;
/// Largest `/plaintext/2.0.0` Exchange accepted (an id and a public key: RSA-4096 fits).
pub const MAX_PLAINTEXT_EXCHANGE_SIZE: usize = 4096;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The input is over the message's size cap; nothing was parsed.
    #[error("{what} of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    /// The bytes are not a valid protobuf encoding of the message.
    #[error("invalid {what} protobuf: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// A field the protocol requires is absent.
    #[error("{what} lacks the required field {field}")]
    Missing {
        what: &'static str,
        field: &'static str,
    },
}

fn bounded<M: Message + Default>(
    data: &[u8],
    max: usize,
    what: &'static str,
) -> Result<M, ProtoError> {
    if data.len() > max {
        return Err(ProtoError::TooLarge {
            what,
            size: data.len(),
            max,
        });
    }
    M::decode(data).map_err(|e| ProtoError::Invalid {
        what,
        reason: e.to_string(),
    })
}

/// Encodes any of the messages of this crate.
pub fn encode<M: Message>(msg: &M) -> Vec<u8> {
    msg.encode_to_vec()
}

/// Decodes a Noise handshake payload; `identity_key` and `identity_sig` must be present
/// (they are in handshake messages 2 and 3, the only ones whose payload is checked).
pub fn decode_noise_payload(data: &[u8]) -> Result<NoiseHandshakePayload, ProtoError> {
    const WHAT: &str = "NoiseHandshakePayload";
    let msg: NoiseHandshakePayload = bounded(data, MAX_NOISE_PAYLOAD_SIZE, WHAT)?;
    if msg.identity_key.is_none() {
        return Err(ProtoError::Missing {
            what: WHAT,
            field: "identity_key",
        });
    }
    if msg.identity_sig.is_none() {
        return Err(ProtoError::Missing {
            what: WHAT,
            field: "identity_sig",
        });
    }
    Ok(msg)
}

/// Decodes an Identify (or identify-push) message of at most [`MAX_IDENTIFY_SIZE`] bytes.
pub fn decode_identify(data: &[u8]) -> Result<Identify, ProtoError> {
    bounded(data, MAX_IDENTIFY_SIZE, "Identify")
}

/// Decodes a signed envelope (the signature is NOT checked here; the caller verifies it
/// before decoding the payload).
pub fn decode_envelope(data: &[u8]) -> Result<Envelope, ProtoError> {
    const WHAT: &str = "Envelope";
    let env: Envelope = bounded(data, MAX_ENVELOPE_SIZE, WHAT)?;
    if env.public_key.is_empty() {
        return Err(ProtoError::Missing {
            what: WHAT,
            field: "public_key",
        });
    }
    if env.payload_type.is_empty() {
        return Err(ProtoError::Missing {
            what: WHAT,
            field: "payload_type",
        });
    }
    if env.signature.is_empty() {
        return Err(ProtoError::Missing {
            what: WHAT,
            field: "signature",
        });
    }
    Ok(env)
}

/// Decodes a routing peer record; the peer id must be present.
pub fn decode_peer_record(data: &[u8]) -> Result<PeerRecord, ProtoError> {
    const WHAT: &str = "PeerRecord";
    let rec: PeerRecord = bounded(data, MAX_PEER_RECORD_SIZE, WHAT)?;
    if rec.peer_id.is_empty() {
        return Err(ProtoError::Missing {
            what: WHAT,
            field: "peer_id",
        });
    }
    Ok(rec)
}

/// Decodes a `/plaintext/2.0.0` Exchange; `id` and `pubkey` must both be present.
pub fn decode_plaintext_exchange(data: &[u8]) -> Result<PlaintextExchange, ProtoError> {
    const WHAT: &str = "plaintext Exchange";
    let msg: PlaintextExchange = bounded(data, MAX_PLAINTEXT_EXCHANGE_SIZE, WHAT)?;
    if msg.id.is_none() {
        return Err(ProtoError::Missing {
            what: WHAT,
            field: "id",
        });
    }
    if msg.pubkey.is_none() {
        return Err(ProtoError::Missing {
            what: WHAT,
            field: "pubkey",
        });
    }
    Ok(msg)
}

/// The bytes an envelope's signature covers (RFC 0002): varint length + domain, varint
/// length + payload type, varint length + payload.
pub fn envelope_signing_buffer(domain: &[u8], payload_type: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(30 + domain.len() + payload_type.len() + payload.len());
    for part in [domain, payload_type, payload] {
        prost::encoding::encode_varint(part.len() as u64, &mut out);
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{AddressInfo, NoiseExtensions};
    use proptest::prelude::*;

    #[test]
    fn plaintext_exchange_roundtrip_and_required_fields() {
        let msg = PlaintextExchange {
            id: Some(vec![0, 1]),
            pubkey: Some(vec![8, 1, 18, 0]),
        };
        let bytes = encode(&msg);
        assert_eq!(bytes, [0x0a, 2, 0, 1, 0x12, 4, 8, 1, 18, 0]);
        assert_eq!(decode_plaintext_exchange(&bytes).unwrap(), msg);
        assert!(matches!(
            decode_plaintext_exchange(&bytes[..4]),
            Err(ProtoError::Missing {
                field: "pubkey",
                ..
            })
        ));
        assert!(matches!(
            decode_plaintext_exchange(&bytes[4..]),
            Err(ProtoError::Missing { field: "id", .. })
        ));
        assert!(matches!(
            decode_plaintext_exchange(&bytes[..3]),
            Err(ProtoError::Invalid { .. })
        ));
        let big = vec![0u8; MAX_PLAINTEXT_EXCHANGE_SIZE + 1];
        assert!(matches!(
            decode_plaintext_exchange(&big),
            Err(ProtoError::TooLarge { .. })
        ));
    }

    #[test]
    fn noise_payload_roundtrip_and_field_numbers() {
        let msg = NoiseHandshakePayload {
            identity_key: Some(vec![1, 2]),
            identity_sig: Some(vec![3]),
            extensions: Some(NoiseExtensions {
                webtransport_certhashes: vec![],
                stream_muxers: vec!["/yamux/1.0.0".into()],
            }),
        };
        let bytes = encode(&msg);
        // field 1 (0x0a), field 2 (0x12), field 4 (0x22) wrapping field 2 (0x12) of extensions.
        let mut expected = vec![0x0a, 2, 1, 2, 0x12, 1, 3, 0x22, 14, 0x12, 12];
        expected.extend_from_slice(b"/yamux/1.0.0");
        assert_eq!(bytes, expected);
        assert_eq!(decode_noise_payload(&bytes).unwrap(), msg);
    }

    #[test]
    fn noise_payload_requires_key_and_sig() {
        assert!(matches!(
            decode_noise_payload(&[]),
            Err(ProtoError::Missing {
                field: "identity_key",
                ..
            })
        ));
        assert!(matches!(
            decode_noise_payload(&[0x0a, 0]),
            Err(ProtoError::Missing {
                field: "identity_sig",
                ..
            })
        ));
    }

    #[test]
    fn identify_field_numbers() {
        let msg = Identify {
            protocol_version: Some("ipfs/0.1.0".into()),
            agent_version: Some("a".into()),
            signed_peer_record: Some(vec![9]),
            ..Default::default()
        };
        let bytes = encode(&msg);
        let mut expected = vec![0x2a, 10];
        expected.extend_from_slice(b"ipfs/0.1.0");
        expected.extend_from_slice(&[0x32, 1, b'a', 0x42, 1, 9]);
        assert_eq!(bytes, expected);
        assert_eq!(decode_identify(&bytes).unwrap(), msg);
    }

    #[test]
    fn identify_over_cap_is_refused_before_parsing() {
        let data = vec![0u8; MAX_IDENTIFY_SIZE + 1];
        assert_eq!(
            decode_identify(&data),
            Err(ProtoError::TooLarge {
                what: "Identify",
                size: MAX_IDENTIFY_SIZE + 1,
                max: MAX_IDENTIFY_SIZE
            })
        );
    }

    #[test]
    fn identify_bad_utf8_protocol_is_invalid() {
        let data = [0x1a, 1, 0xff];
        assert!(matches!(
            decode_identify(&data),
            Err(ProtoError::Invalid { .. })
        ));
    }

    #[test]
    fn truncated_field_is_invalid() {
        assert!(matches!(
            decode_identify(&[0x0a, 5, 1]),
            Err(ProtoError::Invalid { .. })
        ));
    }

    #[test]
    fn peer_record_roundtrip() {
        let rec = PeerRecord {
            peer_id: vec![0, 1, 2],
            seq: 300,
            addresses: vec![AddressInfo {
                multiaddr: vec![4, 127, 0, 0, 1],
            }],
        };
        let bytes = encode(&rec);
        assert_eq!(
            bytes,
            vec![0x0a, 3, 0, 1, 2, 0x10, 0xac, 0x02, 0x1a, 7, 0x0a, 5, 4, 127, 0, 0, 1]
        );
        assert_eq!(decode_peer_record(&bytes).unwrap(), rec);
        assert!(matches!(
            decode_peer_record(&[0x10, 1]),
            Err(ProtoError::Missing {
                field: "peer_id",
                ..
            })
        ));
    }

    #[test]
    fn envelope_roundtrip_and_required_fields() {
        let env = Envelope {
            public_key: vec![8, 1, 18, 1, 0],
            payload_type: vec![3, 1],
            payload: vec![7],
            signature: vec![5, 5],
        };
        let bytes = encode(&env);
        assert_eq!(&bytes[..2], &[0x0a, 5]);
        assert_eq!(decode_envelope(&bytes).unwrap(), env);
        let no_sig = Envelope {
            signature: vec![],
            ..env
        };
        assert!(matches!(
            decode_envelope(&encode(&no_sig)),
            Err(ProtoError::Missing {
                field: "signature",
                ..
            })
        ));
    }

    #[test]
    fn signing_buffer_layout() {
        let buf = envelope_signing_buffer(b"libp2p-peer-record", &[3, 1], b"xyz");
        let mut expected = vec![18];
        expected.extend_from_slice(b"libp2p-peer-record");
        expected.extend_from_slice(&[2, 3, 1, 3]);
        expected.extend_from_slice(b"xyz");
        assert_eq!(buf, expected);
        let big = vec![0u8; 200];
        let buf = envelope_signing_buffer(b"", b"", &big);
        assert_eq!(&buf[..4], &[0, 0, 0xc8, 0x01]);
    }

    proptest! {
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_noise_payload(&data);
            let _ = decode_identify(&data);
            let _ = decode_envelope(&data);
            let _ = decode_peer_record(&data);
        }

        #[test]
        fn identify_roundtrips(
            protos in proptest::collection::vec("[a-z/0-9.]{0,20}", 0..8),
            addrs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..8),
            agent in proptest::option::of("[ -~]{0,30}"),
            observed in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        ) {
            let msg = Identify {
                protocols: protos,
                listen_addrs: addrs,
                agent_version: agent,
                observed_addr: observed,
                ..Default::default()
            };
            prop_assert_eq!(decode_identify(&encode(&msg)).unwrap(), msg);
        }
    }
}
