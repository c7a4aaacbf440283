//! Glue for `rapidp2p-tls`: the certificate key (Python signs its SPKI with the identity key),
//! the host's TLS identity, and the handshake; the connection glue takes the Rust transport
//! out of a finished handshake. Conversion only.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rapidp2p_conn::tls::{CertKey, Handshake, Identity, TlsError, Transport};

use crate::errors::py_err;

/// Maps a TLS error to its exception class in `rapidp2p.exceptions`.
pub(crate) fn tls_err(py: Python<'_>, e: &TlsError) -> PyErr {
    let class = match e {
        TlsError::PeerIdMismatch { .. } => "PeerIdMismatch",
        e if e.is_certificate_error() => "CertificateError",
        TlsError::Handshake(_) | TlsError::Alert(_) => "HandshakeError",
        TlsError::Record(_) => "DecryptionError",
        TlsError::Local(_) => "LocalProtocolError",
        _ => "HandshakeError",
    };
    py_err(py, class, e.to_string())
}

/// A fresh certificate key: sign `message_to_sign` with the identity key, then `certify`.
#[pyclass(module = "rapidp2p._core", name = "TlsCertKey")]
pub struct PyCertKey {
    inner: Option<CertKey>,
}

impl PyCertKey {
    fn take(&mut self, py: Python<'_>) -> PyResult<CertKey> {
        self.inner.take().ok_or_else(|| {
            py_err(
                py,
                "LocalProtocolError",
                "certificate key already used".into(),
            )
        })
    }
}

#[pymethods]
impl PyCertKey {
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let key = CertKey::generate().map_err(|e| tls_err(py, &e))?;
        Ok(Self { inner: Some(key) })
    }

    /// "libp2p-tls-handshake:" + the certificate's SubjectPublicKeyInfo DER.
    #[getter]
    fn message_to_sign<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let key = self.inner.as_ref().ok_or_else(|| {
            py_err(
                py,
                "LocalProtocolError",
                "certificate key already used".into(),
            )
        })?;
        Ok(PyBytes::new(py, &key.message_to_sign()))
    }

    /// Builds the certificate around `signature` (checked first); spends the key.
    fn certify(
        &mut self,
        py: Python<'_>,
        public_key: &[u8],
        signature: &[u8],
    ) -> PyResult<PyIdentity> {
        let inner = self
            .take(py)?
            .certify(public_key, signature)
            .map_err(|e| tls_err(py, &e))?;
        Ok(PyIdentity { inner })
    }

    /// Tests of hostile peers only: a certificate whose extension is unchecked (None: none).
    #[pyo3(signature = (public_key = None, signature = None))]
    fn _certify_unchecked(
        &mut self,
        py: Python<'_>,
        public_key: Option<&[u8]>,
        signature: Option<&[u8]>,
    ) -> PyResult<PyIdentity> {
        let ext = match (public_key, signature) {
            (Some(k), Some(s)) => Some((k, s)),
            (None, None) => None,
            _ => return Err(PyValueError::new_err("give both or neither")),
        };
        let inner = self
            .take(py)?
            .certify_unchecked(ext)
            .map_err(|e| tls_err(py, &e))?;
        Ok(PyIdentity { inner })
    }
}

/// The host's certificate and key, shared by its TLS connections.
#[pyclass(module = "rapidp2p._core", name = "TlsIdentity", frozen)]
pub struct PyIdentity {
    pub(crate) inner: Identity,
}

#[pymethods]
impl PyIdentity {
    /// The certificate (DER).
    #[getter]
    fn certificate<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.certificate())
    }

    /// The peer id (bytes) the certificate proves.
    #[getter]
    fn peer_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.peer_id())
    }
}

/// One side of a libp2p TLS 1.3 handshake over a byte stream.
#[pyclass(module = "rapidp2p._core", name = "TlsHandshake")]
pub struct PyTlsHandshake {
    inner: Option<Handshake>,
}

impl PyTlsHandshake {
    fn live(&mut self, py: Python<'_>) -> PyResult<&mut Handshake> {
        self.inner.as_mut().ok_or_else(|| {
            py_err(
                py,
                "LocalProtocolError",
                "handshake already turned into a transport".into(),
            )
        })
    }

    /// Moves the record layer out of a finished handshake (for the connection glue).
    pub(crate) fn take_transport(&mut self) -> PyResult<Transport> {
        Python::attach(|py| {
            let hs = self.inner.take().ok_or_else(|| {
                py_err(
                    py,
                    "LocalProtocolError",
                    "handshake already turned into a transport".into(),
                )
            })?;
            hs.into_transport().map_err(|e| tls_err(py, &e))
        })
    }
}

#[pymethods]
impl PyTlsHandshake {
    /// `expected_peer`: the dialled peer id (bytes; dialer only); `muxers`: offered through
    /// ALPN before `libp2p` (early muxer negotiation); `now`: the wall-clock time in Unix
    /// seconds the peer's certificate is checked at (None: this machine's clock).
    #[new]
    #[pyo3(signature = (identity, initiator, expected_peer = None, muxers = Vec::new(), now = None))]
    fn new(
        py: Python<'_>,
        identity: &PyIdentity,
        initiator: bool,
        expected_peer: Option<&[u8]>,
        muxers: Vec<String>,
        now: Option<i64>,
    ) -> PyResult<Self> {
        let muxers: Vec<&str> = muxers.iter().map(String::as_str).collect();
        let now = now.unwrap_or_else(unix_now);
        let hs = if initiator {
            Handshake::client(&identity.inner, expected_peer, &muxers, now)
        } else {
            if expected_peer.is_some() {
                return Err(PyValueError::new_err("expected_peer is for the dialer"));
            }
            Handshake::server(&identity.inner, &muxers, now)
        };
        Ok(Self {
            inner: Some(hs.map_err(|e| tls_err(py, &e))?),
        })
    }

    /// Processes received bytes; a refusal raises its typed error (the alert for the peer
    /// is then in `data_to_send()`).
    fn receive(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        self.live(py)?.receive(data).map_err(|e| tls_err(py, &e))
    }

    /// Every pending handshake byte (or the alert after a failure).
    fn data_to_send<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::new();
        self.live(py)?
            .write_output(&mut out)
            .map_err(|e| tls_err(py, &e))?;
        Ok(PyBytes::new(py, &out))
    }

    /// True once the handshake is complete on our side.
    #[getter]
    fn is_finished(&self) -> bool {
        self.inner.as_ref().is_none_or(Handshake::is_finished)
    }

    /// `(peer_id, public_key_protobuf, muxer or None)` the peer proved (once finished).
    fn remote<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, Option<String>)> {
        let r = self.live(py)?.remote().map_err(|e| tls_err(py, &e))?;
        Ok((
            PyBytes::new(py, &r.peer_id),
            PyBytes::new(py, &r.public_key),
            r.muxer,
        ))
    }

    /// Application data that arrived with the handshake (handed out once).
    fn take_early_data<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.live(py)?.take_early_data()))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCertKey>()?;
    m.add_class::<PyIdentity>()?;
    m.add_class::<PyTlsHandshake>()?;
    m.add(
        "TLS_SIGNING_PREFIX",
        PyBytes::new(m.py(), rapidp2p_conn::tls::SIGNING_PREFIX),
    )?;
    Ok(())
}

/// This machine's wall-clock time in Unix seconds: the glue is where IO (the clock) happens;
/// the crates take the time as an argument.
pub fn unix_now() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
