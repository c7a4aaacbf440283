//! The pubsub RPC of libp2p (`pubsub/README.md`, `gossipsub-v1.0.md` .. `v1.2.md`): one
//! message type carried by `/floodsub/1.0.0` and every `/meshsub/*` version.
//!
//! The structs are hand-written `prost` derives (no protoc, no build script). Decoding bounds
//! the input size and the number of repeated entries before anything is handed on, and never
//! panics: every byte comes from an untrusted peer. The control logic (meshes, scores, gossip)
//! lives in Python; this crate only moves bytes.

mod codec;
mod messages;

pub use codec::{
    append_field, decode_rpc, encode_control, encode_message, encode_rpc, signing_bytes,
    DecodeLimits, RpcError, DEFAULT_MAX_RPC_SIZE, SIGNING_PREFIX,
};
pub use messages::{
    ControlGraft, ControlIDontWant, ControlIHave, ControlIWant, ControlMessage, ControlPrune,
    Message, PeerInfo, Rpc, SubOpts,
};
