//! The yamux (and mplex) defaults as Python constants, read from `rapidp2p_yamux::Config::default()`,
//! so Python (`MuxerOptions`) and the glue's `Connection` signature never restate them.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use rapidp2p_conn::yamux::Config;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let c = Config::default();
    let d = PyDict::new(m.py());
    d.set_item("max_streams", c.max_streams)?;
    d.set_item("initial_window", c.initial_window)?;
    d.set_item("max_window", c.max_window)?;
    d.set_item("ack_backlog", c.ack_backlog)?;
    d.set_item("keepalive_interval", c.keepalive_interval)?;
    d.set_item("min_autotune_rtt", c.min_autotune_rtt)?;
    m.add("YAMUX_DEFAULTS", d)?;
    let mc = rapidp2p_conn::mplex::Config::default();
    let d = PyDict::new(m.py());
    d.set_item("max_buffered", mc.max_buffered)?;
    d.set_item("max_frame", mc.max_frame)?;
    m.add("MPLEX_DEFAULTS", d)?;
    m.add("MPLEX_PROTOCOL_ID", rapidp2p_conn::mplex::PROTOCOL_ID)?;
    Ok(())
}
