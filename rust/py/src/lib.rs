//! The `rapidp2p._core` extension: glue only. Each file registers the functions and classes
//! that wrap one pure crate into one submodule (`_core.wire`, `_core.peer_id`, `_core.proto`,
//! `_core.conn`, `_core.pubsub`, `_core.kad`, `_core.quic`, `_core.webrtc`, `_core.crypto`); errors map to exceptions defined in
//! `rapidp2p.exceptions`. Each submodule is also entered in `sys.modules`, so both
//! `from rapidp2p._core import kad` and `import rapidp2p._core.kad` work.

use pyo3::prelude::*;
use pyo3::types::PyDict;

mod alloc;
mod conn;
mod crypto;
mod errors;
mod kad;
mod noise;
mod pnet;
mod proto;
mod pubsub;
mod quic;
mod tls;
mod webrtc;
mod wire;
mod yamux;

/// Creates `_core.<name>`, fills it with `register`, attaches it and enters it in `sys.modules`.
fn submodule<'py>(
    parent: &Bound<'py, PyModule>,
    modules: &Bound<'py, PyDict>,
    name: &str,
    register: impl FnOnce(&Bound<'py, PyModule>) -> PyResult<()>,
) -> PyResult<Bound<'py, PyModule>> {
    let py = parent.py();
    let module = PyModule::new(py, name)?;
    register(&module)?;
    let qualified = format!("rapidp2p._core.{name}");
    module.setattr("__name__", &qualified)?;
    parent.add(name, &module)?;
    modules.set_item(qualified, &module)?;
    Ok(module)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let sys_modules = py.import("sys")?.getattr("modules")?;
    let modules = sys_modules.cast::<PyDict>()?;
    submodule(m, modules, "wire", wire::register)?;
    submodule(m, modules, "peer_id", wire::register_peer_id)?;
    submodule(m, modules, "proto", proto::register)?;
    submodule(m, modules, "conn", |c| {
        noise::register(c)?;
        tls::register(c)?;
        conn::register(c)?;
        alloc::register(c)?;
        pnet::register(c)?;
        yamux::register(c)
    })?;
    submodule(m, modules, "pubsub", pubsub::register)?;
    submodule(m, modules, "kad", kad::register)?;
    submodule(m, modules, "quic", quic::register)?;
    submodule(m, modules, "webrtc", webrtc::register)?;
    submodule(m, modules, "crypto", crypto::register)?;
    Ok(())
}
