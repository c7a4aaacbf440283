//! Glue for `rapidp2p-quic`: one `Endpoint` per UDP socket. Python keeps asyncio in charge of
//! readiness (`add_reader`/`add_writer` on the socket's fd); each readiness event is ONE call
//! here that does the system calls in batches (recvmmsg with UDP GRO in, sendmmsg/UDP GSO out
//! through quinn-udp, plain send/recv where the kernel lacks them), feeds every datagram to
//! quinn-proto and returns all the events at once. Without a socket (`fd=None`) the same
//! endpoint is driven by `receive_datagram` / `datagrams_to_send` (tests, simulations).
//!
//! Time: `now` is the caller's monotonic clock in seconds (asyncio's `loop.time()`), mapped
//! onto `Instant` from the first value seen. Conversion only: every decision is the crate's.

use std::io::{ErrorKind, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use quinn_udp::{RecvMeta, Transmit as UdpTransmit, UdpSocketState, BATCH_SIZE};
use rapidp2p_quic::{CloseKind, CloseReason, Endpoint, Event, QuicConfig, QuicError};

use crate::errors::py_err;
use crate::tls::{unix_now, PyIdentity};

pub const EV_CONNECTED: u8 = 0;
pub const EV_CLOSED: u8 = 1;
pub const EV_STREAM_OPENED: u8 = 2;
pub const EV_DATA: u8 = 3;
pub const EV_FIN: u8 = 4;
pub const EV_RESET: u8 = 5;
pub const EV_WRITABLE: u8 = 6;
pub const EV_STREAMS_AVAILABLE: u8 = 7;
pub const EV_PING_RTT: u8 = 8;
pub const EV_FINISHED: u8 = 9;
pub const EV_SESSION: u8 = 10;

/// Receive batches per `read_socket` call at most: the loop gets control back in between.
const MAX_READ_BATCHES: usize = 64;
/// Datagrams per GSO send at most: a batch must stay under 64 KiB (the kernel refuses a larger
/// one with EMSGSIZE, which quinn-udp reports as sent), and ten is what quinn itself uses.
const MAX_GSO_SEGMENTS: usize = 10;
/// One receive slot holds a whole GRO batch (the kernel caps it at 64 KiB).
const SLOT: usize = 65_535;

type PyEvent = (u8, u64, u64, Py<PyAny>);
/// A datagram the socket refused: destination, ECN bits, GSO segment size, contents.
type Blocked = (SocketAddr, Option<u8>, Option<usize>, Vec<u8>);

fn quic_err(py: Python<'_>, e: &QuicError) -> PyErr {
    let class = match e {
        QuicError::UnknownConnection(_) => "ConnectionClosedError",
        QuicError::UnknownStream(_) | QuicError::StreamClosed(_) => "StreamClosedError",
        QuicError::StreamReset(_) => "StreamResetError",
        QuicError::Dial(_) => "DialError",
        QuicError::Config(_) => "LocalProtocolError",
        QuicError::Tls(t) => return crate::tls::tls_err(py, t),
    };
    py_err(py, class, e.to_string())
}

fn close_err(py: Python<'_>, r: &CloseReason) -> PyErr {
    let class = match r.kind {
        CloseKind::PeerIdMismatch => "PeerIdMismatch",
        CloseKind::Certificate => "CertificateError",
        CloseKind::Handshake | CloseKind::HandshakeTimeout => "HandshakeError",
        CloseKind::Refused => "DialRefused",
        CloseKind::Closed => "ConnectionClosedError",
        CloseKind::Protocol => "RemoteProtocolError",
    };
    py_err(py, class, r.message.clone())
}

/// An error a send reports for an earlier datagram (an ICMP message), not this one.
fn is_icmp_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable
    )
}

fn sockaddr(host: &str, port: u16) -> PyResult<SocketAddr> {
    let ip: IpAddr = host
        .parse()
        .map_err(|_| PyValueError::new_err(format!("not an IP address: {host:?}")))?;
    Ok(SocketAddr::new(ip, port))
}

/// Asks the kernel to queue ICMP errors for the socket (read back by [`icmp_refusals`]):
/// a dial to a port nothing listens on then fails at once instead of at the handshake
/// timeout. Best effort: without it such dials still end, only later.
#[cfg(target_os = "linux")]
fn enable_icmp_errors(sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let (level, name) = match sock.local_addr() {
        Ok(SocketAddr::V6(_)) => (libc::SOL_IPV6, libc::IPV6_RECVERR),
        _ => (libc::SOL_IP, libc::IP_RECVERR),
    };
    let on: libc::c_int = 1;
    // SAFETY: a valid fd we own and a c_int option value of the right size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            std::ptr::addr_of!(on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn enable_icmp_errors(_sock: &UdpSocket) {}

/// Drains the socket's error queue (MSG_ERRQUEUE); returns the destinations that answered
/// with an ICMP port unreachable (errno ECONNREFUSED). Other errors are dropped.
#[cfg(target_os = "linux")]
fn icmp_refusals(sock: &UdpSocket) -> Vec<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
    use std::os::fd::AsRawFd;
    let mut out = Vec::new();
    // At most this many queued errors per call (the kernel caps the queue by the socket's
    // receive buffer; a flood of forged ICMP must not keep us here).
    for _ in 0..64 {
        // SAFETY: zeroed plain C structs; recvmsg writes within the lengths we give it.
        let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut control = [0u64; 64];
        let mut data = [0u8; 64];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = std::ptr::addr_of_mut!(name).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let r = unsafe {
            libc::recvmsg(
                sock.as_raw_fd(),
                &mut msg,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            break; // EAGAIN: the queue is empty
        }
        let mut refused = false;
        // SAFETY: walking the control buffer recvmsg filled, with the kernel's macros.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !cmsg.is_null() {
            let c = unsafe { &*cmsg };
            let ours = (c.cmsg_level == libc::SOL_IP && c.cmsg_type == libc::IP_RECVERR)
                || (c.cmsg_level == libc::SOL_IPV6 && c.cmsg_type == libc::IPV6_RECVERR);
            if ours {
                let ee: libc::sock_extended_err =
                    unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
                let icmp = ee.ee_origin == libc::SO_EE_ORIGIN_ICMP
                    || ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6;
                refused |= icmp && ee.ee_errno == libc::ECONNREFUSED as u32;
            }
            cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
        }
        if !refused {
            continue;
        }
        // The name is the destination of the datagram the ICMP message answers.
        let addr = match libc::c_int::from(name.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin: libc::sockaddr_in =
                    unsafe { std::ptr::read_unaligned(std::ptr::addr_of!(name).cast()) };
                SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                    u16::from_be(sin.sin_port),
                )
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6: libc::sockaddr_in6 =
                    unsafe { std::ptr::read_unaligned(std::ptr::addr_of!(name).cast()) };
                SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                ))
            }
            _ => continue,
        };
        out.push(addr);
    }
    out
}

#[cfg(not(target_os = "linux"))]
fn icmp_refusals(_sock: &UdpSocket) -> Vec<SocketAddr> {
    Vec::new()
}

/// The socket half: our own duplicate of the caller's fd (closed with the endpoint) and
/// quinn-udp's per-socket state (GSO/GRO support found at setup).
struct Socket {
    sock: UdpSocket,
    state: UdpSocketState,
    recv_buf: Vec<u8>,
    metas: Vec<RecvMeta>,
}

/// One UDP socket's QUIC endpoint (dialling, and accepting when `listen`).
#[pyclass(module = "rapidp2p._core.quic", name = "Endpoint", unsendable)]
pub struct PyEndpoint {
    ep: Endpoint,
    socket: Option<Socket>,
    epoch: Instant,
    epoch_t: f64,
    /// A datagram the socket refused (EAGAIN): sent first at the next flush.
    blocked: Option<Blocked>,
    out: Vec<u8>,
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

    fn events(&mut self, py: Python<'_>, now: Instant) -> PyResult<Vec<PyEvent>> {
        let events = self.ep.process(now);
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            out.push(convert(py, ev)?);
        }
        Ok(out)
    }

    /// Sends what is due; true when the socket refused more (wait for writability).
    fn send_all(&mut self, now: Instant) -> bool {
        let Some(s) = self.socket.as_ref() else {
            return false;
        };
        if let Some((dst, ecn, seg, data)) = self.blocked.take() {
            let t = UdpTransmit {
                destination: dst,
                ecn: ecn.and_then(quinn_udp::EcnCodepoint::from_bits),
                contents: &data,
                segment_size: seg,
                src_ip: None,
            };
            match s.state.try_send((&s.sock).into(), &t) {
                Ok(()) => self.datagrams_out += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.blocked = Some((dst, ecn, seg, data));
                    return true;
                }
                Err(_) => self.send_errors += 1,
            }
        }
        let max = s.state.max_gso_segments().clamp(1, MAX_GSO_SEGMENTS);
        let mut buf = std::mem::take(&mut self.out);
        let mut refused = false;
        while let Some(t) = self.ep.poll_transmit(now, max, &mut buf) {
            let ecn = t.ecn.map(|e| e as u8);
            let seg = t.segment_size;
            let ut = UdpTransmit {
                destination: t.destination,
                ecn: ecn.and_then(quinn_udp::EcnCodepoint::from_bits),
                contents: &buf[..t.size],
                segment_size: seg,
                src_ip: t.src_ip,
            };
            let mut sent = s.state.try_send((&s.sock).into(), &ut);
            if sent.as_ref().is_err_and(is_icmp_error) {
                // A queued ICMP error (read by the next `read_socket`) failed this send, not
                // the datagram itself: send it again.
                sent = s.state.try_send((&s.sock).into(), &ut);
            }
            match sent {
                Ok(()) => self.datagrams_out += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.blocked = Some((t.destination, ecn, seg, buf[..t.size].to_vec()));
                    refused = true;
                    break;
                }
                Err(_) => self.send_errors += 1,
            }
        }
        self.out = buf;
        refused
    }
}

fn convert(py: Python<'_>, ev: Event) -> PyResult<PyEvent> {
    let none = || py.None();
    Ok(match ev {
        Event::Connected {
            conn,
            inbound,
            remote,
            peer,
        } => {
            let v = (
                PyBytes::new(py, &peer.peer_id),
                PyBytes::new(py, &peer.public_key),
                remote.ip().to_string(),
                remote.port(),
                inbound,
            )
                .into_pyobject(py)?
                .into_any()
                .unbind();
            (EV_CONNECTED, conn, 0, v)
        }
        Event::Closed { conn, reason } => {
            let err = close_err(py, &reason);
            (EV_CLOSED, conn, 0, err.into_value(py).into_any())
        }
        Event::StreamOpened { conn, stream } => (EV_STREAM_OPENED, conn, stream, none()),
        Event::Data {
            conn,
            stream,
            chunks,
        } => {
            let v = if chunks.len() == 1 {
                PyBytes::new(py, &chunks[0])
            } else {
                let n = chunks.iter().map(|c| c.len()).sum();
                PyBytes::new_with(py, n, |dst| {
                    let mut at = 0;
                    for c in &chunks {
                        dst[at..at + c.len()].copy_from_slice(c);
                        at += c.len();
                    }
                    Ok(())
                })?
            };
            (EV_DATA, conn, stream, v.into_any().unbind())
        }
        Event::Fin { conn, stream } => (EV_FIN, conn, stream, none()),
        Event::Reset { conn, stream } => (EV_RESET, conn, stream, none()),
        Event::Writable { conn, stream } => (EV_WRITABLE, conn, stream, none()),
        Event::Finished { conn, stream } => (EV_FINISHED, conn, stream, none()),
        Event::StreamsAvailable { conn } => (EV_STREAMS_AVAILABLE, conn, 0, none()),
        Event::SessionReady {
            conn,
            inbound,
            remote,
            certhash,
        } => {
            let certhash = certhash.map(|c| PyBytes::new(py, &c));
            let v = (remote.ip().to_string(), remote.port(), inbound, certhash)
                .into_pyobject(py)?
                .into_any()
                .unbind();
            (EV_SESSION, conn, 0, v)
        }
        Event::PingRtt { conn, rtt } => (
            EV_PING_RTT,
            conn,
            0,
            rtt.into_pyobject(py)?.into_any().unbind(),
        ),
    })
}

#[pymethods]
impl PyEndpoint {
    /// `fd`: the bound, non-blocking UDP socket (duplicated: the caller keeps its own);
    /// None drives the endpoint by `receive_datagram`/`datagrams_to_send` instead.
    /// `icmp_errors`: queue ICMP errors on the socket (fast refusal of dials to closed ports);
    /// only for an event loop that calls the reader on EPOLLERR (libuv stops polling).
    #[new]
    #[pyo3(signature = (
        identity, listen, now, fd = None, *, handshake_timeout = 10.0, idle_timeout = 30.0,
        keep_alive = 10.0, max_streams = 256, stream_window = 8 << 20,
        connection_window = 16 << 20, initial_connection_window = 1 << 20,
        max_handshakes = 256, retry_above = 64, icmp_errors = true, webtransport = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        identity: &PyIdentity,
        listen: bool,
        now: f64,
        fd: Option<RawFd>,
        handshake_timeout: f64,
        idle_timeout: f64,
        keep_alive: Option<f64>,
        max_streams: u32,
        stream_window: u32,
        connection_window: u32,
        initial_connection_window: u32,
        max_handshakes: usize,
        retry_above: usize,
        icmp_errors: bool,
        webtransport: Option<(Vec<u8>, Vec<u8>)>,
    ) -> PyResult<Self> {
        let secs = |v: f64, what: &str| {
            Duration::try_from_secs_f64(v)
                .map_err(|_| PyValueError::new_err(format!("{what} must be a positive number")))
        };
        let config = QuicConfig {
            max_idle_timeout: secs(idle_timeout, "idle_timeout")?,
            keep_alive_interval: keep_alive.map(|k| secs(k, "keep_alive")).transpose()?,
            handshake_timeout: secs(handshake_timeout, "handshake_timeout")?,
            max_streams_per_connection: max_streams,
            stream_receive_window: stream_window,
            connection_receive_window: connection_window,
            initial_connection_window,
            send_window: u64::from(connection_window),
            max_handshakes,
            retry_above,
        };
        let socket = match fd {
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
                let sock = UdpSocket::from(owned);
                if icmp_errors {
                    enable_icmp_errors(&sock);
                }
                let state = UdpSocketState::new((&sock).into())
                    .map_err(|e| py_err(py, "TransportError", format!("UDP setup: {e}")))?;
                let slot = SLOT.min(1500 * state.gro_segments().max(1));
                Some(Socket {
                    sock,
                    state,
                    recv_buf: vec![0; slot * BATCH_SIZE],
                    metas: vec![RecvMeta::default(); BATCH_SIZE],
                })
            }
        };
        let allow_mtud = socket.as_ref().is_some_and(|s| !s.state.may_fragment());
        let mut ep = match webtransport {
            // A WebTransport listener: (certificate DER, PKCS#8 key DER).
            Some((der, key)) => {
                Endpoint::new_webtransport(identity.inner.clone(), config, &der, &key, allow_mtud)
            }
            None => Endpoint::new(identity.inner.clone(), config, listen, allow_mtud),
        }
        .map_err(|e| quic_err(py, &e))?;
        ep.set_unix_time(unix_now());
        Ok(Self {
            ep,
            socket,
            epoch: Instant::now(),
            epoch_t: now,
            blocked: None,
            out: Vec::new(),
            datagrams_in: 0,
            datagrams_out: 0,
            send_errors: 0,
        })
    }

    /// The socket is readable: receive every waiting datagram (batched), feed them, answer
    /// (ACKs, handshake replies) and return all the events.
    fn read_socket(&mut self, py: Python<'_>, now: f64) -> PyResult<(Vec<PyEvent>, bool)> {
        let at = self.instant(now);
        self.ep.set_unix_time(unix_now());
        if let Some(mut s) = self.socket.take() {
            let slot = s.recv_buf.len() / BATCH_SIZE;
            // Read the error queue when a receive reported an ICMP error, or when the socket
            // was ready with nothing to receive (its error queue is what woke us).
            let mut check_errors = true;
            'batches: for _ in 0..MAX_READ_BATCHES {
                let n = {
                    let mut slices: Vec<IoSliceMut<'_>> =
                        s.recv_buf.chunks_mut(slot).map(IoSliceMut::new).collect();
                    match s.state.recv((&s.sock).into(), &mut slices, &mut s.metas) {
                        Ok(n) => n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break 'batches,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        // A queued ICMP error (port unreachable...): read after the batches.
                        Err(_) => {
                            check_errors = true;
                            continue;
                        }
                    }
                };
                check_errors &= n == 0;
                for (i, meta) in s.metas[..n].iter().enumerate() {
                    let data = &s.recv_buf[i * slot..i * slot + meta.len];
                    self.datagrams_in += 1;
                    self.ep.handle_datagram(
                        at,
                        meta.addr,
                        meta.dst_ip,
                        meta.ecn.map(|e| e as u8),
                        data,
                        Some(meta.stride),
                    );
                }
            }
            if check_errors {
                for remote in icmp_refusals(&s.sock) {
                    self.ep.unreachable(at, remote);
                }
            }
            self.socket = Some(s);
        }
        let events = self.events(py, at)?;
        let blocked = self.send_all(at);
        Ok((events, blocked))
    }

    /// Runs the endpoint after API calls (sends, opens, closes): returns the events and sends
    /// what is due; the flag is true when the socket refused more (wait until writable).
    fn flush(&mut self, py: Python<'_>, now: f64) -> PyResult<(Vec<PyEvent>, bool)> {
        let at = self.instant(now);
        let mut events = self.events(py, at)?;
        let blocked = self.send_all(at);
        // Transmitting may retire connections (drained): report them now.
        events.extend(self.events(py, at)?);
        Ok((events, blocked))
    }

    /// Runs the due timers; returns the events (then call `flush`).
    fn handle_timer(&mut self, py: Python<'_>, now: f64) -> PyResult<Vec<PyEvent>> {
        let at = self.instant(now);
        self.ep.handle_timeout(at);
        self.events(py, at)
    }

    /// When `handle_timer` must run next, in the caller's clock (None: no timer).
    fn next_timer(&mut self) -> Option<f64> {
        self.ep
            .next_timeout()
            .map(|t| self.epoch_t + t.saturating_duration_since(self.epoch).as_secs_f64())
    }

    /// Socketless mode: one received datagram from `(host, port)`.
    fn receive_datagram(&mut self, data: &[u8], host: &str, port: u16, now: f64) -> PyResult<()> {
        let remote = sockaddr(host, port)?;
        let at = self.instant(now);
        self.datagrams_in += 1;
        self.ep.handle_datagram(at, remote, None, None, data, None);
        Ok(())
    }

    /// Socketless mode: every datagram due, as `(bytes, host, port)`.
    fn datagrams_to_send<'py>(
        &mut self,
        py: Python<'py>,
        now: f64,
    ) -> Vec<(Bound<'py, PyBytes>, String, u16)> {
        let at = self.instant(now);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(t) = self.ep.poll_transmit(at, 1, &mut buf) {
            let d = t.destination;
            self.datagrams_out += 1;
            out.push((
                PyBytes::new(py, &buf[..t.size]),
                d.ip().to_string(),
                d.port(),
            ));
        }
        out
    }

    /// Starts a dial; `expected_peer` (peer id bytes) is the only identity accepted.
    /// Returns the connection id (`EV_CONNECTED` or `EV_CLOSED` follows).
    #[pyo3(signature = (host, port, expected_peer, now))]
    fn connect(
        &mut self,
        py: Python<'_>,
        host: &str,
        port: u16,
        expected_peer: Option<&[u8]>,
        now: f64,
    ) -> PyResult<u64> {
        let remote = sockaddr(host, port)?;
        let at = self.instant(now);
        self.ep.set_unix_time(unix_now());
        self.ep
            .connect(at, remote, expected_peer)
            .map_err(|e| quic_err(py, &e))
    }

    /// Starts a WebTransport dial: only a server certificate whose SHA-256 is one of
    /// `digests` (32 bytes each, the multiaddr's `/certhash` values) is accepted. Returns
    /// the connection id (`EV_SESSION`, carrying the presented certificate's multihash, or
    /// `EV_CLOSED` follows).
    fn connect_webtransport(
        &mut self,
        py: Python<'_>,
        host: &str,
        port: u16,
        digests: Vec<Vec<u8>>,
        now: f64,
    ) -> PyResult<u64> {
        let remote = sockaddr(host, port)?;
        let digests = digests
            .into_iter()
            .map(|d| {
                <[u8; 32]>::try_from(d.as_slice())
                    .map_err(|_| PyValueError::new_err("a certificate digest is 32 bytes"))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let at = self.instant(now);
        self.ep.set_unix_time(unix_now());
        self.ep
            .connect_webtransport(at, remote, digests)
            .map_err(|e| quic_err(py, &e))
    }

    /// A new bidirectional stream, or None while the peer's stream limit is reached.
    fn open_stream(&mut self, py: Python<'_>, conn: u64) -> PyResult<Option<u64>> {
        self.ep.open_stream(conn).map_err(|e| quic_err(py, &e))
    }

    /// Offers `data[start:end]`; returns the bytes taken now.
    #[pyo3(signature = (conn, stream, data, start = 0, end = None))]
    fn send(
        &mut self,
        py: Python<'_>,
        conn: u64,
        stream: u64,
        data: &[u8],
        start: usize,
        end: Option<usize>,
    ) -> PyResult<usize> {
        let end = end.unwrap_or(data.len()).min(data.len());
        let part = data
            .get(start..end)
            .ok_or_else(|| PyValueError::new_err("bad range"))?;
        self.ep
            .send(conn, stream, part)
            .map_err(|e| quic_err(py, &e))
    }

    /// Nonzero (`cap`) while the stream takes writes.
    #[pyo3(signature = (conn, stream, cap = 1 << 20))]
    fn send_window(&mut self, conn: u64, stream: u64, cap: usize) -> usize {
        self.ep.send_window(conn, stream, cap)
    }

    /// FIN after the queued data (idempotent); true when queued now (`EV_FINISHED` follows).
    fn finish(&mut self, py: Python<'_>, conn: u64, stream: u64) -> PyResult<bool> {
        self.ep.finish(conn, stream).map_err(|e| quic_err(py, &e))
    }

    /// Resets the stream both ways (no-op when gone).
    fn reset(&mut self, conn: u64, stream: u64) {
        self.ep.reset(conn, stream);
    }

    /// The application read `n` bytes of the stream.
    fn ack(&mut self, conn: u64, stream: u64, n: u64) {
        self.ep.ack(conn, stream, n);
    }

    /// A WebTransport listener presents this certificate from now on (rotation).
    fn set_webtransport_certificate(
        &mut self,
        py: Python<'_>,
        der: &[u8],
        key: &[u8],
    ) -> PyResult<()> {
        self.ep
            .set_webtransport_certificate(der, key)
            .map_err(|e| quic_err(py, &e))
    }

    /// Sends a PING (`EV_PING_RTT` follows).
    fn ping(&mut self, py: Python<'_>, conn: u64, now: f64) -> PyResult<()> {
        let at = self.instant(now);
        self.ep.ping(conn, at).map_err(|e| quic_err(py, &e))
    }

    /// Smoothed RTT in seconds (None when the connection is gone).
    fn rtt(&mut self, conn: u64) -> Option<f64> {
        self.ep.rtt(conn)
    }

    /// Closes the connection (CONNECTION_CLOSE goes out at the next flush; `EV_CLOSED`
    /// is in the next events).
    #[pyo3(signature = (conn, now, code = 0, reason = ""))]
    fn close(&mut self, conn: u64, now: f64, code: u32, reason: &str) {
        let at = self.instant(now);
        self.ep.close(conn, at, code, reason);
    }

    /// Sets the connection's receive window (the memory budget the resource manager
    /// granted), capped at the endpoint's `connection_window`.
    fn set_receive_window(&mut self, conn: u64, bytes: u64) {
        self.ep.set_receive_window(conn, bytes);
    }

    /// The connection's receive window now (0 when gone).
    fn receive_window(&mut self, conn: u64) -> u64 {
        self.ep.receive_window(conn)
    }

    /// True when the peer used a whole window since it was set and the window may grow.
    fn window_capped(&mut self, conn: u64) -> bool {
        self.ep.window_capped(conn)
    }

    /// How many streams the peer may open at once (0: none more, a GoAway).
    fn set_max_streams(&mut self, conn: u64, n: u32) {
        self.ep.set_max_streams(conn, n);
    }

    /// Stops accepting connections (new dials are refused); existing ones go on.
    fn stop_listening(&mut self) {
        self.ep.stop_listening();
    }

    /// Live connections (handshaking, established or draining).
    #[getter]
    fn connection_count(&self) -> usize {
        self.ep.connection_count()
    }

    /// `(datagrams_in, datagrams_out, send_errors, gso_segments, gro_segments)`.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let (gso, gro) = self.socket.as_ref().map_or((1, 1), |s| {
            (s.state.max_gso_segments(), s.state.gro_segments())
        });
        (
            self.datagrams_in,
            self.datagrams_out,
            self.send_errors,
            gso,
            gro,
        )
            .into_pyobject(py)
    }
}

/// A self-signed ECDSA P-256 certificate for a WebTransport listener, valid from
/// `not_before` (Unix seconds) for `validity` seconds (at most 14 days):
/// `(der, pkcs8_key_der)`.
#[pyfunction]
fn new_webtransport_certificate(
    py: Python<'_>,
    not_before: i64,
    validity: i64,
) -> PyResult<(Py<PyBytes>, Py<PyBytes>)> {
    let c = rapidp2p_webtransport::new_certificate(not_before, validity)
        .map_err(|e| py_err(py, "TransportError", e.to_string()))?;
    Ok((
        PyBytes::new(py, &c.der).unbind(),
        PyBytes::new(py, &c.private_key).unbind(),
    ))
}

/// The sha2-256 multihash of a DER certificate (the bytes NoiseExtensions carries).
#[pyfunction]
fn webtransport_certhash(py: Python<'_>, der: &[u8]) -> Py<PyBytes> {
    PyBytes::new(py, &rapidp2p_webtransport::cert::certhash_multihash(der)).unbind()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEndpoint>()?;
    m.add("EV_CONNECTED", EV_CONNECTED)?;
    m.add("EV_CLOSED", EV_CLOSED)?;
    m.add("EV_STREAM_OPENED", EV_STREAM_OPENED)?;
    m.add("EV_DATA", EV_DATA)?;
    m.add("EV_FIN", EV_FIN)?;
    m.add("EV_RESET", EV_RESET)?;
    m.add("EV_WRITABLE", EV_WRITABLE)?;
    m.add("EV_STREAMS_AVAILABLE", EV_STREAMS_AVAILABLE)?;
    m.add("EV_PING_RTT", EV_PING_RTT)?;
    m.add("EV_FINISHED", EV_FINISHED)?;
    m.add("EV_SESSION", EV_SESSION)?;
    m.add_function(wrap_pyfunction!(new_webtransport_certificate, m)?)?;
    m.add_function(wrap_pyfunction!(webtransport_certhash, m)?)?;
    Ok(())
}
