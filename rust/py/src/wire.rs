//! Glue for `rapidp2p-wire`: varints and length-prefixed framing.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rapidp2p_wire::varint;

use crate::errors::py_err;

fn varint_err(py: Python<'_>, e: varint::VarintError) -> PyErr {
    py_err(py, "VarintError", e.to_string())
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
    varint::decode(data).map_err(|e| varint_err(py, e))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(varint_encode, m)?)?;
    m.add_function(wrap_pyfunction!(varint_decode, m)?)?;
    Ok(())
}
