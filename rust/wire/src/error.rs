//! One error type for every codec of the crate; the glue maps each variant to one Python class.

use thiserror::Error;

use crate::varint::VarintError;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error(transparent)]
    Varint(#[from] VarintError),
    #[error("frame length {len} exceeds the cap of {max} bytes")]
    FrameTooLarge { len: u64, max: u64 },
    #[error("{0}")]
    Multibase(String),
    #[error("{0}")]
    Multihash(String),
    #[error("{0}")]
    Cid(String),
    #[error("{0}")]
    Multiaddr(String),
    #[error("{0}")]
    Protobuf(String),
    #[error("{0}")]
    PeerId(String),
    /// Input ended inside a varint or a frame body (the caller saw EOF).
    #[error("{0}")]
    Eof(String),
}

pub type Result<T> = std::result::Result<T, WireError>;
