//! Sans-IO libp2p wire codecs: varints, length-prefixed frames, key protobufs, multibase,
//! multihash, CIDs, peer IDs and multiaddrs. No sockets, no clock, no pyo3. Every decoder
//! bounds lengths read from input before using them and returns `WireError`, never panics.

pub mod base58;
pub mod cid;
pub mod error;
pub mod frame;
pub mod keyproto;
pub mod multiaddr;
pub mod multibase;
pub mod multihash;
pub mod peerid;
pub mod varint;

pub use error::{Result, WireError};
