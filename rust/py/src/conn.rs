//! Glue for `rapidp2p-conn`: the `Connection` class (Noise or TLS transport + yamux), one call
//! per socket read and one per flush; bulk crypto runs without the GIL.
//!
//! Copies on the data path are kept to one per direction in user space:
//! - sending: `send` queues a reference to the caller's `bytes` (frame bodies of 4 KiB and
//!   more) instead of copying it; `data_to_send` gathers the queue into a new `bytes` while
//!   sealing Noise frames in place (65535-byte frames, no zero-fill, no staging buffer);
//! - receiving: `receive_into` decrypts in place in the caller's `bytearray` (which the
//!   socket read filled) and copies each stream's plaintext once, into its `bytes`.

use std::ops::Range;

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyByteArrayMethods, PyBytes, PyMemoryView};
use rapidp2p_conn::yamux::{Config, Error as MuxError, Event, Role};
use rapidp2p_conn::{ConnError, Connection, DataRange};

use crate::errors::py_err;
use crate::noise::NoiseHandshake;
use crate::pnet::{ConnPnet, PyProtector};
use crate::tls::PyTlsHandshake;

/// The transport cipher of encrypted connections (Noise or TLS).
type Cipher = rapidp2p_conn::Cipher;

/// Bulk crypto of at least this many bytes runs with the GIL released. Releasing and
/// re-acquiring costs well under a microsecond, while ChaCha20-Poly1305 over 16 KiB takes
/// several microseconds, so below this the release is not worth it (see benches).
const GIL_RELEASE_MIN: usize = 16 * 1024;

/// DATA bodies at least this long are queued by reference to the caller's `bytes`; shorter
/// ones are copied (cheaper than holding a reference).
const REF_MIN: usize = 4096;

/// Capacity the queue's own buffer and the receive carry-over buffer keep between calls
/// (more is kept only while calls keep bringing bulk data).
const MAX_IDLE_BUF: usize = 1 << 20;

/// One piece of queued plaintext: bytes in the queue's own buffer, or part of a caller's
/// `bytes` object (kept alive until the flush).
enum Seg {
    Own(Range<usize>),
    Ext(Py<PyBytes>, Range<usize>),
}

/// Plaintext waiting for `data_to_send`, in wire order.
#[derive(Default)]
struct OutQueue {
    own: Vec<u8>,
    segs: Vec<Seg>,
    len: usize,
}

impl OutQueue {
    fn push_own(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let start = self.own.len();
        self.own.extend_from_slice(bytes);
        self.len += bytes.len();
        if let Some(Seg::Own(r)) = self.segs.last_mut() {
            if r.end == start {
                r.end = self.own.len();
                return;
            }
        }
        self.segs.push(Seg::Own(start..self.own.len()));
    }

    fn push_ext(&mut self, obj: &Bound<'_, PyBytes>, range: Range<usize>) {
        self.len += range.len();
        self.segs.push(Seg::Ext(obj.clone().unbind(), range));
    }

    fn slices<'a>(&'a self, py: Python<'_>) -> Vec<&'a [u8]> {
        self.segs
            .iter()
            .map(|s| match s {
                Seg::Own(r) => &self.own[r.clone()],
                Seg::Ext(obj, r) => &obj.as_bytes(py)[r.clone()],
            })
            .collect()
    }

    fn clear(&mut self) {
        self.segs.clear();
        self.own.clear();
        self.len = 0;
        if self.own.capacity() > MAX_IDLE_BUF {
            self.own = Vec::new();
        }
    }
}

/// A new `bytes` of `n` bytes filled by `fill` (no zero-fill first; `fill` must write all
/// of it, which every caller here does).
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

/// Runs `receive_in_place` over `buf` (GIL released for bulk ciphertext) and turns the
/// events into Python tuples, copying each stream's DATA once into its own `bytes`.
fn receive_buf(
    py: Python<'_>,
    inner: &mut Connection<Cipher>,
    buf: &mut [u8],
    now: f64,
) -> PyResult<(Vec<PyEvent>, usize)> {
    let mut events = Vec::new();
    let mut ranges: Vec<DataRange> = Vec::new();
    let r = if inner.is_encrypted() && buf.len() >= GIL_RELEASE_MIN {
        py.detach(|| inner.receive_in_place(buf, now, &mut events, &mut ranges))
    } else {
        inner.receive_in_place(buf, now, &mut events, &mut ranges)
    };
    let used = r.map_err(|e| conn_err(py, &e))?;
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
        match e {
            Event::Data(id, d) if d.is_empty() => {
                let mine = || ranges.iter().filter(move |(j, _)| *j == i);
                let total = mine().map(|(_, r)| r.len()).sum();
                let (b, ()) = bytes_filled(py, total, |dst| {
                    let mut pos = 0;
                    for (_, r) in mine() {
                        dst[pos..pos + r.len()].copy_from_slice(&buf[r.clone()]);
                        pos += r.len();
                    }
                })?;
                out.push((EV_DATA, id, b.into_any().unbind()));
            }
            e => out.push(event_tuple(py, e)?),
        }
    }
    Ok((out, used))
}

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
    out: OutQueue,
    /// Ciphertext carried over between `receive_data` calls (a partial frame).
    rbuf: Vec<u8>,
    /// The private-network protector (under everything else), once `set_protector` ran.
    pnet: Option<ConnPnet>,
}

impl PyConnection {
    /// Moves a partial frame the preamble phase kept inside `inner` into `rbuf`.
    fn adopt_tail(&mut self) {
        let tail = self.inner.take_tail();
        if !tail.is_empty() {
            self.rbuf.splice(0..0, tail);
        }
    }

    fn queue_pending(&mut self) {
        let q = &mut self.out;
        self.inner.drain_plaintext(&mut |p| q.push_own(p));
    }

    /// `receive_into` after the private-network layer (the buffer holds plaintext).
    fn receive_into_plain(
        &mut self,
        py: Python<'_>,
        slice: &mut [u8],
        length: usize,
        now: f64,
    ) -> PyResult<(Vec<PyEvent>, usize)> {
        let total = slice.len();
        self.adopt_tail();
        if !self.rbuf.is_empty() {
            // A partial frame from `receive_data` / the preamble comes first: take the slow
            // path once, then hand the tail back to the caller's buffer.
            self.rbuf.extend_from_slice(&slice[..length]);
            let mut rbuf = std::mem::take(&mut self.rbuf);
            let (events, used) = receive_buf(py, &mut self.inner, &mut rbuf, now)?;
            let tail = rbuf.len() - used;
            if tail <= total {
                slice[..tail].copy_from_slice(&rbuf[used..]);
                rbuf.clear();
                self.rbuf = rbuf;
                return Ok((events, tail));
            }
            rbuf.drain(..used);
            self.rbuf = rbuf;
            return Ok((events, 0));
        }
        let (events, used) = receive_buf(py, &mut self.inner, &mut slice[..length], now)?;
        slice.copy_within(used..length, 0);
        Ok((events, length - used))
    }
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
        handshake: Option<&Bound<'_, PyAny>>,
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
            None => None,
            Some(hs) => {
                if let Ok(mut noise) = hs.extract::<PyRefMut<'_, NoiseHandshake>>() {
                    Some(Cipher::Noise(noise.take_transport()?))
                } else if let Ok(mut tls) = hs.extract::<PyRefMut<'_, PyTlsHandshake>>() {
                    Some(Cipher::Tls(tls.take_transport()?))
                } else {
                    return Err(PyValueError::new_err(
                        "handshake must be a NoiseHandshake, a TlsHandshake or None",
                    ));
                }
            }
        };
        let inner = Connection::new(cipher, role, cfg).map_err(|e| mux_err(py, &e))?;
        Ok(Self {
            inner,
            out: OutQueue::default(),
            rbuf: Vec::new(),
            pnet: None,
        })
    }

    /// Decrypts and deframes everything in `data`; returns `(kind, stream_id, value)` events.
    fn receive_data(
        &mut self,
        py: Python<'_>,
        data: &[u8],
        now: f64,
    ) -> PyResult<Vec<(u8, u32, Py<PyAny>)>> {
        self.adopt_tail();
        let fresh = self.rbuf.len();
        self.rbuf.extend_from_slice(data);
        if let Some(p) = self.pnet.as_mut() {
            p.unmask(&mut self.rbuf[fresh..]);
        }
        let mut rbuf = std::mem::take(&mut self.rbuf);
        let r = receive_buf(py, &mut self.inner, &mut rbuf, now);
        if let Ok((_, used)) = &r {
            rbuf.drain(..*used);
        }
        if rbuf.is_empty() && rbuf.capacity() > MAX_IDLE_BUF {
            // Keep a bulk-sized buffer while bulk data flows; drop it once it is idle-sized.
            if data.len() < MAX_IDLE_BUF / 4 {
                rbuf = Vec::new();
            }
        }
        self.rbuf = rbuf;
        r.map(|(events, _)| events)
    }

    /// Zero-copy variant of `receive_data` for a buffered protocol: the first `length` bytes
    /// of `buffer` (a socket read appended to what the last call left) are decrypted in place.
    /// Returns the events and how many bytes (a partial frame) were moved to the front of
    /// `buffer`, to keep in front of the next read.
    fn receive_into(
        &mut self,
        py: Python<'_>,
        buffer: &Bound<'_, PyByteArray>,
        length: usize,
        now: f64,
    ) -> PyResult<(Vec<PyEvent>, usize)> {
        // A buffer export for the duration of the call: the bytearray cannot be resized (and
        // its memory cannot move) while we work on it, even with the GIL released.
        let _export = PyMemoryView::from(buffer.as_any())?;
        let total = buffer.len();
        if length > total {
            return Err(PyValueError::new_err("length is larger than the buffer"));
        }
        // SAFETY: the export above pins the bytearray's storage; this is the only slice made
        // of it, and no Python code that could touch its contents runs while it is used.
        let slice = unsafe { buffer.as_bytes_mut() };
        if let Some(p) = self.pnet.as_mut() {
            p.unmask_into(py, &mut slice[..length]);
        }
        let (events, kept) = self.receive_into_plain(py, slice, length, now)?;
        if let Some(p) = self.pnet.as_mut() {
            p.kept(kept);
        }
        Ok((events, kept))
    }

    /// Private network: moves `protector` (whose remote nonce arrived) into this connection;
    /// from now on every byte in and out passes through it here. Bytes received before this
    /// call must already be decrypted.
    fn set_protector(&mut self, py: Python<'_>, protector: &mut PyProtector) -> PyResult<()> {
        self.pnet = Some(ConnPnet::new(protector.take(py)?));
        Ok(())
    }

    /// Whether a private-network protector is set.
    #[getter]
    fn is_protected(&self) -> bool {
        self.pnet.is_some()
    }

    /// All pending output (ciphertext when encrypted), for one transport write.
    fn data_to_send<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.queue_pending();
        let n = self.inner.wire_len(self.out.len);
        let segs = self.out.slices(py);
        let inner = &mut self.inner;
        let pnet = &mut self.pnet;
        let (out, r) = bytes_filled(py, n, |buf| {
            let bulk = (inner.is_encrypted() || pnet.is_some()) && n >= GIL_RELEASE_MIN;
            let mut seal = || {
                let r = inner.seal_gather(&segs, buf);
                if let Some(p) = pnet.as_mut() {
                    p.mask(buf);
                }
                r
            };
            if bulk {
                py.detach(seal)
            } else {
                seal()
            }
        })?;
        drop(segs);
        self.out.clear();
        match r {
            Ok(written) if written == n => Ok(out),
            Ok(_) => Err(py_err(
                py,
                "DecryptionError",
                "internal: short seal".to_string(),
            )),
            Err(e) => Err(conn_err(py, &e)),
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
        let mut unmasked;
        let data = match self.pnet.as_mut() {
            Some(p) => {
                unmasked = data.to_vec();
                p.unmask(&mut unmasked);
                &unmasked[..]
            }
            None => data,
        };
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

    /// Queues as much of `data[start:end]` as the send window allows; returns the bytes
    /// taken (from `start`). Large frames reference `data` (no copy) until `data_to_send`, so
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
        if self.inner.in_preamble() {
            // Muxer output is held back during the preamble: keep it inside the session.
            return self
                .inner
                .session_mut()
                .send(stream_id, bytes, fin)
                .map_err(|e| mux_err(py, &e));
        }
        self.queue_pending();
        let base = all.as_ptr() as usize;
        let q = &mut self.out;
        self.inner
            .session_mut()
            .send_with(stream_id, bytes, fin, &mut |hdr, body| {
                q.push_own(hdr);
                if body.len() >= REF_MIN {
                    let start = body.as_ptr() as usize - base;
                    q.push_ext(data, start..start + body.len());
                } else {
                    q.push_own(body);
                }
            })
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

    /// Caps the sum of receive windows (the resource manager's memory grant): growth stops
    /// at it, windows already granted are kept. Called rarely (per grant), never per frame.
    fn set_max_connection_window(&mut self, bytes: u64) {
        self.inner.session_mut().set_max_connection_window(bytes);
    }

    /// True once auto-tuning was held back by the cap since it was last set.
    #[getter]
    fn window_capped(&self) -> bool {
        self.inner.session().window_capped()
    }

    /// Sum of all live streams' receive windows (bytes the peer may have in flight to us).
    #[getter]
    fn total_window(&self) -> u64 {
        self.inner.session().total_window()
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
        self.inner
            .wire_len(self.out.len + self.inner.plaintext_pending())
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;

    pub const M_TRIM_THRESHOLD: c_int = -1;
    pub const M_MMAP_THRESHOLD: c_int = -3;

    extern "C" {
        pub fn mallopt(param: c_int, value: c_int) -> c_int;
    }
}

/// Keeps glibc from returning memory to the kernel after every burst of large buffers.
///
/// Bulk streams allocate a `bytes` per socket read (up to 1 MiB) and free them in bursts; with
/// glibc's defaults the freed top of the heap is trimmed and the next burst page-faults it
/// back in, which cost 15-25% of a receiver's CPU. This sets the trim threshold (free memory
/// kept at the top of the heap) and the mmap threshold (allocations served by their own
/// mapping) for the whole process. Returns False where the allocator is not glibc.
#[pyfunction]
#[pyo3(signature = (trim_threshold = 32 << 20, mmap_threshold = 4 << 20))]
fn tune_allocator(trim_threshold: u32, mmap_threshold: u32) -> PyResult<bool> {
    let trim = i32::try_from(trim_threshold).map_err(|_| PyValueError::new_err("too large"))?;
    let mmap = i32::try_from(mmap_threshold).map_err(|_| PyValueError::new_err("too large"))?;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; any value is accepted or refused.
        let ok = unsafe {
            glibc::mallopt(glibc::M_MMAP_THRESHOLD, mmap) == 1
                && glibc::mallopt(glibc::M_TRIM_THRESHOLD, trim) == 1
        };
        Ok(ok)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (trim, mmap);
        Ok(false)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyConnection>()?;
    m.add_function(wrap_pyfunction!(tune_allocator, m)?)?;
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
