//! The kad-dht wire messages (`Message`, `Message.Peer`, `Record`) with bounded decoding.
//!
//! Encoding uses prost derives. Decoding walks the top-level fields by hand so that a peer
//! list is capped while it is read: peers past `max_peers` are skipped without being
//! allocated, addresses past `MAX_ADDRS_PER_PEER` likewise (ROBUSTNESS 28-29).

use prost::Message as _;

/// Default cap on an encoded message (rust-libp2p uses 16 KiB, go-libp2p 4 MiB; records of a
/// few KiB plus k peers with their addresses fit comfortably).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Addresses kept per peer entry; the rest are skipped.
pub const MAX_ADDRS_PER_PEER: usize = 32;
/// Largest single multiaddr kept.
pub const MAX_ADDR_LEN: usize = 1024;

/// `Message.MessageType`.
pub mod message_type {
    pub const PUT_VALUE: i32 = 0;
    pub const GET_VALUE: i32 = 1;
    pub const ADD_PROVIDER: i32 = 2;
    pub const GET_PROVIDERS: i32 = 3;
    pub const FIND_NODE: i32 = 4;
    pub const PING: i32 = 5;
}

/// `Record` (proto3).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    #[prost(string, tag = "5")]
    pub time_received: String,
}

/// `Message.Peer` (proto3).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Peer {
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub addrs: Vec<Vec<u8>>,
    #[prost(int32, tag = "3")]
    pub connection: i32,
}

/// `Message` (proto3).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    pub record: Option<Record>,
    #[prost(message, repeated, tag = "8")]
    pub closer_peers: Vec<Peer>,
    #[prost(message, repeated, tag = "9")]
    pub provider_peers: Vec<Peer>,
    #[prost(int32, tag = "10")]
    pub cluster_level_raw: i32,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KadProtoError {
    #[error("kad message of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("invalid kad message: {0}")]
    Invalid(String),
}

fn invalid(s: impl Into<String>) -> KadProtoError {
    KadProtoError::Invalid(s.into())
}

/// Encodes a message.
pub fn encode_message(msg: &Message) -> Vec<u8> {
    msg.encode_to_vec()
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, KadProtoError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| invalid("truncated varint"))?;
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(invalid("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(invalid("varint too long"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], KadProtoError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| invalid("length overflow"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| invalid("length past the end of the message"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn skip(&mut self, wire_type: u64) -> Result<(), KadProtoError> {
        match wire_type {
            0 => self.varint().map(|_| ()),
            1 => self.advance(8),
            2 => self.bytes().map(|_| ()),
            5 => self.advance(4),
            _ => Err(invalid(format!("unsupported wire type {wire_type}"))),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), KadProtoError> {
        if self.buf.len() - self.pos < n {
            return Err(invalid("truncated fixed-width field"));
        }
        self.pos += n;
        Ok(())
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

fn expect_wire(wire: u64, want: u64, field: &str) -> Result<(), KadProtoError> {
    if wire != want {
        return Err(invalid(format!("field {field} has wire type {wire}")));
    }
    Ok(())
}

fn decode_peer(data: &[u8]) -> Result<Peer, KadProtoError> {
    let mut r = Reader { buf: data, pos: 0 };
    let mut peer = Peer::default();
    while !r.done() {
        let key = r.varint()?;
        let (field, wire) = (key >> 3, key & 7);
        match field {
            1 => {
                expect_wire(wire, 2, "Peer.id")?;
                peer.id = r.bytes()?.to_vec();
            }
            2 => {
                expect_wire(wire, 2, "Peer.addrs")?;
                let a = r.bytes()?;
                if peer.addrs.len() < MAX_ADDRS_PER_PEER && a.len() <= MAX_ADDR_LEN {
                    peer.addrs.push(a.to_vec());
                }
            }
            3 => {
                expect_wire(wire, 0, "Peer.connection")?;
                peer.connection = r.varint()? as i32;
            }
            0 => return Err(invalid("field number 0")),
            _ => r.skip(wire)?,
        }
    }
    Ok(peer)
}

fn decode_record(data: &[u8]) -> Result<Record, KadProtoError> {
    Record::decode(data).map_err(|e| invalid(format!("record: {e}")))
}

/// Decodes a message of at most `max_size` bytes, keeping at most `max_peers` closer peers and
/// `max_peers` provider peers (the rest are skipped unread). The message type must be one of
/// the six known ones.
pub fn decode_message(
    data: &[u8],
    max_size: usize,
    max_peers: usize,
) -> Result<Message, KadProtoError> {
    if data.len() > max_size {
        return Err(KadProtoError::TooLarge {
            size: data.len(),
            max: max_size,
        });
    }
    let mut r = Reader { buf: data, pos: 0 };
    let mut msg = Message::default();
    while !r.done() {
        let key = r.varint()?;
        let (field, wire) = (key >> 3, key & 7);
        match field {
            1 => {
                expect_wire(wire, 0, "type")?;
                msg.r#type = r.varint()? as i32;
            }
            2 => {
                expect_wire(wire, 2, "key")?;
                msg.key = r.bytes()?.to_vec();
            }
            3 => {
                expect_wire(wire, 2, "record")?;
                msg.record = Some(decode_record(r.bytes()?)?);
            }
            8 => {
                expect_wire(wire, 2, "closerPeers")?;
                let b = r.bytes()?;
                if msg.closer_peers.len() < max_peers {
                    msg.closer_peers.push(decode_peer(b)?);
                }
            }
            9 => {
                expect_wire(wire, 2, "providerPeers")?;
                let b = r.bytes()?;
                if msg.provider_peers.len() < max_peers {
                    msg.provider_peers.push(decode_peer(b)?);
                }
            }
            10 => {
                expect_wire(wire, 0, "clusterLevelRaw")?;
                msg.cluster_level_raw = r.varint()? as i32;
            }
            0 => return Err(invalid("field number 0")),
            _ => r.skip(wire)?,
        }
    }
    if !(0..=5).contains(&msg.r#type) {
        return Err(invalid(format!("unknown message type {}", msg.r#type)));
    }
    Ok(msg)
}
