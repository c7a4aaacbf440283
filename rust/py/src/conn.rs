//! Glue for `rapidp2p-conn`: the `Connection` class (Noise transport + yamux session), one call
//! per socket read and one per flush. Input is borrowed from `bytes`, output is written
//! straight into a new `bytes`; bulk crypto runs without the GIL.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rapidp2p_conn::yamux::{Config, Error as MuxError, Event, Role};
use rapidp2p_conn::{ConnError, Connection};

use crate::errors::py_err;
use crate::noise::NoiseHandshake;

/// The transport cipher of encrypted connections.
type Cipher = rapidp2p_noise::Transport;

/// Bulk crypto of at least this many bytes runs with the GIL released. Releasing and
/// re-acquiring costs well under a microsecond, while ChaCha20-Poly1305 over 16 KiB takes
/// several microseconds, so below this the release is not worth it (see benches).
const GIL_RELEASE_MIN: usize = 16 * 1024;

pub const EV_STREAM_OPENED: u8 = 0;
pub const EV_DATA: u8 = 1;
pub const EV_FIN: u8 = 2;
pub const EV_RESET: u8 = 3;
pub const EV_WINDOW: u8 = 4;
pub const EV_STREAM_ACKED: u8 = 5;
pub const EV_PING_RTT: u8 = 6;
pub const EV_GO_AWAY: u8 = 7;

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

fn conn_err(py: Python<'_>, e: &ConnError) -> PyErr {
    match e {
        ConnError::Crypto(m) => py_err(py, "DecryptionError", m.clone()),
        ConnError::Mux(m) => mux_err(py, m),
    }
}

fn event_tuple(py: Python<'_>, e: Event) -> PyResult<(u8, u32, Py<PyAny>)> {
    Ok(match e {
        Event::StreamOpened(id) => (EV_STREAM_OPENED, id, py.None()),
        Event::Data(id, d) => (EV_DATA, id, PyBytes::new(py, &d).into_any().unbind()),
        Event::Fin(id) => (EV_FIN, id, py.None()),
        Event::Reset(id) => (EV_RESET, id, py.None()),
        Event::Window(id, w) => (EV_WINDOW, id, w.into_pyobject(py)?.into_any().unbind()),
        Event::StreamAcked(id) => (EV_STREAM_ACKED, id, py.None()),
        Event::PingRtt(rtt) => (EV_PING_RTT, 0, rtt.into_pyobject(py)?.into_any().unbind()),
        Event::GoAway(code) => (EV_GO_AWAY, 0, code.into_pyobject(py)?.into_any().unbind()),
    })
}

/// A yamux session over an optional Noise transport, without IO: feed it every socket read
/// with `receive_data`, write `data_to_send()` after every call that may queue frames.
#[pyclass(module = "rapidp2p._core", name = "Connection")]
pub struct PyConnection {
    inner: Connection<Cipher>,
}

#[pymethods]
impl PyConnection {
    #[new]
    #[pyo3(signature = (handshake, *, initiator, max_streams = 512, initial_window = 262144,
                        max_window = 16777216, ack_backlog = 256, keepalive_interval = Some(10.0),
                        min_autotune_rtt = 0.01))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        handshake: Option<PyRefMut<'_, NoiseHandshake>>,
        initiator: bool,
        max_streams: usize,
        initial_window: u32,
        max_window: u32,
        ack_backlog: usize,
        keepalive_interval: Option<f64>,
        min_autotune_rtt: f64,
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
        // Validate before spending the handshake.
        cfg.validate().map_err(PyValueError::new_err)?;
        let cipher = match handshake {
            Some(mut hs) => Some(hs.take_transport()?),
            None => None,
        };
        let inner = Connection::new(cipher, role, cfg).map_err(|e| mux_err(py, &e))?;
        Ok(Self { inner })
    }

    /// Decrypts and deframes everything in `data`; returns `(kind, stream_id, value)` events.
    fn receive_data(
        &mut self,
        py: Python<'_>,
        data: &[u8],
        now: f64,
    ) -> PyResult<Vec<(u8, u32, Py<PyAny>)>> {
        let mut events = Vec::new();
        let inner = &mut self.inner;
        let r = if inner.is_encrypted() && data.len() >= GIL_RELEASE_MIN {
            py.detach(|| inner.receive(data, now, &mut events))
        } else {
            inner.receive(data, now, &mut events)
        };
        r.map_err(|e| conn_err(py, &e))?;
        events.into_iter().map(|e| event_tuple(py, e)).collect()
    }

    /// All pending output (ciphertext when encrypted), for one transport write.
    fn data_to_send<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let n = self.inner.output_len();
        let inner = &mut self.inner;
        let mut failure = None;
        let out = PyBytes::new_with(py, n, |buf| {
            let r = if inner.is_encrypted() && n >= GIL_RELEASE_MIN {
                py.detach(|| inner.write_output_to_slice(buf))
            } else {
                inner.write_output_to_slice(buf)
            };
            if let Err(e) = r {
                failure = Some(e);
            }
            Ok(())
        })?;
        match failure {
            Some(e) => Err(conn_err(py, &e)),
            None => Ok(out),
        }
    }

    /// Preamble phase (multistream-select for the muxer inside Noise): queues raw plaintext.
    /// yamux output is held back until `start_muxer`.
    fn send_preamble(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        self.inner.send_preamble(data).map_err(|e| conn_err(py, &e))
    }

    /// Preamble phase: decrypts `data` and returns the plaintext (not given to yamux).
    fn receive_preamble<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let plain = self
            .inner
            .receive_preamble(data)
            .map_err(|e| conn_err(py, &e))?;
        Ok(PyBytes::new(py, &plain))
    }

    /// Ends the preamble: `leftover` (plaintext received after it) goes to yamux; returns
    /// events like `receive_data`.
    fn start_muxer(
        &mut self,
        py: Python<'_>,
        leftover: &[u8],
        now: f64,
    ) -> PyResult<Vec<(u8, u32, Py<PyAny>)>> {
        let mut events = Vec::new();
        self.inner
            .start_muxer(leftover, now, &mut events)
            .map_err(|e| conn_err(py, &e))?;
        events.into_iter().map(|e| event_tuple(py, e)).collect()
    }

    /// Opens an outbound stream and returns its ID.
    fn open_stream(&mut self, py: Python<'_>) -> PyResult<u32> {
        self.inner
            .session_mut()
            .open_stream()
            .map_err(|e| mux_err(py, &e))
    }

    /// Queues as much of `data` as the send window allows; returns the bytes taken.
    #[pyo3(signature = (stream_id, data, fin = false))]
    fn send(&mut self, py: Python<'_>, stream_id: u32, data: &[u8], fin: bool) -> PyResult<usize> {
        self.inner
            .session_mut()
            .send(stream_id, data, fin)
            .map_err(|e| mux_err(py, &e))
    }

    /// Bytes `send` would take now.
    fn send_window(&mut self, py: Python<'_>, stream_id: u32) -> PyResult<u32> {
        self.inner
            .session_mut()
            .send_window(stream_id)
            .map_err(|e| mux_err(py, &e))
    }

    /// Half-closes our side of a stream (FIN); idempotent.
    fn close_stream(&mut self, py: Python<'_>, stream_id: u32) -> PyResult<()> {
        self.inner
            .session_mut()
            .close_stream(stream_id)
            .map_err(|e| mux_err(py, &e))
    }

    /// Resets a stream (RST); a no-op when it is already gone.
    fn reset_stream(&mut self, py: Python<'_>, stream_id: u32) -> PyResult<()> {
        self.inner
            .session_mut()
            .reset_stream(stream_id)
            .map_err(|e| mux_err(py, &e))
    }

    /// The application consumed `n` bytes of a stream: grants window (auto-tuned).
    #[pyo3(signature = (stream_id, n, now = None))]
    fn ack(&mut self, py: Python<'_>, stream_id: u32, n: u32, now: Option<f64>) -> PyResult<()> {
        self.inner
            .session_mut()
            .ack(stream_id, n, now)
            .map_err(|e| mux_err(py, &e))
    }

    /// Sends a ping; the answer arrives as an EV_PING_RTT event.
    fn ping(&mut self, py: Python<'_>, now: f64) -> PyResult<()> {
        self.inner
            .session_mut()
            .ping(now)
            .map_err(|e| mux_err(py, &e))
    }

    /// Sends GoAway (once): no new streams either way.
    #[pyo3(signature = (code = 0))]
    fn go_away(&mut self, py: Python<'_>, code: u32) -> PyResult<()> {
        self.inner
            .session_mut()
            .go_away(code)
            .map_err(|e| mux_err(py, &e))
    }

    /// When `handle_timer` should run next (same clock as `now`), or None.
    fn next_timer(&self) -> Option<f64> {
        self.inner.session().next_timer()
    }

    /// Runs due timers (keep-alive ping); raises ConnectionClosedError on a ping timeout.
    fn handle_timer(&mut self, py: Python<'_>, now: f64) -> PyResult<()> {
        self.inner
            .session_mut()
            .handle_timer(now)
            .map_err(|e| mux_err(py, &e))
    }

    /// Current receive window of a live stream (auto-tuning grows it), else None.
    fn receive_window(&self, stream_id: u32) -> Option<u32> {
        self.inner.session().receive_window(stream_id)
    }

    #[getter]
    fn rtt(&self) -> Option<f64> {
        self.inner.session().rtt()
    }

    #[getter]
    fn num_streams(&self) -> usize {
        self.inner.session().num_streams()
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    #[getter]
    fn is_encrypted(&self) -> bool {
        self.inner.is_encrypted()
    }

    /// Bytes `data_to_send()` would return now.
    #[getter]
    fn pending_output(&self) -> usize {
        self.inner.output_len()
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
    Ok(())
}
