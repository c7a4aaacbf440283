//! Sans-IO libp2p wire codecs. No sockets, no clock, no pyo3.

pub mod error;
pub mod keyproto;
pub mod varint;

pub use error::{Result, WireError};
