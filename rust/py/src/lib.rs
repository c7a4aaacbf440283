//! The `rapidp2p._core` extension: glue only. Each submodule file registers the functions and
//! classes that wrap one pure crate; errors map to exceptions defined in `rapidp2p.exceptions`.

use pyo3::prelude::*;

mod alloc;
mod conn;
mod errors;
mod kad;
mod noise;
mod pnet;
mod proto;
mod pubsub;
mod tls;
mod wire;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    wire::register(m)?;
    proto::register(m)?;
    noise::register(m)?;
    tls::register(m)?;
    conn::register(m)?;
    alloc::register(m)?;
    pubsub::register(m)?;
    kad::register(m)?;
    pnet::register(m)?;
    Ok(())
}
