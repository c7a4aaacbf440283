//! One place that turns Rust errors into the exception classes of `rapidp2p.exceptions`.
//! The hierarchy lives in Python so users can import and catch it without the extension.

use pyo3::prelude::*;

/// Builds an instance of `rapidp2p.exceptions.<class_name>` carrying `message`.
pub fn py_err(py: Python<'_>, class_name: &str, message: String) -> PyErr {
    match py
        .import("rapidp2p.exceptions")
        .and_then(|m| m.getattr(class_name))
        .and_then(|cls| cls.call1((message.clone(),)))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}
