//! Bounded RPC decoding, message encoding and the signing buffer.

use prost::Message as _;

use crate::messages::{ControlMessage, Message, Rpc};

/// The default cap on one RPC frame (go-libp2p-pubsub's and rust-libp2p's default max
/// transmit size is 1 MiB; rust-libp2p uses 65536 for some configurations).
pub const DEFAULT_MAX_RPC_SIZE: usize = 1 << 20;

/// Signatures cover this prefix followed by the encoded message without `signature`/`key`.
pub const SIGNING_PREFIX: &[u8] = b"libp2p-pubsub:";

/// Caps applied while decoding: entries beyond them are dropped (ROBUSTNESS 31: "ignore the
/// excess"), so a frame full of tiny entries cannot make the control logic work for each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest frame accepted at all; larger input is refused before parsing.
    pub max_size: usize,
    /// Subscription changes kept per RPC.
    pub max_subscriptions: usize,
    /// Messages kept per RPC.
    pub max_messages: usize,
    /// Message IDs kept per RPC, summed over all IHAVE entries (likewise IWANT, IDONTWANT).
    pub max_ids: usize,
    /// GRAFT and PRUNE entries kept per RPC (each).
    pub max_graft_prune: usize,
    /// Peer-exchange entries kept per PRUNE.
    pub max_prune_peers: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_RPC_SIZE,
            max_subscriptions: 100,
            max_messages: 1 << 14,
            max_ids: 5000,
            max_graft_prune: 1000,
            max_prune_peers: 100,
        }
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The frame is over the size cap; nothing was parsed.
    #[error("pubsub RPC of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    /// The bytes are not a valid protobuf encoding of an RPC.
    #[error("invalid pubsub RPC protobuf: {0}")]
    Invalid(String),
}

/// Decodes one RPC frame (without its length prefix), then trims every list to `limits`.
pub fn decode_rpc(data: &[u8], limits: &DecodeLimits) -> Result<Rpc, RpcError> {
    if data.len() > limits.max_size {
        return Err(RpcError::TooLarge {
            size: data.len(),
            max: limits.max_size,
        });
    }
    let mut rpc = Rpc::decode(data).map_err(|e| RpcError::Invalid(e.to_string()))?;
    rpc.subscriptions.truncate(limits.max_subscriptions);
    rpc.publish.truncate(limits.max_messages);
    if let Some(ctl) = rpc.control.as_mut() {
        let mut budget = limits.max_ids;
        for ihave in ctl.ihave.iter_mut() {
            ihave.message_ids.truncate(budget);
            budget -= ihave.message_ids.len();
        }
        ctl.ihave.retain(|h| !h.message_ids.is_empty());
        let mut budget = limits.max_ids;
        for iwant in ctl.iwant.iter_mut() {
            iwant.message_ids.truncate(budget);
            budget -= iwant.message_ids.len();
        }
        ctl.iwant.retain(|w| !w.message_ids.is_empty());
        let mut budget = limits.max_ids;
        for idw in ctl.idontwant.iter_mut() {
            idw.message_ids.truncate(budget);
            budget -= idw.message_ids.len();
        }
        ctl.idontwant.retain(|w| !w.message_ids.is_empty());
        ctl.graft.truncate(limits.max_graft_prune);
        ctl.prune.truncate(limits.max_graft_prune);
        for prune in ctl.prune.iter_mut() {
            prune.peers.truncate(limits.max_prune_peers);
        }
    }
    Ok(rpc)
}

/// Encodes a message (the bytes that go after tag 2 of an RPC).
pub fn encode_message(msg: &Message) -> Vec<u8> {
    msg.encode_to_vec()
}

/// Encodes a whole RPC.
pub fn encode_rpc(rpc: &Rpc) -> Vec<u8> {
    rpc.encode_to_vec()
}

/// Encodes a control message (the body of RPC field 3).
pub fn encode_control(ctl: &ControlMessage) -> Vec<u8> {
    ctl.encode_to_vec()
}

/// Appends a length-delimited field: protobuf messages concatenate, so an RPC can be built
/// from an encoded head plus already-encoded messages (tag 2) and control (tag 3).
pub fn append_field(out: &mut Vec<u8>, tag: u32, body: &[u8]) {
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// `"libp2p-pubsub:" || encode(Message{from, data, seqno, topic})`: what the author signs.
/// Absent fields stay absent, so a received message re-encodes exactly as its author did.
pub fn signing_bytes(
    from: Option<&[u8]>,
    data: Option<&[u8]>,
    seqno: Option<&[u8]>,
    topic: Option<&str>,
) -> Vec<u8> {
    let msg = Message {
        from: from.map(<[u8]>::to_vec),
        data: data.map(<[u8]>::to_vec),
        seqno: seqno.map(<[u8]>::to_vec),
        topic: topic.map(str::to_owned),
        signature: None,
        key: None,
    };
    let mut out = Vec::with_capacity(SIGNING_PREFIX.len() + msg.encoded_len());
    out.extend_from_slice(SIGNING_PREFIX);
    // Encoding into a Vec cannot fail: it grows as needed.
    let _ = msg.encode(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::*;
    use proptest::prelude::*;

    fn sample() -> Rpc {
        Rpc {
            subscriptions: vec![SubOpts {
                subscribe: Some(true),
                topic_id: Some("t".into()),
            }],
            publish: vec![Message {
                from: Some(vec![1, 2]),
                data: Some(b"hello".to_vec()),
                seqno: Some(vec![0, 0, 0, 0, 0, 0, 0, 1]),
                topic: Some("t".into()),
                signature: Some(vec![9; 64]),
                key: None,
            }],
            control: Some(ControlMessage {
                ihave: vec![ControlIHave {
                    topic_id: Some("t".into()),
                    message_ids: vec![b"a".to_vec(), b"b".to_vec()],
                }],
                iwant: vec![ControlIWant {
                    message_ids: vec![b"a".to_vec()],
                }],
                graft: vec![ControlGraft {
                    topic_id: Some("t".into()),
                }],
                prune: vec![ControlPrune {
                    topic_id: Some("u".into()),
                    peers: vec![PeerInfo {
                        peer_id: Some(vec![0, 1, 2]),
                        signed_peer_record: None,
                    }],
                    backoff: Some(u64::MAX),
                }],
                idontwant: vec![ControlIDontWant {
                    message_ids: vec![b"z".to_vec()],
                }],
            }),
        }
    }

    #[test]
    fn roundtrip() {
        let rpc = sample();
        let bytes = rpc.encode_to_vec();
        assert_eq!(decode_rpc(&bytes, &DecodeLimits::default()).unwrap(), rpc);
    }

    #[test]
    fn wire_bytes_of_a_subscription() {
        // field 1 (len 5): field 1 varint 1, field 2 "t"
        let rpc = Rpc {
            subscriptions: vec![SubOpts {
                subscribe: Some(true),
                topic_id: Some("t".into()),
            }],
            publish: vec![],
            control: None,
        };
        assert_eq!(rpc.encode_to_vec(), vec![0x0a, 5, 0x08, 1, 0x12, 1, b't']);
    }

    #[test]
    fn oversize_refused_before_parsing() {
        let limits = DecodeLimits {
            max_size: 4,
            ..DecodeLimits::default()
        };
        assert_eq!(
            decode_rpc(&[0u8; 5], &limits),
            Err(RpcError::TooLarge { size: 5, max: 4 })
        );
    }

    #[test]
    fn excess_entries_dropped() {
        let mut rpc = sample();
        rpc.subscriptions = (0..150)
            .map(|i| SubOpts {
                subscribe: Some(true),
                topic_id: Some(format!("t{i}")),
            })
            .collect();
        let ctl = rpc.control.as_mut().unwrap();
        ctl.ihave = (0..3)
            .map(|_| ControlIHave {
                topic_id: Some("t".into()),
                message_ids: (0..3000u32).map(|i| i.to_be_bytes().to_vec()).collect(),
            })
            .collect();
        let got = decode_rpc(&rpc.encode_to_vec(), &DecodeLimits::default()).unwrap();
        assert_eq!(got.subscriptions.len(), 100);
        let ids: usize = got
            .control
            .unwrap()
            .ihave
            .iter()
            .map(|h| h.message_ids.len())
            .sum();
        assert_eq!(ids, 5000);
    }

    #[test]
    fn signing_bytes_match_field_encoding() {
        let b = signing_bytes(Some(&[1]), Some(b"x"), Some(&[2]), Some("t"));
        let mut want = SIGNING_PREFIX.to_vec();
        want.extend_from_slice(&[0x0a, 1, 1, 0x12, 1, b'x', 0x1a, 1, 2, 0x22, 1, b't']);
        assert_eq!(b, want);
        // absent data stays absent
        let b = signing_bytes(Some(&[1]), None, None, Some("t"));
        assert_eq!(&b[SIGNING_PREFIX.len()..], &[0x0a, 1, 1, 0x22, 1, b't']);
    }

    #[test]
    fn spliced_rpc_equals_prost_encoding() {
        let rpc = sample();
        let head = Rpc {
            subscriptions: rpc.subscriptions.clone(),
            publish: vec![],
            control: None,
        };
        let mut out = encode_rpc(&head);
        for m in &rpc.publish {
            append_field(&mut out, 2, &encode_message(m));
        }
        append_field(&mut out, 3, &encode_control(rpc.control.as_ref().unwrap()));
        assert_eq!(out, rpc.encode_to_vec());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_rpc(&data, &DecodeLimits::default());
        }
    }
}
