//! The `rapidp2p._core` extension: glue only. Each submodule file registers the functions and
//! classes that wrap one pure crate; errors map to exceptions defined in `rapidp2p.exceptions`.

use pyo3::prelude::*;

mod errors;
mod wire;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    wire::register(m)?;
    Ok(())
}
