//! Glue for `rapidp2p-noise`: the `NoiseHandshake` class (three XX messages, payloads built in
//! Python) and `NoiseTransport` (frame encryption, used directly by tests and benchmarks; the
//! connection glue takes the Rust `Transport` out of a finished handshake instead).
//! Output is written straight into new `bytes`; bulk crypto runs without the GIL.

use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rapidp2p_noise::{encrypted_len, scan_frames, Handshake, NoiseError, Transport, DHLEN};

use crate::errors::py_err;

/// Crypto on at least this many bytes runs with the GIL released. Measured here (see
/// `benches/test_bench_noise.py`): a release/re-acquire pair costs about as much as sealing
/// a few hundred bytes, and under contention re-acquiring can wait a whole switch interval,
/// so small frames keep the GIL and bulk writes let other threads run.
static GIL_RELEASE_MIN: AtomicUsize = AtomicUsize::new(16 * 1024);

fn release_gil(len: usize) -> bool {
    len >= GIL_RELEASE_MIN.load(Ordering::Relaxed)
}

fn handshake_err(py: Python<'_>, e: NoiseError) -> PyErr {
    py_err(py, "HandshakeError", e.to_string())
}

fn transport_err(py: Python<'_>, e: NoiseError) -> PyErr {
    py_err(py, "DecryptionError", e.to_string())
}

fn key32(name: &str, data: &[u8]) -> PyResult<[u8; DHLEN]> {
    data.try_into()
        .map_err(|_| PyValueError::new_err(format!("{name} must be {DHLEN} bytes")))
}

/// One side of a libp2p Noise XX handshake (`Noise_XX_25519_ChaChaPoly_SHA256`).
#[pyclass(module = "rapidp2p._core", name = "NoiseHandshake")]
pub struct NoiseHandshake {
    inner: Option<Handshake>,
}

impl NoiseHandshake {
    fn live(&mut self, py: Python<'_>) -> PyResult<&mut Handshake> {
        self.inner.as_mut().ok_or_else(|| {
            py_err(
                py,
                "HandshakeError",
                "handshake already turned into a transport".into(),
            )
        })
    }

    /// Moves the transport cipher pair out of a finished handshake (for the connection glue).
    /// The handshake object is spent afterwards.
    pub(crate) fn take_transport(&mut self) -> PyResult<Transport> {
        Python::attach(|py| self.take_transport_py(py))
    }

    fn take_transport_py(&mut self, py: Python<'_>) -> PyResult<Transport> {
        match self.inner.take() {
            None => Err(py_err(
                py,
                "HandshakeError",
                "handshake already turned into a transport".into(),
            )),
            Some(hs) if !hs.is_finished() => {
                self.inner = Some(hs);
                Err(handshake_err(py, NoiseError::NotFinished))
            }
            Some(hs) => hs.into_transport().map_err(|e| handshake_err(py, e)),
        }
    }
}

#[pymethods]
impl NoiseHandshake {
    /// `static_secret`: our 32-byte x25519 secret (generated when None); `prologue`: mixed into
    /// the handshake hash (libp2p uses an empty one).
    #[new]
    #[pyo3(signature = (initiator, static_secret = None, prologue = None))]
    #[pyo3(text_signature = "(initiator, static_secret=None, prologue=b'')")]
    fn new(
        py: Python<'_>,
        initiator: bool,
        static_secret: Option<&[u8]>,
        prologue: Option<&[u8]>,
    ) -> PyResult<Self> {
        let secret = static_secret
            .map(|s| key32("static_secret", s))
            .transpose()?;
        let hs = Handshake::new(initiator, secret, prologue.unwrap_or_default())
            .map_err(|e| handshake_err(py, e))?;
        Ok(Self { inner: Some(hs) })
    }

    /// The next handshake message carrying `payload`, without the 2-byte length prefix.
    fn write_message<'py>(
        &mut self,
        py: Python<'py>,
        payload: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let msg = self
            .live(py)?
            .write_message(payload)
            .map_err(|e| handshake_err(py, e))?;
        Ok(PyBytes::new(py, &msg))
    }

    /// Processes one received handshake message body; returns its decrypted payload.
    fn read_message<'py>(
        &mut self,
        py: Python<'py>,
        message: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let payload = self
            .live(py)?
            .read_message(message)
            .map_err(|e| handshake_err(py, e))?;
        Ok(PyBytes::new(py, &payload))
    }

    /// Our static x25519 public key (what the libp2p payload signature covers).
    #[getter]
    fn local_static_public<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let key = self.live(py)?.local_static_public();
        Ok(PyBytes::new(py, &key))
    }

    /// The peer's static x25519 public key once its message carrying `s` was read.
    #[getter]
    fn remote_static_public<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = self.live(py)?.remote_static_public();
        Ok(key.map(|k| PyBytes::new(py, &k)))
    }

    /// The handshake hash so far (a channel binding once finished).
    #[getter]
    fn handshake_hash<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let h = self.live(py)?.handshake_hash();
        Ok(PyBytes::new(py, &h))
    }

    /// True once all three messages were written or read (or the transport was taken).
    #[getter]
    fn is_finished(&self) -> bool {
        match &self.inner {
            Some(hs) => hs.is_finished(),
            None => true,
        }
    }

    /// True on the dialer's side.
    #[getter]
    fn is_initiator(&mut self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.live(py)?.is_initiator())
    }

    /// True when the next call should be `write_message`.
    #[getter]
    fn is_my_turn(&mut self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.live(py)?.is_my_turn())
    }

    /// Splits a finished handshake into a standalone `NoiseTransport` (spends the handshake).
    #[pyo3(name = "into_transport")]
    fn split_transport(&mut self, py: Python<'_>) -> PyResult<NoiseTransport> {
        Ok(NoiseTransport {
            inner: self.take_transport_py(py)?,
            pending: Vec::new(),
        })
    }
}

/// The post-handshake cipher pair with libp2p framing (2-byte length, at most 65535 bytes).
#[pyclass(module = "rapidp2p._core", name = "NoiseTransport")]
pub struct NoiseTransport {
    inner: Transport,
    /// Received bytes of an incomplete frame, kept for the next `decrypt`.
    pending: Vec<u8>,
}

/// Decrypts every complete frame of `input` into a new `bytes`; returns it and bytes consumed.
fn decrypt_frames<'py>(
    py: Python<'py>,
    transport: &mut Transport,
    input: &[u8],
) -> PyResult<(Bound<'py, PyBytes>, usize)> {
    let (_, plain_len) = scan_frames(input);
    let mut consumed = 0;
    let out = PyBytes::new_with(py, plain_len, |buf| {
        let result = if release_gil(input.len()) {
            py.detach(|| transport.decrypt_to_slice(input, buf))
        } else {
            transport.decrypt_to_slice(input, buf)
        };
        consumed = result.map_err(|e| transport_err(py, e))?.0;
        Ok(())
    })?;
    Ok((out, consumed))
}

#[pymethods]
impl NoiseTransport {
    /// Encrypts `data` into length-prefixed frames (split at 65519 plaintext bytes).
    fn encrypt<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let transport = &mut self.inner;
        PyBytes::new_with(py, encrypted_len(data.len()), |buf| {
            let result = if release_gil(data.len()) {
                py.detach(|| transport.encrypt_to_slice(data, buf))
            } else {
                transport.encrypt_to_slice(data, buf)
            };
            result.map(|_| ()).map_err(|e| transport_err(py, e))
        })
    }

    /// Decrypts every complete frame of the bytes received so far and returns the plaintext; an
    /// incomplete trailing frame is kept for the next call. On DecryptionError the buffered
    /// input is dropped and the receive nonce stays at the bad frame.
    fn decrypt<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        if self.pending.is_empty() {
            let result = decrypt_frames(py, &mut self.inner, data);
            let (out, consumed) = result?;
            self.pending.extend_from_slice(&data[consumed..]);
            return Ok(out);
        }
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(data);
        let (out, consumed) = decrypt_frames(py, &mut self.inner, &input)?;
        input.drain(..consumed);
        self.pending = input;
        Ok(out)
    }

    /// Bytes of an incomplete frame waiting for more input.
    #[getter]
    fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Frames sent so far.
    #[getter]
    fn send_nonce(&self) -> u64 {
        self.inner.send_nonce()
    }

    /// Frames received so far.
    #[getter]
    fn recv_nonce(&self) -> u64 {
        self.inner.recv_nonce()
    }

    /// The final handshake hash.
    #[getter]
    fn handshake_hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.handshake_hash())
    }

    /// The peer's authenticated static x25519 public key.
    #[getter]
    fn remote_static_public<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.remote_static_public())
    }
}

/// Reads, and with an argument sets, the size from which Noise crypto releases the GIL
/// (a tuning knob for benchmarks; returns the previous value).
#[pyfunction]
#[pyo3(signature = (value = None))]
fn _noise_gil_release_min(value: Option<usize>) -> usize {
    match value {
        Some(v) => GIL_RELEASE_MIN.swap(v, Ordering::Relaxed),
        None => GIL_RELEASE_MIN.load(Ordering::Relaxed),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NoiseHandshake>()?;
    m.add_class::<NoiseTransport>()?;
    m.add_function(wrap_pyfunction!(_noise_gil_release_min, m)?)?;
    m.add("NOISE_PROTOCOL_NAME", "Noise_XX_25519_ChaChaPoly_SHA256")?;
    m.add(
        "NOISE_MAX_FRAME_PLAINTEXT",
        rapidp2p_noise::MAX_FRAME_PLAINTEXT,
    )?;
    Ok(())
}
