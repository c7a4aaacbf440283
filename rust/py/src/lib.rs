//! The `rapidp2p._core` extension: glue only. Each file registers the functions and classes
//! that wrap one pure crate into one submodule (`_core.wire`, `_core.peer_id`, `_core.proto`,
//! `_core.conn`, `_core.pubsub`, `_core.kad`); errors map to exceptions defined in
//! `rapidp2p.exceptions`. Each submodule is also entered in `sys.modules`, so both
//! `from rapidp2p._core import kad` and `import rapidp2p._core.kad` work.

use pyo3::prelude::*;
use pyo3::types::PyDict;

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
mod yamux;

/// Names of `_core.conn` also bound at the top level while the connection driver
/// (`rapidp2p._aio`, the upgrader, the security modules) moves to `_core.conn`.
const CONN_ALIASES: &[&str] = &[
    "Connection",
    "NoiseHandshake",
    "NoiseTransport",
    "TlsHandshake",
    "TlsIdentity",
    "TlsCertKey",
    "Protector",
    "tune_allocator",
    "EV_STREAM_OPENED",
    "EV_DATA",
    "EV_FIN",
    "EV_RESET",
    "EV_WINDOW",
    "EV_STREAM_ACKED",
    "EV_PING_RTT",
    "EV_GO_AWAY",
    "EV_MUXER",
];

/// Names of `_core.proto` the Noise channel (`security/noise.py`) still reads at the top level.
const PROTO_ALIASES: &[&str] = &["encode_noise_payload", "decode_noise_payload"];

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

fn alias(
    target: &Bound<'_, PyModule>,
    source: &Bound<'_, PyModule>,
    names: &[&str],
) -> PyResult<()> {
    for name in names {
        target.add(*name, source.getattr(*name)?)?;
    }
    Ok(())
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let sys_modules = py.import("sys")?.getattr("modules")?;
    let modules = sys_modules.cast::<PyDict>()?;
    submodule(m, modules, "wire", wire::register)?;
    submodule(m, modules, "peer_id", wire::register_peer_id)?;
    let proto_mod = submodule(m, modules, "proto", proto::register)?;
    let conn_mod = submodule(m, modules, "conn", |c| {
        noise::register(c)?;
        tls::register(c)?;
        conn::register(c)?;
        alloc::register(c)?;
        pnet::register(c)?;
        yamux::register(c)
    })?;
    submodule(m, modules, "pubsub", pubsub::register)?;
    submodule(m, modules, "kad", kad::register)?;
    alias(m, &conn_mod, CONN_ALIASES)?;
    alias(m, &proto_mod, PROTO_ALIASES)?;
    Ok(())
}
