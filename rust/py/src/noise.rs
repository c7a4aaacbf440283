//! Glue for the `noise` layer (filled in by its owner; registers nothing yet).

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
