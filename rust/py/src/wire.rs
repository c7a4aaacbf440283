//! Glue for `rapidp2p-wire`: varints, framing, key protobufs, multibase, multihash, CID,
//! peer IDs and multiaddrs. Every function does one whole job per call.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rapidp2p_wire::{keyproto, varint, WireError};

use crate::errors::py_err;

/// Maps the crate's error to its exception class in `rapidp2p.exceptions`.
fn wire_err(py: Python<'_>, e: WireError) -> PyErr {
    let class = match &e {
        WireError::Varint(_) => "VarintError",
        WireError::FrameTooLarge { .. } => "FrameTooLarge",
        WireError::Multibase(_) => "MultibaseError",
        WireError::Multihash(_) => "MultihashError",
        WireError::Cid(_) => "CidError",
        WireError::Multiaddr(_) => "MultiaddrError",
        WireError::Protobuf(_) => "ProtobufError",
        WireError::PeerId(_) => "PeerIdError",
    };
    py_err(py, class, e.to_string())
}

/// Encodes a non-negative integer below 2**63 as an unsigned varint.
#[pyfunction]
fn varint_encode<'py>(py: Python<'py>, value: u64) -> PyResult<Bound<'py, PyBytes>> {
    if value >= 1 << 63 {
        return Err(py_err(
            py,
            "VarintError",
            "varint value must be below 2**63".into(),
        ));
    }
    let mut out = Vec::with_capacity(varint::MAX_VARINT_LEN);
    varint::encode(value, &mut out);
    Ok(PyBytes::new(py, &out))
}

/// Decodes one varint from the start of `data`; returns (value, bytes consumed).
#[pyfunction]
fn varint_decode(py: Python<'_>, data: &[u8]) -> PyResult<(u64, usize)> {
    varint::decode(data).map_err(|e| wire_err(py, e.into()))
}

/// Encodes a PublicKey/PrivateKey protobuf (Type, Data) deterministically.
#[pyfunction]
fn encode_key_protobuf<'py>(
    py: Python<'py>,
    key_type: u64,
    data: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::new();
    keyproto::encode(key_type, data, &mut out).map_err(|e| wire_err(py, e))?;
    Ok(PyBytes::new(py, &out))
}

/// Decodes a PublicKey/PrivateKey protobuf strictly; returns (key_type, data).
#[pyfunction]
fn decode_key_protobuf<'py>(py: Python<'py>, data: &[u8]) -> PyResult<(u64, Bound<'py, PyBytes>)> {
    let (key_type, body) = keyproto::decode(data).map_err(|e| wire_err(py, e))?;
    Ok((key_type, PyBytes::new(py, body)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(varint_encode, m)?)?;
    m.add_function(wrap_pyfunction!(varint_decode, m)?)?;
    m.add_function(wrap_pyfunction!(encode_key_protobuf, m)?)?;
    m.add_function(wrap_pyfunction!(decode_key_protobuf, m)?)?;
    Ok(())
}
