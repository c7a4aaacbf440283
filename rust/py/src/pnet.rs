//! Glue for `rapidp2p-pnet`: the swarm key codec and the `Protector` class, plus the hooks
//! `conn.rs` calls so the muxed phase applies the keystream inside its own calls.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rapidp2p_pnet::{PreSharedKey, Protector, KEY_LEN, NONCE_LEN};

use crate::errors::py_err;

fn psk_of(key: &[u8]) -> PyResult<PreSharedKey> {
    let key: [u8; KEY_LEN] = key
        .try_into()
        .map_err(|_| PyValueError::new_err("a pre-shared key is 32 bytes"))?;
    Ok(PreSharedKey::new(key))
}

/// Parses a `/key/swarm/psk/1.0.0/` file; returns the 32-byte key.
#[pyfunction]
fn parse_swarm_key<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let key = PreSharedKey::parse(data).map_err(|e| py_err(py, "SwarmKeyError", e.to_string()))?;
    Ok(PyBytes::new(py, key.as_bytes()))
}

/// Formats a 32-byte key as a `/base16/` swarm key file (kubo's `swarm.key`).
#[pyfunction]
fn format_swarm_key(key: &[u8]) -> PyResult<String> {
    Ok(psk_of(key)?.to_file())
}

/// The private-network protector of one connection. Used from Python during the upgrade
/// (`encrypt`/`decrypt`), then moved into a `Connection` with `Connection.set_protector`.
#[pyclass(module = "rapidp2p._core", name = "Protector")]
pub struct PyProtector {
    inner: Option<Protector>,
}

impl PyProtector {
    fn get(&mut self, py: Python<'_>) -> PyResult<&mut Protector> {
        self.inner.as_mut().ok_or_else(|| {
            py_err(
                py,
                "LocalProtocolError",
                "the protector was moved into the connection".into(),
            )
        })
    }

    /// Moves the protector out (for a `Connection`); the remote's nonce must be complete.
    pub fn take(&mut self, py: Python<'_>) -> PyResult<Protector> {
        if self.get(py)?.remote_nonce().is_none() {
            return Err(py_err(
                py,
                "LocalProtocolError",
                "the remote's pnet nonce has not arrived yet".into(),
            ));
        }
        self.inner
            .take()
            .ok_or_else(|| PyValueError::new_err("protector already moved"))
    }
}

#[pymethods]
impl PyProtector {
    /// `key`: the 32-byte PSK; `nonce`: our 24-byte nonce (default: from the OS RNG).
    #[new]
    #[pyo3(signature = (key, nonce = None))]
    fn new(key: &[u8], nonce: Option<&[u8]>) -> PyResult<Self> {
        let psk = psk_of(key)?;
        let inner = match nonce {
            Some(n) => {
                let n: [u8; NONCE_LEN] = n
                    .try_into()
                    .map_err(|_| PyValueError::new_err("a pnet nonce is 24 bytes"))?;
                Protector::new(&psk, n)
            }
            None => Protector::with_random_nonce(&psk)
                .map_err(|e| PyValueError::new_err(format!("OS RNG: {e}")))?,
        };
        Ok(Self { inner: Some(inner) })
    }

    /// Our nonce: the first bytes to send.
    #[getter]
    fn local_nonce<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.get(py)?.local_nonce()))
    }

    /// The remote's nonce once complete, else None.
    #[getter]
    fn remote_nonce<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(self.get(py)?.remote_nonce().map(|n| PyBytes::new(py, n)))
    }

    /// How many bytes of the remote's nonce arrived (24 once complete).
    #[getter]
    fn remote_nonce_received(&mut self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.get(py)?.remote_nonce_received())
    }

    /// Returns `data` encrypted with our keystream.
    fn encrypt<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let p = self.get(py)?;
        let mut buf = data.to_vec();
        p.encrypt(&mut buf);
        Ok(PyBytes::new(py, &buf))
    }

    /// Returns the plaintext of received `data`, after taking the remote's nonce from the
    /// front of the stream (so the first call may return fewer bytes, or none).
    fn decrypt<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let p = self.get(py)?;
        let mut buf = data.to_vec();
        let skip = p.decrypt(&mut buf);
        Ok(PyBytes::new(py, &buf[skip..]))
    }

    /// True once moved into a `Connection`.
    #[getter]
    fn moved(&self) -> bool {
        self.inner.is_none()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyProtector>()?;
    m.add_function(wrap_pyfunction!(parse_swarm_key, m)?)?;
    m.add_function(wrap_pyfunction!(format_swarm_key, m)?)?;
    m.add("PNET_NONCE_LEN", NONCE_LEN)?;
    Ok(())
}
