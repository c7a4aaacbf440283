//! Glue for `rapidp2p-conn`: the `Connection` class converts Python buffers and events and
//! releases the GIL around bulk crypto; every decision lives in the pure crate.
//!
//! Copies on the data path: sending, bodies of 4 KiB and more are queued by reference to the
//! caller's `bytes` (kept alive until the flush) and sealed straight into the new `bytes`
//! `data_to_send` returns; receiving, `receive_into` decrypts in place in the caller's read
//! buffer and copies each stream's plaintext once, into its `bytes`.

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyByteArrayMethods, PyBytes, PyMemoryView};
use rapidp2p_conn::mplex::{self, Error as MplexError};
use rapidp2p_conn::multistream::NegotiationError;
use rapidp2p_conn::upgrade::NoiseConfig;
use rapidp2p_conn::yamux::{Config, Error as MuxError, Event, Role};
use rapidp2p_conn::{
    ConnError, Connection, DataRange, Upgrade, UpgradeConfig, UpgradeError, UpgradeEvent, YAMUX_ID,
};

use crate::errors::py_err;
use crate::noise::NoiseHandshake;
use crate::pnet::PyProtector;
use crate::tls::{PyIdentity, PyTlsHandshake};

/// Bulk crypto of at least this many bytes runs with the GIL released (releasing costs well
/// under a microsecond; ChaCha20-Poly1305 over 16 KiB takes several).
const GIL_RELEASE_MIN: usize = 16 * 1024;

/// Part of a caller's `bytes`, queued by reference: the object is kept alive, so its
/// (immutable) contents stay where they are until the flush drops this.
pub struct SharedBytes {
    _obj: Py<PyBytes>,
    ptr: usize,
    len: usize,
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` lies inside the buffer of `_obj`, a `bytes` object (never
        // mutated, never moved) that this struct keeps alive.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

type Conn = Connection<rapidp2p_conn::Cipher, SharedBytes>;

/// A new `bytes` of `n` bytes filled by `fill` (no zero-fill first; `fill` must write all of
/// it, which every caller here checks).
fn bytes_filled<'py, R>(
    py: Python<'py>,
    n: usize,
    fill: impl FnOnce(&mut [u8]) -> R,
) -> PyResult<(Bound<'py, PyBytes>, R)> {
    let len = ffi::Py_ssize_t::try_from(n).map_err(|_| PyValueError::new_err("too large"))?;
    // SAFETY: PyBytes_FromStringAndSize(NULL, n) returns a new bytes object of n bytes that
    // nothing else references yet; we fill it before anyone can see it.
    unsafe {
        let ptr = ffi::PyBytes_FromStringAndSize(std::ptr::null(), len);
        let obj = Bound::from_owned_ptr_or_err(py, ptr)?;
        let data = ffi::PyBytes_AsString(ptr).cast::<u8>();
        if data.is_null() {
            return Err(PyErr::fetch(py));
        }
        let r = fill(std::slice::from_raw_parts_mut(data, n));
        Ok((obj.cast_into_unchecked::<PyBytes>(), r))
    }
}

type PyEvent = (u8, u32, Py<PyAny>);

pub const EV_STREAM_OPENED: u8 = 0;
pub const EV_DATA: u8 = 1;
pub const EV_FIN: u8 = 2;
pub const EV_RESET: u8 = 3;
pub const EV_WINDOW: u8 = 4;
pub const EV_STREAM_ACKED: u8 = 5;
pub const EV_PING_RTT: u8 = 6;
pub const EV_GO_AWAY: u8 = 7;
/// The muxer negotiation agreed (value: the muxer id); always before the yamux events.
pub const EV_MUXER: u8 = 8;
/// Upgrading connections: the security protocol was agreed (value: its id).
pub const EV_SECURITY: u8 = 9;
/// Upgrading connections: check the remote's Noise signature, then call `verified` (value:
/// `(identity key protobuf, signature, static key)`).
pub const EV_VERIFY: u8 = 10;
/// Upgrading connections: the handshake is done (value: `(protocol, peer id bytes, identity
/// key protobuf, early muxer or None)`); muxer events follow.
pub const EV_SECURED: u8 = 11;

fn mux_err(py: Python<'_>, e: &MuxError) -> PyErr {
    let msg = e.to_string();
    match e {
        MuxError::Protocol(_) => py_err(py, "MuxerError", msg),
        MuxError::StreamLimit(_) | MuxError::AckBacklogFull(_) => {
            py_err(py, "StreamLimitError", msg)
        }
        MuxError::GoAway(code) => {
            let err = py_err(py, "GoAwayError", msg);
            let _ = err.value(py).setattr("code", *code);
            err
        }
        MuxError::StreamClosed(_) => py_err(py, "StreamClosedError", msg),
        MuxError::StreamReset(_) => py_err(py, "StreamResetError", msg),
        MuxError::SessionClosed | MuxError::KeepAliveTimeout => {
            py_err(py, "ConnectionClosedError", msg)
        }
        MuxError::UnknownStream(_) | MuxError::InvalidArgument(_) => {
            py_err(py, "LocalProtocolError", msg)
        }
    }
}

fn mplex_err(py: Python<'_>, e: &MplexError) -> PyErr {
    let msg = e.to_string();
    match e {
        MplexError::Protocol(_) => py_err(py, "MuxerError", msg),
        MplexError::StreamLimit(_) => py_err(py, "StreamLimitError", msg),
        MplexError::GoingAway => {
            let err = py_err(py, "GoAwayError", msg);
            let _ = err.value(py).setattr("code", 0u32);
            err
        }
        MplexError::StreamClosed(_) => py_err(py, "StreamClosedError", msg),
        MplexError::StreamReset(_) => py_err(py, "StreamResetError", msg),
        MplexError::SessionClosed => py_err(py, "ConnectionClosedError", msg),
        MplexError::UnknownStream(_)
        | MplexError::InvalidArgument(_)
        | MplexError::Unsupported(_) => py_err(py, "LocalProtocolError", msg),
    }
}

fn conn_err(py: Python<'_>, e: &ConnError) -> PyErr {
    match e {
        ConnError::Crypto(m) => py_err(py, "DecryptionError", m.clone()),
        ConnError::Negotiation(n) => py_err(py, "NegotiationError", n.to_string()),
        ConnError::Mux(m) => mux_err(py, m),
        ConnError::Mplex(m) => mplex_err(py, m),
        ConnError::Upgrade(u) => upgrade_err(py, u),
    }
}

/// An upgrade failure as the exception the Python upgrader raises for it.
fn upgrade_err(py: Python<'_>, e: &UpgradeError) -> PyErr {
    match e {
        // Worded as multistream-select's Python side words it (rapidp2p.protocols.multistream).
        UpgradeError::Negotiation(NegotiationError::NotSupported(refused)) => {
            let message = match refused.as_slice() {
                [one] => format!("peer refused '{one}'"),
                all => format!("peer refused every protocol: {}", all.join(", ")),
            };
            py_err(py, "ProtocolNotSupported", message)
        }
        UpgradeError::Negotiation(_) => py_err(py, "NegotiationError", e.to_string()),
        UpgradeError::Refused(_) => py_err(py, "ConnectionRefusedByPeer", e.to_string()),
        UpgradeError::PeerIdMismatch(_) => py_err(py, "PeerIdMismatch", e.to_string()),
        UpgradeError::Tls(t) => crate::tls::tls_err(py, t),
        UpgradeError::Local(_) => py_err(py, "LocalProtocolError", e.to_string()),
        UpgradeError::Noise(_) | UpgradeError::Handshake(_) | UpgradeError::BadSignature(_) => {
            py_err(py, "HandshakeError", e.to_string())
        }
    }
}

/// Turns the crate's events into tuples; DATA bytes are the event's own followed by its
/// ranges of `buf`, copied once into a new `bytes`.
fn event_tuples(
    py: Python<'_>,
    upgrade: Vec<UpgradeEvent>,
    muxer: Option<String>,
    events: Vec<Event>,
    ranges: &[DataRange],
    buf: &[u8],
) -> PyResult<Vec<PyEvent>> {
    let mut out = Vec::with_capacity(events.len() + upgrade.len() + 1);
    for e in upgrade {
        out.push(match e {
            UpgradeEvent::Selected(p) => (EV_SECURITY, 0, p.into_pyobject(py)?.into_any().unbind()),
            UpgradeEvent::Verify {
                key,
                signature,
                static_key,
            } => {
                let v = (
                    PyBytes::new(py, &key),
                    PyBytes::new(py, &signature),
                    PyBytes::new(py, &static_key),
                );
                (EV_VERIFY, 0, v.into_pyobject(py)?.into_any().unbind())
            }
            UpgradeEvent::Secured {
                protocol,
                peer,
                key,
                muxer,
            } => {
                let v = (
                    protocol,
                    PyBytes::new(py, &peer),
                    PyBytes::new(py, &key),
                    muxer,
                );
                (EV_SECURED, 0, v.into_pyobject(py)?.into_any().unbind())
            }
        });
    }
    if let Some(m) = muxer {
        out.push((EV_MUXER, 0, m.into_pyobject(py)?.into_any().unbind()));
    }
    for (i, e) in events.into_iter().enumerate() {
        out.push(match e {
            Event::StreamOpened(id) => (EV_STREAM_OPENED, id, py.None()),
            Event::Data(id, own) => {
                let mine = || ranges.iter().filter(move |(j, _)| *j == i);
                let total = own.len() + mine().map(|(_, r)| r.len()).sum::<usize>();
                let (b, ()) = bytes_filled(py, total, |dst| {
                    dst[..own.len()].copy_from_slice(&own);
                    let mut pos = own.len();
                    for (_, r) in mine() {
                        dst[pos..pos + r.len()].copy_from_slice(&buf[r.clone()]);
                        pos += r.len();
                    }
                })?;
                (EV_DATA, id, b.into_any().unbind())
            }
            Event::Fin(id) => (EV_FIN, id, py.None()),
            Event::Reset(id) => (EV_RESET, id, py.None()),
            Event::Window(id, w) => (EV_WINDOW, id, w.into_pyobject(py)?.into_any().unbind()),
            Event::StreamAcked(id) => (EV_STREAM_ACKED, id, py.None()),
            Event::PingRtt(rtt) => (EV_PING_RTT, 0, rtt.into_pyobject(py)?.into_any().unbind()),
            Event::GoAway(code) => (EV_GO_AWAY, 0, code.into_pyobject(py)?.into_any().unbind()),
        });
    }
    Ok(out)
}

/// A secured connection after its handshake, without IO (see `rapidp2p_conn::Connection`):
/// feed every socket read to `receive_into`, write `data_to_send()` after every call that
/// may queue frames.
#[pyclass(module = "rapidp2p._core", name = "Connection")]
pub struct PyConnection {
    inner: Conn,
}

impl PyConnection {
    fn receive_slice(
        &mut self,
        py: Python<'_>,
        buf: &mut [u8],
        now: f64,
    ) -> PyResult<Vec<PyEvent>> {
        let mut events = Vec::new();
        let mut ranges: Vec<DataRange> = Vec::new();
        let inner = &mut self.inner;
        let bulk = (inner.is_encrypted() || inner.is_protected()) && buf.len() >= GIL_RELEASE_MIN;
        let r = if bulk {
            py.detach(|| inner.receive(buf, now, &mut events, &mut ranges))
        } else {
            inner.receive(buf, now, &mut events, &mut ranges)
        };
        let upgrade = self.inner.take_upgrade_events();
        let muxer = self.inner.take_muxer_selected();
        // Events that arrived before a failure still count (e.g. the GoAway that explains it).
        let out = event_tuples(py, upgrade, muxer, events, &ranges, buf)?;
        r.map_err(|e| conn_err(py, &e))?;
        Ok(out)
    }
}

#[pymethods]
impl PyConnection {
    /// `handshake`: a finished NoiseHandshake or TlsHandshake, or None (plaintext);
    /// `muxers`: None when the handshake agreed on `early_muxer` (yamux or mplex), else the
    /// ids to negotiate with multistream-select inside the channel (EV_MUXER reports the
    /// agreement). `max_streams` bounds either muxer; `mplex_max_buffered` is mplex's
    /// per-stream cap of unread bytes (a stream over it is reset: mplex has no windows).
    #[new]
    #[pyo3(signature = (handshake, *, initiator, muxers = None, max_streams = 512,
                        initial_window = 262144, max_window = 16777216, ack_backlog = 256,
                        keepalive_interval = Some(10.0), min_autotune_rtt = 0.01,
                        early_muxer = None, mplex_max_buffered = 4194304))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        handshake: Option<&Bound<'_, PyAny>>,
        initiator: bool,
        muxers: Option<Vec<String>>,
        max_streams: usize,
        initial_window: u32,
        max_window: u32,
        ack_backlog: usize,
        keepalive_interval: Option<f64>,
        min_autotune_rtt: f64,
        early_muxer: Option<String>,
        mplex_max_buffered: usize,
    ) -> PyResult<Self> {
        let cfg = Config {
            max_streams,
            initial_window,
            max_window,
            ack_backlog,
            keepalive_interval,
            min_autotune_rtt,
            ..Config::default()
        };
        let role = if initiator {
            Role::Client
        } else {
            Role::Server
        };
        let mplex_cfg = mplex::Config {
            max_streams,
            max_buffered: mplex_max_buffered,
            ..mplex::Config::default()
        };
        // Validate before spending the handshake.
        cfg.validate().map_err(PyValueError::new_err)?;
        mplex_cfg.validate().map_err(PyValueError::new_err)?;
        let early_mplex = match early_muxer.as_deref() {
            None | Some(YAMUX_ID) => false,
            Some(mplex::PROTOCOL_ID) if muxers.is_none() => true,
            Some(_) => {
                return Err(PyValueError::new_err(
                    "early_muxer must be /yamux/1.0.0 or /mplex/6.7.0, with muxers=None",
                ))
            }
        };
        let cipher = match handshake {
            None => None,
            Some(hs) => {
                if let Ok(mut noise) = hs.extract::<PyRefMut<'_, NoiseHandshake>>() {
                    Some(rapidp2p_conn::Cipher::Noise(noise.take_transport()?))
                } else if let Ok(mut tls) = hs.extract::<PyRefMut<'_, PyTlsHandshake>>() {
                    Some(rapidp2p_conn::Cipher::Tls(tls.take_transport()?))
                } else {
                    return Err(PyValueError::new_err(
                        "handshake must be a NoiseHandshake, a TlsHandshake or None",
                    ));
                }
            }
        };
        let mut inner = if early_mplex {
            Connection::new_mplex(cipher, mplex_cfg.clone())
        } else {
            Connection::new(cipher, role, cfg, muxers)
        }
        .map_err(|e| conn_err(py, &e))?;
        if !early_mplex {
            inner
                .set_mplex_config(mplex_cfg)
                .map_err(|e| conn_err(py, &e))?;
        }
        Ok(Self { inner })
    }

    /// A connection from its first byte (see `rapidp2p_conn::Connection::upgrading`): runs
    /// multistream-select of `protocols` (`/noise`, `/tls/1.0.0`), the handshake and the early
    /// muxer, then the muxer, reporting EV_SECURITY, EV_VERIFY (answer with `verified`) and
    /// EV_SECURED. `noise_static_secret` and `noise_payload` (signed, listing
    /// `early_muxers`) are needed for `/noise`, `tls_identity` for `/tls/1.0.0`; `now`: Unix
    /// seconds for certificate checks (None: this machine's clock).
    #[staticmethod]
    #[pyo3(signature = (*, initiator, protocols, muxers, early_muxers = Vec::new(),
                        noise_static_secret = None, noise_payload = None, tls_identity = None,
                        expected_peer = None, max_streams = 512, initial_window = 262144,
                        max_window = 16777216, ack_backlog = 256,
                        keepalive_interval = Some(10.0), min_autotune_rtt = 0.01,
                        mplex_max_buffered = 4194304, now = None))]
    #[allow(clippy::too_many_arguments)]
    fn upgrading(
        py: Python<'_>,
        initiator: bool,
        protocols: Vec<String>,
        muxers: Vec<String>,
        early_muxers: Vec<String>,
        noise_static_secret: Option<&[u8]>,
        noise_payload: Option<Vec<u8>>,
        tls_identity: Option<&PyIdentity>,
        expected_peer: Option<Vec<u8>>,
        max_streams: usize,
        initial_window: u32,
        max_window: u32,
        ack_backlog: usize,
        keepalive_interval: Option<f64>,
        min_autotune_rtt: f64,
        mplex_max_buffered: usize,
        now: Option<i64>,
    ) -> PyResult<Self> {
        let cfg = Config {
            max_streams,
            initial_window,
            max_window,
            ack_backlog,
            keepalive_interval,
            min_autotune_rtt,
            ..Config::default()
        };
        let mplex_cfg = mplex::Config {
            max_streams,
            max_buffered: mplex_max_buffered,
            ..mplex::Config::default()
        };
        mplex_cfg.validate().map_err(PyValueError::new_err)?;
        let noise = match (noise_static_secret, noise_payload) {
            (Some(secret), Some(payload)) => Some(NoiseConfig {
                static_secret: secret
                    .try_into()
                    .map_err(|_| PyValueError::new_err("noise_static_secret must be 32 bytes"))?,
                payload,
            }),
            (None, None) => None,
            _ => {
                return Err(PyValueError::new_err(
                    "give both noise_static_secret and noise_payload, or neither",
                ))
            }
        };
        let upgrade = Upgrade::new(UpgradeConfig {
            initiator,
            protocols,
            expected_peer,
            early_muxers,
            noise,
            tls: tls_identity.map(|t| t.inner.clone()),
            unix_now: now.unwrap_or_else(crate::tls::unix_now),
        })
        .map_err(|e| conn_err(py, &e.into()))?;
        let role = if initiator {
            Role::Client
        } else {
            Role::Server
        };
        let inner =
            Connection::upgrading(upgrade, role, cfg, muxers, mplex_cfg).map_err(|e| match e {
                ConnError::Mux(MuxError::InvalidArgument(m)) => PyValueError::new_err(m),
                e => conn_err(py, &e),
            })?;
        Ok(Self { inner })
    }

    /// The answer to EV_VERIFY: None when the signature verified, else why not (raised as
    /// HandshakeError). Returns the events of the bytes that waited for it.
    #[pyo3(signature = (error, now))]
    fn verified(
        &mut self,
        py: Python<'_>,
        error: Option<String>,
        now: f64,
    ) -> PyResult<Vec<PyEvent>> {
        let mut events = Vec::new();
        let r = self
            .inner
            .verified(error.map_or(Ok(()), Err), now, &mut events);
        let upgrade = self.inner.take_upgrade_events();
        let muxer = self.inner.take_muxer_selected();
        let out = event_tuples(py, upgrade, muxer, events, &[], &[])?;
        r.map_err(|e| conn_err(py, &e))?;
        Ok(out)
    }

    /// The remote closed its side: raises the typed reason when that cut the upgrade short.
    fn receive_eof(&mut self, py: Python<'_>) -> PyResult<()> {
        match self.inner.receive_eof() {
            Some(e) => Err(conn_err(py, &e)),
            None => Ok(()),
        }
    }

    /// True until the handshake of an upgrading connection finished.
    #[getter]
    fn is_upgrading(&self) -> bool {
        self.inner.is_upgrading()
    }

    /// One socket read: the first `length` bytes of `buffer` (a reused read buffer) are
    /// processed in place; everything is taken (a partial frame stays inside). Returns
    /// `(kind, stream_id, value)` events.
    fn receive_into(
        &mut self,
        py: Python<'_>,
        buffer: &Bound<'_, PyByteArray>,
        length: usize,
        now: f64,
    ) -> PyResult<Vec<PyEvent>> {
        // A buffer export for the duration of the call: the bytearray cannot be resized (and
        // its memory cannot move) while we work on it, even with the GIL released.
        let _export = PyMemoryView::from(buffer.as_any())?;
        if length > buffer.len() {
            return Err(PyValueError::new_err("length is larger than the buffer"));
        }
        // SAFETY: the export above pins the bytearray's storage; this is the only slice made
        // of it, and no Python code that could touch its contents runs while it is used.
        let slice = unsafe { &mut buffer.as_bytes_mut()[..length] };
        self.receive_slice(py, slice, now)
    }

    /// As `receive_into`, for bytes that arrived as an object (copied once).
    fn receive_data(&mut self, py: Python<'_>, data: &[u8], now: f64) -> PyResult<Vec<PyEvent>> {
        let mut buf = data.to_vec();
        self.receive_slice(py, &mut buf, now)
    }

    /// Private network: moves `protector` (whose remote nonce arrived) into this connection;
    /// from now on every byte in and out passes through it here.
    fn set_protector(&mut self, py: Python<'_>, protector: &mut PyProtector) -> PyResult<()> {
        self.inner.set_protector(protector.take(py)?);
        Ok(())
    }

    #[getter]
    fn is_protected(&self) -> bool {
        self.inner.is_protected()
    }

    /// All pending output (sealed and masked), for one transport write.
    fn data_to_send<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let n = self.inner.output_len();
        let inner = &mut self.inner;
        let bulk = (inner.is_encrypted() || inner.is_protected()) && n >= GIL_RELEASE_MIN;
        let (out, r) = bytes_filled(py, n, |buf| {
            if bulk {
                py.detach(|| inner.flush_into(buf))
            } else {
                inner.flush_into(buf)
            }
        })?;
        match r {
            Ok(written) if written == n => Ok(out),
            Ok(_) => Err(py_err(py, "DecryptionError", "internal: short seal".into())),
            Err(e) => Err(conn_err(py, &e)),
        }
    }

    /// Opens an outbound stream and returns its ID.
    fn open_stream(&mut self, py: Python<'_>) -> PyResult<u32> {
        self.inner.open_stream().map_err(|e| conn_err(py, &e))
    }

    /// Queues as much of `data[start:end]` as the send window allows; returns the bytes
    /// taken (from `start`). Large bodies reference `data` (no copy) until `data_to_send`, so
    /// a big write is passed in pieces by offsets rather than sliced.
    #[pyo3(signature = (stream_id, data, fin = false, start = 0, end = None))]
    fn send(
        &mut self,
        py: Python<'_>,
        stream_id: u32,
        data: &Bound<'_, PyBytes>,
        fin: bool,
        start: usize,
        end: Option<usize>,
    ) -> PyResult<usize> {
        let all = data.as_bytes();
        let end = end.unwrap_or(all.len());
        let bytes = all
            .get(start..end)
            .ok_or_else(|| PyValueError::new_err("start/end outside data"))?;
        let base = bytes.as_ptr() as usize;
        self.inner
            .send_ref(stream_id, bytes, fin, |r| {
                Some(SharedBytes {
                    _obj: data.clone().unbind(),
                    ptr: base + r.start,
                    len: r.len(),
                })
            })
            .map_err(|e| conn_err(py, &e))
    }

    /// Bytes `send` would take now.
    fn send_window(&mut self, py: Python<'_>, stream_id: u32) -> PyResult<u32> {
        self.inner
            .send_window(stream_id)
            .map_err(|e| conn_err(py, &e))
    }

    /// Half-closes our side of a stream (FIN); idempotent.
    fn close_stream(&mut self, py: Python<'_>, stream_id: u32) -> PyResult<()> {
        self.inner
            .close_stream(stream_id)
            .map_err(|e| conn_err(py, &e))
    }

    /// Resets a stream (RST); a no-op when it is already gone.
    fn reset_stream(&mut self, py: Python<'_>, stream_id: u32) -> PyResult<()> {
        self.inner
            .reset_stream(stream_id)
            .map_err(|e| conn_err(py, &e))
    }

    /// The application consumed `n` bytes of a stream: grants window (auto-tuned). Returns
    /// the growth held back by the growth cap (0 almost always): reserve memory for it, raise
    /// the cap, then `grow_window`.
    #[pyo3(signature = (stream_id, n, now = None))]
    fn ack(&mut self, py: Python<'_>, stream_id: u32, n: u32, now: Option<f64>) -> PyResult<u32> {
        self.inner
            .ack(stream_id, n, now)
            .map_err(|e| conn_err(py, &e))
    }

    /// Grants the growth the last ack of `stream_id` held back, within the cap; the bytes.
    fn grow_window(&mut self, py: Python<'_>, stream_id: u32) -> PyResult<u32> {
        self.inner
            .grow_window(stream_id)
            .map_err(|e| conn_err(py, &e))
    }

    /// Sends a ping; the answer arrives as an EV_PING_RTT event.
    fn ping(&mut self, py: Python<'_>, now: f64) -> PyResult<()> {
        self.inner.ping(now).map_err(|e| conn_err(py, &e))
    }

    /// The last write of the connection: all pending output, then the cipher's closing
    /// message (TLS close_notify; nothing for Noise or plaintext).
    fn closing_data<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let out = self
            .inner
            .take_closing_output()
            .map_err(|e| conn_err(py, &e))?;
        Ok(PyBytes::new(py, &out))
    }

    /// True once the peer closed the secure channel (TLS close_notify): an orderly end.
    #[getter]
    fn peer_closed(&self) -> bool {
        self.inner.peer_closed()
    }

    /// Sends GoAway (once): no new streams either way.
    #[pyo3(signature = (code = 0))]
    fn go_away(&mut self, py: Python<'_>, code: u32) -> PyResult<()> {
        self.inner.go_away(code).map_err(|e| conn_err(py, &e))
    }

    /// When `handle_timer` should run next (same clock as `now`), or None.
    fn next_timer(&self) -> Option<f64> {
        self.inner.next_timer()
    }

    /// Runs due timers (keep-alive ping); raises ConnectionClosedError on a ping timeout.
    fn handle_timer(&mut self, py: Python<'_>, now: f64) -> PyResult<()> {
        self.inner.handle_timer(now).map_err(|e| conn_err(py, &e))
    }

    /// Current receive window of a live yamux stream (auto-tuning grows it), else None.
    fn receive_window(&self, stream_id: u32) -> Option<u32> {
        self.inner.yamux()?.receive_window(stream_id)
    }

    /// Caps the windows' growth beyond their initial size (the memory reserved for it):
    /// windows already granted are kept. Called per reservation, never per frame.
    fn set_max_window_growth(&mut self, bytes: u64) {
        self.inner.set_max_window_growth(bytes);
    }

    /// Growth auto-tuning wanted and did not get since the cap was last set (bytes).
    #[getter]
    fn window_wanted(&self) -> u64 {
        self.inner.yamux().map_or(0, |s| s.window_wanted())
    }

    /// Sum of the live streams' window growth beyond their initial size.
    #[getter]
    fn window_growth(&self) -> u64 {
        self.inner.yamux().map_or(0, |s| s.window_growth())
    }

    /// True once auto-tuning was held back by the cap since it was last set.
    #[getter]
    fn window_capped(&self) -> bool {
        self.inner.yamux().is_some_and(|s| s.window_capped())
    }

    /// Sum of all live streams' receive windows (bytes the peer may have in flight to us).
    #[getter]
    fn total_window(&self) -> u64 {
        self.inner.yamux().map_or(0, |s| s.total_window())
    }

    #[getter]
    fn rtt(&self) -> Option<f64> {
        self.inner.yamux()?.rtt()
    }

    #[getter]
    fn num_streams(&self) -> usize {
        self.inner.num_streams()
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    #[getter]
    fn is_encrypted(&self) -> bool {
        self.inner.is_encrypted()
    }

    /// The agreed muxer id, once there is one.
    #[getter]
    fn muxer(&self) -> Option<String> {
        self.inner.muxer().map(str::to_string)
    }

    /// mplex's per-stream cap of unread bytes, once mplex is the muxer (else None): the
    /// driver pauses reading before any stream reaches it.
    #[getter]
    fn mplex_max_buffered(&self) -> Option<usize> {
        self.inner.mplex().map(|m| m.config().max_buffered)
    }

    /// Muxers the remote proposed that we refused (listener side, during the negotiation).
    #[getter]
    fn muxers_refused(&self) -> Vec<String> {
        self.inner.muxers_refused().to_vec()
    }

    /// Bytes of a partial wire frame kept for the next read.
    #[getter]
    fn carried(&self) -> usize {
        self.inner.carried()
    }

    /// Bytes `data_to_send()` would return now.
    #[getter]
    fn pending_output(&self) -> usize {
        self.inner.pending_output()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyConnection>()?;
    m.add("EV_STREAM_OPENED", EV_STREAM_OPENED)?;
    m.add("EV_DATA", EV_DATA)?;
    m.add("EV_FIN", EV_FIN)?;
    m.add("EV_RESET", EV_RESET)?;
    m.add("EV_WINDOW", EV_WINDOW)?;
    m.add("EV_STREAM_ACKED", EV_STREAM_ACKED)?;
    m.add("EV_PING_RTT", EV_PING_RTT)?;
    m.add("EV_GO_AWAY", EV_GO_AWAY)?;
    m.add("EV_MUXER", EV_MUXER)?;
    m.add("EV_SECURITY", EV_SECURITY)?;
    m.add("EV_VERIFY", EV_VERIFY)?;
    m.add("EV_SECURED", EV_SECURED)?;
    Ok(())
}
