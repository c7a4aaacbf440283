//! `_core.crypto`: Ed25519 (the libp2p default identity key) on ring, so a default host signs
//! and verifies without loading `cryptography` (its OpenSSL costs ~8 MiB of RSS at import).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

/// An Ed25519 key pair from its 32-byte seed (the RFC 8032 private key).
#[pyclass(module = "rapidp2p._core.crypto", name = "Ed25519Keypair", frozen)]
pub struct PyEd25519Keypair {
    inner: Ed25519KeyPair,
}

#[pymethods]
impl PyEd25519Keypair {
    #[new]
    fn new(seed: &[u8]) -> PyResult<Self> {
        if seed.len() != 32 {
            return Err(PyValueError::new_err("an Ed25519 seed is 32 bytes"));
        }
        let inner = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| PyValueError::new_err(format!("invalid Ed25519 seed: {e}")))?;
        Ok(Self { inner })
    }

    /// The 32-byte public key.
    fn public<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.public_key().as_ref())
    }

    /// The 64-byte deterministic signature of `data`.
    fn sign<'py>(&self, py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.sign(data).as_ref())
    }
}

/// True when `signature` is `public`'s valid Ed25519 signature of `data`.
#[pyfunction]
fn ed25519_verify(public: &[u8], data: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public)
        .verify(data, signature)
        .is_ok()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEd25519Keypair>()?;
    m.add_function(wrap_pyfunction!(ed25519_verify, m)?)?;
    Ok(())
}
