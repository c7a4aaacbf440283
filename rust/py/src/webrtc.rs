//! Glue for `rapidp2p-webrtc`: one `Endpoint` per UDP socket, shaped like `_core.quic`.
//! asyncio keeps readiness (`add_reader` on the socket's fd); each readable event is ONE call
//! here that receives every waiting datagram, feeds them to the crate, sends the answers and
//! returns all the events at once.
//!
//! Time: `now` is the caller's monotonic clock in seconds (asyncio's `loop.time()`), mapped
//! onto `Instant` from the first value seen. Conversion only: every decision is the crate's.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rapidp2p_webrtc::{
    certhash, certhash_fingerprint, generate_certificate, Certificate, CloseKind, Config, Endpoint,
    Event, WebRtcError,
};

use crate::errors::py_err;

pub const EV_CONNECTED: u8 = 0;
pub const EV_CLOSED: u8 = 1;
pub const EV_STREAM_OPENED: u8 = 2;
pub const EV_DATA: u8 = 3;
pub const EV_FIN: u8 = 4;
pub const EV_RESET: u8 = 5;
pub const EV_WRITABLE: u8 = 6;
pub const EV_FINISHED: u8 = 9;

/// Datagrams received per `read_socket` call at most: the loop gets control back in between.
const MAX_READS: usize = 512;
/// Largest datagram read (WebRTC keeps under the path MTU).
const SLOT: usize = 2048;
/// Datagrams kept when the socket refuses writes; beyond, drop (SCTP retransmits).
const MAX_BLOCKED: usize = 4096;

type PyEvent = (u8, u64, u64, Py<PyAny>);

fn rtc_err(py: Python<'_>, e: &WebRtcError) -> PyErr {
    let class = match e {
        WebRtcError::UnknownConnection(_) => "ConnectionClosedError",
        WebRtcError::UnknownStream(_) | WebRtcError::StreamClosed(_) => "StreamClosedError",
        WebRtcError::StreamReset(_) => "StreamResetError",
        WebRtcError::TooManyStreams => "LocalProtocolError",
        WebRtcError::Config(_) => "LocalProtocolError",
        WebRtcError::Dial(_) => "TransportError",
        WebRtcError::Sdp(_) | WebRtcError::Candidate(_) => "SignalingError",
    };
    py_err(py, class, e.to_string())
}

fn close_err(py: Python<'_>, kind: CloseKind, message: String) -> PyErr {
    let class = match kind {
        CloseKind::Handshake => "HandshakeError",
        CloseKind::HandshakeTimeout => "HandshakeTimeout",
        CloseKind::Protocol => "RemoteProtocolError",
        CloseKind::Closed => "ConnectionClosedError",
    };
    py_err(py, class, message)
}

/// A fresh DTLS certificate: `(der, private_key_der)`.
#[pyfunction]
fn new_certificate(py: Python<'_>) -> PyResult<(Py<PyBytes>, Py<PyBytes>)> {
    let c = generate_certificate().map_err(|e| rtc_err(py, &e))?;
    Ok((
        PyBytes::new(py, &c.der).unbind(),
        PyBytes::new(py, &c.private_key).unbind(),
    ))
}

/// The `/certhash` value (multibase base64url sha2-256 multihash) of a DER certificate.
#[pyfunction]
fn certificate_certhash(der: &[u8]) -> String {
    let c = Certificate {
        der: der.to_vec(),
        private_key: Vec::new(),
    };
    certhash(&c.fingerprint())
}

/// The SHA-256 fingerprint a `/certhash` value names, or None when it is not a multibase
/// sha2-256 multihash.
#[pyfunction]
fn fingerprint_of_certhash(py: Python<'_>, text: &str) -> Option<Py<PyBytes>> {
    certhash_fingerprint(text).map(|fp| PyBytes::new(py, &fp).unbind())
}

/// One UDP socket's WebRTC-direct listener.
#[pyclass(module = "rapidp2p._core.webrtc", name = "Endpoint", unsendable)]
pub struct PyEndpoint {
    ep: Endpoint,
    sock: Option<UdpSocket>,
    epoch: Instant,
    epoch_t: f64,
    blocked: VecDeque<(SocketAddr, Vec<u8>)>,
    recv_buf: Vec<u8>,
    datagrams_in: u64,
    datagrams_out: u64,
    send_errors: u64,
}

impl PyEndpoint {
    fn instant(&self, now: f64) -> Instant {
        let d = now - self.epoch_t;
        if d > 0.0 && d.is_finite() {
            self.epoch + Duration::from_secs_f64(d)
        } else {
            self.epoch
        }
    }

    fn events(&mut self, py: Python<'_>) -> PyResult<Vec<PyEvent>> {
        let mut out = Vec::new();
        while let Some(ev) = self.ep.poll_event() {
            out.push(convert(py, ev)?);
        }
        Ok(out)
    }

    /// Sends what is due; true when the socket refused more (wait for writability).
    fn send_all(&mut self) -> bool {
        while let Some(t) = self.ep.poll_transmit() {
            if self.blocked.len() < MAX_BLOCKED {
                self.blocked.push_back(t);
            }
        }
        let Some(sock) = self.sock.as_ref() else {
            return false;
        };
        while let Some((dst, data)) = self.blocked.front() {
            match sock.send_to(data, dst) {
                Ok(_) => self.datagrams_out += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(_) => self.send_errors += 1,
            }
            self.blocked.pop_front();
        }
        false
    }
}

fn convert(py: Python<'_>, ev: Event) -> PyResult<PyEvent> {
    let none = || py.None();
    Ok(match ev {
        Event::Authenticated {
            conn,
            payload,
            remote_static,
            remote,
        } => {
            let v = (
                PyBytes::new(py, &payload),
                PyBytes::new(py, &remote_static),
                remote.ip().to_string(),
                remote.port(),
            )
                .into_pyobject(py)?
                .into_any()
                .unbind();
            (EV_CONNECTED, conn, 0, v)
        }
        Event::Closed {
            conn,
            kind,
            message,
        } => {
            let err = close_err(py, kind, message);
            (EV_CLOSED, conn, 0, err.into_value(py).into_any())
        }
        Event::StreamOpened { conn, stream } => (EV_STREAM_OPENED, conn, stream, none()),
        Event::Data { conn, stream, data } => (
            EV_DATA,
            conn,
            stream,
            PyBytes::new(py, &data).into_any().unbind(),
        ),
        Event::Fin { conn, stream } => (EV_FIN, conn, stream, none()),
        Event::Reset { conn, stream } => (EV_RESET, conn, stream, none()),
        Event::Writable { conn, stream } => (EV_WRITABLE, conn, stream, none()),
        Event::Finished { conn, stream } => (EV_FINISHED, conn, stream, none()),
    })
}

#[pymethods]
impl PyEndpoint {
    /// `fd`: the bound, non-blocking UDP socket (duplicated: the caller keeps its own);
    /// `certificate`/`private_key`: our DTLS certificate (DER); `noise_secret`: our Noise
    /// static key; `noise_payload`: our signed NoiseHandshakePayload.
    #[new]
    #[pyo3(signature = (
        host, port, certificate, private_key, noise_secret, noise_payload, now, fd = None, *,
        handshake_timeout = 10.0, max_handshakes = 64, max_connections = 1024,
        max_streams = 512, send_buffer = 1 << 20, fin_ack = true
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: &str,
        port: u16,
        certificate: &[u8],
        private_key: &[u8],
        noise_secret: &[u8],
        noise_payload: &[u8],
        now: f64,
        fd: Option<RawFd>,
        handshake_timeout: f64,
        max_handshakes: usize,
        max_connections: usize,
        max_streams: usize,
        send_buffer: usize,
        fin_ack: bool,
    ) -> PyResult<Self> {
        let ip = host
            .parse()
            .map_err(|_| PyValueError::new_err(format!("not an IP address: {host:?}")))?;
        let secret: [u8; 32] = noise_secret
            .try_into()
            .map_err(|_| PyValueError::new_err("noise_secret must be 32 bytes"))?;
        let handshake_timeout = Duration::try_from_secs_f64(handshake_timeout)
            .map_err(|_| PyValueError::new_err("handshake_timeout must be a positive number"))?;
        let config = Config {
            handshake_timeout,
            max_handshakes,
            max_connections,
            max_streams,
            send_buffer,
            fin_ack,
        };
        let sock = match fd {
            None => None,
            Some(fd) => {
                if fd < 0 {
                    return Err(PyValueError::new_err("bad file descriptor"));
                }
                // SAFETY: the caller passes the fd of a socket it keeps open for this call;
                // we only duplicate it (our copy is ours to close).
                let owned = unsafe { BorrowedFd::borrow_raw(fd) }
                    .try_clone_to_owned()
                    .map_err(|e| py_err(py, "TransportError", format!("dup: {e}")))?;
                Some(UdpSocket::from(owned))
            }
        };
        let cert = Certificate {
            der: certificate.to_vec(),
            private_key: private_key.to_vec(),
        };
        Ok(Self {
            ep: Endpoint::new(
                SocketAddr::new(ip, port),
                cert,
                secret,
                noise_payload.to_vec(),
                config,
            ),
            sock,
            epoch: Instant::now(),
            epoch_t: now,
            blocked: VecDeque::new(),
            recv_buf: vec![0; SLOT],
            datagrams_in: 0,
            datagrams_out: 0,
            send_errors: 0,
        })
    }

    /// The `/certhash` value of our certificate.
    #[getter]
    fn certhash(&self) -> String {
        certhash(&self.ep.fingerprint())
    }

    #[getter]
    fn connection_count(&self) -> usize {
        self.ep.connection_count()
    }

    /// `(datagrams_in, datagrams_out, send_errors, dropped)`.
    #[getter]
    fn stats(&self) -> (u64, u64, u64, u64) {
        (
            self.datagrams_in,
            self.datagrams_out,
            self.send_errors,
            self.ep.dropped,
        )
    }

    /// The socket is readable: receive every waiting datagram, feed them, answer, and return
    /// all the events and whether the socket refused writes.
    fn read_socket(&mut self, py: Python<'_>, now: f64) -> PyResult<(Vec<PyEvent>, bool)> {
        let at = self.instant(now);
        if let Some(sock) = self.sock.take() {
            for _ in 0..MAX_READS {
                match sock.recv_from(&mut self.recv_buf) {
                    Ok((n, from)) => {
                        self.datagrams_in += 1;
                        let buf = std::mem::take(&mut self.recv_buf);
                        self.ep.handle_datagram(from, &buf[..n], at);
                        self.recv_buf = buf;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break, // WouldBlock, or an ICMP error surfaced on the socket
                }
            }
            self.sock = Some(sock);
        }
        let blocked = self.send_all();
        Ok((self.events(py)?, blocked))
    }

    /// One datagram without a socket (tests).
    fn receive_datagram(
        &mut self,
        py: Python<'_>,
        data: &[u8],
        host: &str,
        port: u16,
        now: f64,
    ) -> PyResult<Vec<PyEvent>> {
        let ip = host
            .parse()
            .map_err(|_| PyValueError::new_err(format!("not an IP address: {host:?}")))?;
        let at = self.instant(now);
        self.ep.handle_datagram(SocketAddr::new(ip, port), data, at);
        self.events(py)
    }

    /// Datagrams due (without a socket): `[(data, host, port)]`.
    fn datagrams_to_send(&mut self, py: Python<'_>) -> Vec<(Py<PyBytes>, String, u16)> {
        let mut out = Vec::new();
        while let Some((dst, data)) = self.ep.poll_transmit() {
            out.push((
                PyBytes::new(py, &data).unbind(),
                dst.ip().to_string(),
                dst.port(),
            ));
        }
        out
    }

    /// Sends what is queued; returns events and whether the socket refused writes.
    fn flush(&mut self, py: Python<'_>) -> PyResult<(Vec<PyEvent>, bool)> {
        let blocked = self.send_all();
        Ok((self.events(py)?, blocked))
    }

    fn handle_timer(&mut self, py: Python<'_>, now: f64) -> PyResult<Vec<PyEvent>> {
        let at = self.instant(now);
        self.ep.handle_timeout(at);
        self.events(py)
    }

    /// When `handle_timer` is due, in the caller's clock.
    fn next_timer(&self) -> Option<f64> {
        self.ep.next_timeout().map(|t| {
            self.epoch_t
                + t.checked_duration_since(self.epoch)
                    .unwrap_or_default()
                    .as_secs_f64()
        })
    }

    fn stop_listening(&mut self) {
        self.ep.stop_listening();
    }

    fn open_stream(&mut self, py: Python<'_>, conn: u64) -> PyResult<u64> {
        self.ep.open_stream(conn).map_err(|e| rtc_err(py, &e))
    }

    /// Queues `data[start:end]` on a stream; returns the bytes taken.
    fn send(
        &mut self,
        py: Python<'_>,
        conn: u64,
        stream: u64,
        data: &[u8],
        start: usize,
        end: usize,
    ) -> PyResult<usize> {
        let end = end.min(data.len());
        let start = start.min(end);
        self.ep
            .send(conn, stream, &data[start..end])
            .map_err(|e| rtc_err(py, &e))
    }

    fn send_window(&mut self, py: Python<'_>, conn: u64, stream: u64) -> PyResult<usize> {
        self.ep
            .send_window(conn, stream)
            .map_err(|e| rtc_err(py, &e))
    }

    fn finish(&mut self, py: Python<'_>, conn: u64, stream: u64) -> PyResult<bool> {
        self.ep.finish(conn, stream).map_err(|e| rtc_err(py, &e))
    }

    fn reset(&mut self, py: Python<'_>, conn: u64, stream: u64) -> PyResult<()> {
        self.ep.reset(conn, stream).map_err(|e| rtc_err(py, &e))
    }

    fn close(&mut self, conn: u64) {
        self.ep.close(conn);
    }

    /// Dials `host:port` whose certificate has SHA-256 `fingerprint`, with ICE ufrag (and
    /// password) `ufrag`; returns the connection id (its EV_CONNECTED or EV_CLOSED follows).
    /// Call `flush` after to send the first datagrams.
    fn dial(
        &mut self,
        py: Python<'_>,
        host: &str,
        port: u16,
        fingerprint: &[u8],
        ufrag: &str,
        now: f64,
    ) -> PyResult<u64> {
        let ip = host
            .parse()
            .map_err(|_| PyValueError::new_err(format!("not an IP address: {host:?}")))?;
        let fp: [u8; 32] = fingerprint
            .try_into()
            .map_err(|_| PyValueError::new_err("fingerprint must be 32 bytes"))?;
        let now = self.instant(now);
        self.ep
            .dial(SocketAddr::new(ip, port), fp, ufrag, now)
            .map_err(|e| rtc_err(py, &e))
    }

    /// `/webrtc`: a new connection as the SDP offerer with ICE credentials `ufrag`/`pwd`;
    /// returns `(conn, offer_sdp)`. Its EV_CONNECTED (empty payload: no Noise) or EV_CLOSED
    /// follows once the answer and candidates went in.
    fn offer(
        &mut self,
        py: Python<'_>,
        ufrag: &str,
        pwd: &str,
        now: f64,
    ) -> PyResult<(u64, String)> {
        let now = self.instant(now);
        self.ep.offer(ufrag, pwd, now).map_err(|e| rtc_err(py, &e))
    }

    /// `/webrtc`: answers a remote offer; returns `(conn, answer_sdp)`.
    fn accept_offer(
        &mut self,
        py: Python<'_>,
        sdp: &str,
        ufrag: &str,
        pwd: &str,
        now: f64,
    ) -> PyResult<(u64, String)> {
        let now = self.instant(now);
        self.ep
            .accept_offer(sdp, ufrag, pwd, now)
            .map_err(|e| rtc_err(py, &e))
    }

    /// `/webrtc`: the remote's answer to our offer on `conn`.
    fn accept_answer(&mut self, py: Python<'_>, conn: u64, sdp: &str) -> PyResult<()> {
        self.ep
            .accept_answer(conn, sdp)
            .map_err(|e| rtc_err(py, &e))
    }

    /// `/webrtc`: one remote ICE candidate (`candidate:...`); False when skipped.
    fn add_remote_candidate(
        &mut self,
        py: Python<'_>,
        conn: u64,
        candidate: &str,
    ) -> PyResult<bool> {
        self.ep
            .add_remote_candidate(conn, candidate)
            .map_err(|e| rtc_err(py, &e))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEndpoint>()?;
    m.add_function(wrap_pyfunction!(new_certificate, m)?)?;
    m.add_function(wrap_pyfunction!(certificate_certhash, m)?)?;
    m.add_function(wrap_pyfunction!(fingerprint_of_certhash, m)?)?;
    m.add("EV_CONNECTED", EV_CONNECTED)?;
    m.add("EV_CLOSED", EV_CLOSED)?;
    m.add("EV_STREAM_OPENED", EV_STREAM_OPENED)?;
    m.add("EV_DATA", EV_DATA)?;
    m.add("EV_FIN", EV_FIN)?;
    m.add("EV_RESET", EV_RESET)?;
    m.add("EV_WRITABLE", EV_WRITABLE)?;
    m.add("EV_FINISHED", EV_FINISHED)?;
    Ok(())
}
