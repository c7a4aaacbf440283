//! `pubsub/rpc.proto` (proto2) written by hand. Field numbers follow libp2p/specs; prost
//! encodes in tag order, the canonical order go- and rust-libp2p produce (this matters: the
//! message signature covers a re-encoding of `from`, `data`, `seqno`, `topic`).

/// One RPC frame: subscription changes, messages and control, all optional.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Rpc {
    #[prost(message, repeated, tag = "1")]
    pub subscriptions: Vec<SubOpts>,
    #[prost(message, repeated, tag = "2")]
    pub publish: Vec<Message>,
    #[prost(message, optional, tag = "3")]
    pub control: Option<ControlMessage>,
}

/// A subscription change announced to a peer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubOpts {
    #[prost(bool, optional, tag = "1")]
    pub subscribe: Option<bool>,
    #[prost(string, optional, tag = "2")]
    pub topic_id: Option<String>,
}

/// A published message. Presence of each optional field is kept exactly as received, so the
/// signing buffer can be rebuilt byte for byte.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub from: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub data: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub seqno: Option<Vec<u8>>,
    #[prost(string, optional, tag = "4")]
    pub topic: Option<String>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub signature: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "6")]
    pub key: Option<Vec<u8>>,
}

/// GossipSub control messages (v1.2 adds IDONTWANT).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ControlMessage {
    #[prost(message, repeated, tag = "1")]
    pub ihave: Vec<ControlIHave>,
    #[prost(message, repeated, tag = "2")]
    pub iwant: Vec<ControlIWant>,
    #[prost(message, repeated, tag = "3")]
    pub graft: Vec<ControlGraft>,
    #[prost(message, repeated, tag = "4")]
    pub prune: Vec<ControlPrune>,
    #[prost(message, repeated, tag = "5")]
    pub idontwant: Vec<ControlIDontWant>,
}

/// "I have these message IDs in `topic_id`."
#[derive(Clone, PartialEq, prost::Message)]
pub struct ControlIHave {
    #[prost(string, optional, tag = "1")]
    pub topic_id: Option<String>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub message_ids: Vec<Vec<u8>>,
}

/// "Send me these messages."
#[derive(Clone, PartialEq, prost::Message)]
pub struct ControlIWant {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub message_ids: Vec<Vec<u8>>,
}

/// "Add me to your mesh for `topic_id`."
#[derive(Clone, PartialEq, prost::Message)]
pub struct ControlGraft {
    #[prost(string, optional, tag = "1")]
    pub topic_id: Option<String>,
}

/// "You are out of my mesh for `topic_id`": v1.1 adds peer exchange and a backoff (seconds).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ControlPrune {
    #[prost(string, optional, tag = "1")]
    pub topic_id: Option<String>,
    #[prost(message, repeated, tag = "2")]
    pub peers: Vec<PeerInfo>,
    #[prost(uint64, optional, tag = "3")]
    pub backoff: Option<u64>,
}

/// A peer offered in PRUNE peer exchange, optionally with its signed peer record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PeerInfo {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub peer_id: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub signed_peer_record: Option<Vec<u8>>,
}

/// "Do not send me these (large) messages: I already have them" (v1.2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ControlIDontWant {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub message_ids: Vec<Vec<u8>>,
}
