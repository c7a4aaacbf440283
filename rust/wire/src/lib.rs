//! Sans-IO libp2p wire codecs. No sockets, no clock, no pyo3.

pub mod varint;
