//! One UDP socket's worth of QUIC: a quinn-proto endpoint and its connections, driven by
//! datagrams and time from the caller. Every entry point only records work; [`Endpoint::process`]
//! then drives the connections it touched and returns their events in one batch, and
//! [`Endpoint::poll_transmit`] hands out the datagrams to send.
//!
//! Receive flow control follows the application: a stream's bytes leave quinn-proto (which
//! then grants the peer credit) only while fewer than a stream window of them, and fewer than
//! the connection's window of all its streams together, wait unread above; the caller's
//! [`Endpoint::ack`] makes room again. A connection thus holds at most its window inside
//! quinn-proto plus its window unread by the caller (the memory its budget pays for), except
//! that every stream may hold [`STREAM_FLOOR`] unread whatever the others hold, so one stream
//! the application does not read never stops the others (as yamux's initial windows).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use quinn_proto::{
    ConnectionError, ConnectionHandle, DatagramEvent, Dir, EcnCodepoint, Event as QEvent,
    FinishError, Incoming, ReadError, ReadableError, ServerConfig, StreamEvent, StreamId,
    TransportConfig, VarInt, WriteError,
};
use rapidp2p_tls::{verify_certificate, Clock, Identity, PeerCertificate};
use rapidp2p_webtransport::cert::certhash_multihash;
use rapidp2p_webtransport::session::code as h3code;
use rapidp2p_webtransport::{BidiOutcome, Limits, ServerSession, UniOutcome, WtError};
use rustls::pki_types::CertificateDer;

use crate::config::QuicConfig;
use crate::error::{CloseKind, CloseReason, QuicError};
use crate::verifier::CapturingVerifier;

/// Unread bytes every stream may hold beyond the connection's window (yamux's initial window).
const STREAM_FLOOR: u64 = 256 * 1024;
/// A WebTransport client's CONNECT goes on its first bidirectional stream.
const WT_CONNECT_STREAM: u64 = 0;

/// What happened, for the caller (ids are ours, never reused by this endpoint).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The handshake finished; `peer` is what the peer's certificate proves.
    Connected {
        conn: u64,
        inbound: bool,
        remote: SocketAddr,
        peer: PeerCertificate,
    },
    /// The connection ended (no more events for it).
    Closed { conn: u64, reason: CloseReason },
    /// The peer opened a stream.
    StreamOpened { conn: u64, stream: u64 },
    /// Bytes of a stream, in order (several chunks of one call together).
    Data {
        conn: u64,
        stream: u64,
        chunks: Vec<Bytes>,
    },
    /// The peer finished its side of the stream (after all its data).
    Fin { conn: u64, stream: u64 },
    /// The peer reset the stream or stopped reading it: both directions are over.
    Reset { conn: u64, stream: u64 },
    /// A stream whose writes were refused takes data again.
    Writable { conn: u64, stream: u64 },
    /// The peer allows more streams: an open that found none may try again.
    StreamsAvailable { conn: u64 },
    /// Nothing of ours is pending on the stream any more: everything we wrote, FIN
    /// included, was acknowledged, or the peer stopped reading (STOP_SENDING; our writes
    /// then fail as a reset, and what the peer sends stays readable).
    Finished { conn: u64, stream: u64 },
    /// A PING we sent was followed by an acknowledgement: `rtt` seconds.
    PingRtt { conn: u64, rtt: f64 },
    /// A WebTransport endpoint's connection: the extended CONNECT was accepted and the
    /// session is up (instead of `Connected`: nobody's identity is proven yet; the caller
    /// runs Noise on the first stream).
    SessionReady {
        conn: u64,
        inbound: bool,
        remote: SocketAddr,
        /// A dial's: the sha2-256 multihash of the certificate the server presented (the
        /// caller checks it is among the hashes the server lists in Noise).
        certhash: Option<Vec<u8>>,
    },
}

/// Who reads a stream's bytes.
#[derive(Default, Debug)]
enum Role {
    /// The caller's (a libp2p stream).
    #[default]
    App,
    /// The HTTP/3 layer's (control, QPACK, the CONNECT request, or a stream whose header
    /// has not arrived yet).
    H3,
    /// A WebTransport stream that came before its session was accepted: its payload so far
    /// and whether the peer finished it; not read further until the session is up.
    Parked(Vec<u8>, bool),
}

#[derive(Default)]
struct StreamState {
    /// Delivered to the caller and not acknowledged as read yet.
    unread: u64,
    /// Reading stopped at the window: read again once the caller acks.
    want_read: bool,
    recv_done: bool,
    send_done: bool,
    send_blocked: bool,
    /// The peer stopped reading (STOP_SENDING): writes fail as a reset.
    stopped: bool,
    role: Role,
}

struct Conn {
    handle: ConnectionHandle,
    inner: quinn_proto::Connection,
    inbound: bool,
    connected: bool,
    /// Set once `Closed` went out.
    ended: bool,
    handshake_deadline: Option<Instant>,
    verifier: Option<Arc<CapturingVerifier>>,
    streams: HashMap<u64, StreamState>,
    to_read: Vec<u64>,
    ping: Option<(Instant, u64)>,
    /// The connection's receive window now (bytes the peer may send ahead of our reads).
    window: u64,
    /// Stream bytes taken out of quinn-proto since the window was last set.
    read_since_set: u64,
    /// Bytes of all streams delivered to the caller and not acknowledged as read yet.
    unread: u64,
    /// A stream stopped reading because `unread` reached the window.
    conn_blocked: bool,
    /// A WebTransport connection's HTTP/3 state (None for libp2p QUIC).
    h3: Option<ServerSession>,
}

/// The sans-IO endpoint: one per UDP socket, dialling and (with a server config) accepting.
pub struct Endpoint {
    inner: quinn_proto::Endpoint,
    config: QuicConfig,
    identity: Identity,
    transport: Arc<TransportConfig>,
    server: Option<Arc<ServerConfig>>,
    conns: HashMap<u64, Conn>,
    by_handle: HashMap<ConnectionHandle, u64>,
    next_id: u64,
    touched: HashSet<u64>,
    /// Connections that may have datagrams to send, in order.
    sending: VecDeque<u64>,
    in_sending: HashSet<u64>,
    /// Endpoint-level datagrams (stateless reset, version negotiation, Retry, refusal).
    responses: VecDeque<(quinn_proto::Transmit, Vec<u8>)>,
    events: Vec<Event>,
    scratch: Vec<u8>,
    /// Wall-clock seconds (certificate validity), set by the caller with the time; rustls
    /// reads it through every configuration this endpoint makes.
    clock: Clock,
    /// A WebTransport endpoint: every connection speaks HTTP/3 (ALPN `h3`).
    webtransport: bool,
}

fn stream_id(raw: u64) -> Result<StreamId, QuicError> {
    VarInt::from_u64(raw)
        .map(StreamId::from)
        .map_err(|_| QuicError::UnknownStream(raw))
}

impl Endpoint {
    /// `listen`: accept inbound connections (a listener's socket); `allow_mtud`: the socket
    /// never fragments, so path MTU discovery may probe.
    pub fn new(
        identity: Identity,
        config: QuicConfig,
        listen: bool,
        allow_mtud: bool,
    ) -> Result<Self, QuicError> {
        let transport = config.transport()?;
        let clock = Clock::default();
        let server = if listen {
            Some(config.server(&identity, transport.clone(), &clock)?)
        } else {
            None
        };
        let inner = quinn_proto::Endpoint::new(config.endpoint(), server.clone(), allow_mtud, None);
        Ok(Self {
            inner,
            config,
            identity,
            transport,
            server,
            conns: HashMap::new(),
            by_handle: HashMap::new(),
            next_id: 1,
            touched: HashSet::new(),
            sending: VecDeque::new(),
            in_sending: HashSet::new(),
            responses: VecDeque::new(),
            events: Vec::new(),
            scratch: Vec::new(),
            clock,
            webtransport: false,
        })
    }

    /// A WebTransport listener: its TLS presents `cert_der` (self-signed, whose hash is in
    /// the multiaddr), ALPN `h3`, no client certificate; the HTTP/3 layer answers the
    /// extended CONNECT and WebTransport streams become the caller's streams.
    pub fn new_webtransport(
        identity: Identity,
        config: QuicConfig,
        cert_der: &[u8],
        key_der: &[u8],
        allow_mtud: bool,
    ) -> Result<Self, QuicError> {
        let transport = config.webtransport_transport()?;
        let server = config.webtransport_server(cert_der, key_der, transport.clone())?;
        let mut ep = Self::new(identity, config, false, allow_mtud)?;
        ep.inner.set_server_config(Some(server.clone()));
        ep.server = Some(server);
        ep.transport = transport;
        ep.webtransport = true;
        Ok(ep)
    }

    /// Presents another certificate from now on (rotation); connections already made keep
    /// theirs. Only for a WebTransport endpoint that still listens.
    pub fn set_webtransport_certificate(
        &mut self,
        cert_der: &[u8],
        key_der: &[u8],
    ) -> Result<(), QuicError> {
        if !self.webtransport || self.server.is_none() {
            return Err(QuicError::Config(
                "not a listening WebTransport endpoint".into(),
            ));
        }
        let server = self
            .config
            .webtransport_server(cert_der, key_der, self.transport.clone())?;
        self.inner.set_server_config(Some(server.clone()));
        self.server = Some(server);
        Ok(())
    }

    /// Wall-clock time in Unix seconds, for certificate validity checks.
    pub fn set_unix_time(&mut self, secs: i64) {
        self.clock.set(secs);
    }

    /// Live connections (handshaking or established).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    fn handshaking(&self) -> usize {
        self.conns
            .values()
            .filter(|c| c.inbound && !c.connected && !c.ended)
            .count()
    }

    fn insert(
        &mut self,
        handle: ConnectionHandle,
        conn: quinn_proto::Connection,
        inbound: bool,
        now: Instant,
        verifier: Option<Arc<CapturingVerifier>>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(
            id,
            Conn {
                handle,
                inner: conn,
                inbound,
                connected: false,
                ended: false,
                handshake_deadline: Some(now + self.config.handshake_timeout),
                verifier,
                streams: HashMap::new(),
                to_read: Vec::new(),
                ping: None,
                window: u64::from(
                    self.config
                        .initial_connection_window
                        .min(self.config.connection_receive_window),
                ),
                read_since_set: 0,
                unread: 0,
                conn_blocked: false,
                h3: if self.webtransport && inbound {
                    Some(ServerSession::new(Limits::default()))
                } else {
                    None
                },
            },
        );
        self.by_handle.insert(handle, id);
        self.touched.insert(id);
        id
    }

    /// Starts a WebTransport dial to `remote`: only a certificate whose SHA-256 is one of
    /// `digests` (the multiaddr's `/certhash` values) is accepted; once QUIC is up the
    /// extended CONNECT goes out on stream 0 and `SessionReady` follows at once (the
    /// caller's first stream carries Noise without waiting for the answer, as the libp2p
    /// spec asks); a refusal (not 2xx) closes the connection.
    pub fn connect_webtransport(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        digests: Vec<[u8; 32]>,
    ) -> Result<u64, QuicError> {
        if digests.is_empty() {
            return Err(QuicError::Dial(
                "a WebTransport address without /certhash (a CA-signed server) is not supported"
                    .into(),
            ));
        }
        let verifier = CapturingVerifier::certhash(digests);
        let transport = self.config.webtransport_transport()?;
        let cfg = QuicConfig::webtransport_client(transport, verifier.clone())?;
        let (handle, conn) = self
            .inner
            .connect(now, cfg, remote, &remote.ip().to_string())
            .map_err(|e| QuicError::Dial(e.to_string()))?;
        let id = self.insert(handle, conn, false, now, Some(verifier));
        if let Some(c) = self.conns.get_mut(&id) {
            c.h3 = Some(ServerSession::client(Limits::default(), WT_CONNECT_STREAM));
        }
        Ok(id)
    }

    /// Starts a dial to `remote`; only a certificate proving `expected_peer` (peer id
    /// bytes) is accepted. Returns the connection id; `Connected` or `Closed` follows.
    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        expected_peer: Option<&[u8]>,
    ) -> Result<u64, QuicError> {
        let verifier = CapturingVerifier::new(expected_peer);
        let cfg = QuicConfig::client(
            &self.identity,
            expected_peer,
            self.transport.clone(),
            verifier.clone(),
            &self.clock,
        )?;
        let (handle, conn) = self
            .inner
            .connect(now, cfg, remote, "libp2p")
            .map_err(|e| QuicError::Dial(e.to_string()))?;
        Ok(self.insert(handle, conn, false, now, Some(verifier)))
    }

    /// One received datagram (or GRO batch of `segment`-byte datagrams). Malformed,
    /// truncated or unknown packets are dropped here (a stateless reset may answer).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        ecn: Option<u8>,
        data: &[u8],
        segment: Option<usize>,
    ) {
        let ecn = ecn.and_then(EcnCodepoint::from_bits);
        let step = segment.filter(|s| *s > 0).unwrap_or(data.len().max(1));
        for dgram in data.chunks(step) {
            let buf = BytesMut::from(dgram);
            let mut out = std::mem::take(&mut self.scratch);
            out.clear();
            match self.inner.handle(now, remote, local_ip, ecn, buf, &mut out) {
                None => {}
                Some(DatagramEvent::ConnectionEvent(h, ev)) => {
                    if let Some(&id) = self.by_handle.get(&h) {
                        if let Some(c) = self.conns.get_mut(&id) {
                            c.inner.handle_event(ev);
                            self.touched.insert(id);
                        }
                    }
                }
                Some(DatagramEvent::NewConnection(incoming)) => {
                    self.incoming(now, incoming, &mut out)
                }
                Some(DatagramEvent::Response(t)) => {
                    let bytes = out[..t.size].to_vec();
                    self.responses.push_back((t, bytes));
                }
            }
            self.scratch = out;
        }
    }

    fn respond(&mut self, t: quinn_proto::Transmit, buf: &[u8]) {
        let bytes = buf[..t.size].to_vec();
        self.responses.push_back((t, bytes));
    }

    fn incoming(&mut self, now: Instant, incoming: Incoming, buf: &mut Vec<u8>) {
        let handshaking = self.handshaking();
        if self.server.is_none() || handshaking >= self.config.max_handshakes {
            let t = self.inner.refuse(incoming, buf);
            self.respond(t, buf);
            return;
        }
        if handshaking >= self.config.retry_above
            && !incoming.remote_address_validated()
            && incoming.may_retry()
        {
            match self.inner.retry(incoming, buf) {
                Ok(t) => self.respond(t, buf),
                Err(e) => self.inner.ignore(e.into_incoming()),
            }
            return;
        }
        match self.inner.accept(incoming, now, buf, None) {
            Ok((handle, conn)) => {
                self.insert(handle, conn, true, now, None);
            }
            Err(e) => {
                if let Some(t) = e.response {
                    self.respond(t, buf);
                }
            }
        }
    }

    /// Stops accepting: new Initials are refused (CONNECTION_REFUSED); the connections
    /// already made live on.
    pub fn stop_listening(&mut self) {
        self.server = None;
    }

    /// The earliest time [`Endpoint::handle_timeout`] must run (None: no timer).
    pub fn next_timeout(&mut self) -> Option<Instant> {
        let mut best: Option<Instant> = None;
        for c in self.conns.values_mut() {
            let t = c.inner.poll_timeout();
            let d = if c.connected {
                None
            } else {
                c.handshake_deadline
            };
            for x in [t, d].into_iter().flatten() {
                best = Some(best.map_or(x, |b| b.min(x)));
            }
        }
        best
    }

    /// Runs the timers that are due (loss detection, idle, keep-alive, handshake deadline).
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for (&id, c) in self.conns.iter_mut() {
            if c.inner.poll_timeout().is_some_and(|t| t <= now) {
                c.inner.handle_timeout(now);
                self.touched.insert(id);
            }
            if !c.connected && !c.ended && c.handshake_deadline.is_some_and(|d| d <= now) {
                expired.push(id);
            }
        }
        for id in expired {
            let secs = self.config.handshake_timeout.as_secs_f64();
            self.end(
                id,
                now,
                CloseReason::new(
                    CloseKind::HandshakeTimeout,
                    format!("QUIC handshake did not finish within {secs} s"),
                ),
            );
        }
    }

    /// Closes a connection locally (`Closed` follows at once).
    pub fn close(&mut self, conn: u64, now: Instant, code: u32, reason: &str) {
        self.end(
            conn,
            now,
            CloseReason::new(CloseKind::Closed, format!("closed locally: {reason}")),
        );
        let _ = code;
    }

    fn end(&mut self, id: u64, now: Instant, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&id) {
            if !c.inner.is_closed() {
                c.inner.close(now, VarInt::from_u32(0), Bytes::new());
            }
            if !c.ended {
                c.ended = true;
                self.events.push(Event::Closed { conn: id, reason });
            }
            self.touched.insert(id);
        }
    }

    fn conn(&mut self, conn: u64) -> Result<&mut Conn, QuicError> {
        match self.conns.get_mut(&conn) {
            Some(c) if !c.ended => Ok(c),
            _ => Err(QuicError::UnknownConnection(conn)),
        }
    }

    /// Opens a stream; None when the peer's stream limit is reached (`StreamsAvailable`
    /// tells when to try again).
    pub fn open_stream(&mut self, conn: u64) -> Result<Option<u64>, QuicError> {
        let c = self.conn(conn)?;
        let session = match &c.h3 {
            Some(h3) => match h3.session() {
                Some(s) => Some(s),
                None => return Err(QuicError::UnknownConnection(conn)),
            },
            None => None,
        };
        let Some(sid) = c.inner.streams().open(Dir::Bi) else {
            return Ok(None);
        };
        if let Some(session) = session {
            // The WebTransport stream header goes first; a new stream always has room for
            // its few bytes.
            let header = rapidp2p_webtransport::ClientSession::stream_header(session);
            let _ = c.inner.send_stream(sid).write(&header);
        }
        let raw = u64::from(sid);
        c.streams.insert(raw, StreamState::default());
        self.mark_sending(conn);
        Ok(Some(raw))
    }

    /// Writes what flow control and the send buffer take now; returns the bytes taken.
    pub fn send(&mut self, conn: u64, stream: u64, data: &[u8]) -> Result<usize, QuicError> {
        let sid = stream_id(stream)?;
        let c = self.conn(conn)?;
        let st = c
            .streams
            .get_mut(&stream)
            .ok_or(QuicError::UnknownStream(stream))?;
        if st.stopped {
            return Err(QuicError::StreamReset(stream));
        }
        if st.send_done {
            return Err(QuicError::StreamClosed(stream));
        }
        // Write until refused: quinn-proto records a stream as blocked (and later tells it
        // `Writable`) only when a write is refused outright, never after a partial one.
        let mut n = 0;
        while n < data.len() {
            match c.inner.send_stream(sid).write(&data[n..]) {
                Ok(0) | Err(WriteError::Blocked) => {
                    st.send_blocked = true;
                    break;
                }
                Ok(m) => n += m,
                Err(WriteError::Stopped(_)) if n == 0 => {
                    return Err(QuicError::StreamReset(stream))
                }
                Err(WriteError::ClosedStream) if n == 0 => {
                    return Err(QuicError::StreamClosed(stream))
                }
                Err(_) => break,
            }
        }
        if n > 0 {
            self.mark_sending(conn);
        }
        Ok(n)
    }

    /// Nonzero while writes are taken (quinn-proto does not tell how much: `cap` then).
    pub fn send_window(&mut self, conn: u64, stream: u64, cap: usize) -> usize {
        match self.conn(conn).ok().and_then(|c| c.streams.get(&stream)) {
            Some(st) if !st.send_done && !st.send_blocked => cap,
            _ => 0,
        }
    }

    /// Finishes our side (FIN after what is queued); idempotent. True when a FIN was
    /// queued now (a `Finished` event follows), false when our side was already over.
    pub fn finish(&mut self, conn: u64, stream: u64) -> Result<bool, QuicError> {
        let sid = stream_id(stream)?;
        let c = self.conn(conn)?;
        let Some(st) = c.streams.get_mut(&stream) else {
            return Ok(false);
        };
        if st.send_done {
            return Ok(false);
        }
        st.send_done = true;
        match c.inner.send_stream(sid).finish() {
            Ok(()) | Err(FinishError::ClosedStream) => {}
            Err(FinishError::Stopped(_)) => return Err(QuicError::StreamReset(stream)),
        }
        Self::forget_if_done(c, stream);
        self.mark_sending(conn);
        Ok(true)
    }

    /// Resets both directions (RESET_STREAM and STOP_SENDING); a no-op when gone.
    pub fn reset(&mut self, conn: u64, stream: u64) {
        let Ok(sid) = stream_id(stream) else { return };
        let Ok(c) = self.conn(conn) else { return };
        if let Some(st) = c.streams.remove(&stream) {
            c.unread = c.unread.saturating_sub(st.unread);
            if !st.send_done {
                let _ = c.inner.send_stream(sid).reset(VarInt::from_u32(0));
            }
            if !st.recv_done {
                let _ = c.inner.recv_stream(sid).stop(VarInt::from_u32(0));
            }
            self.mark_sending(conn);
        }
    }

    /// The caller read `n` bytes of the stream: room for more.
    pub fn ack(&mut self, conn: u64, stream: u64, n: u64) {
        let window = u64::from(self.config.stream_receive_window);
        let Ok(c) = self.conn(conn) else { return };
        c.unread = c.unread.saturating_sub(n);
        let mut wake = false;
        if let Some(st) = c.streams.get_mut(&stream) {
            st.unread = st.unread.saturating_sub(n);
            let conn_room = c.unread < c.window || st.unread < STREAM_FLOOR;
            if st.want_read && st.unread < window && conn_room {
                st.want_read = false;
                c.to_read.push(stream);
                wake = true;
            }
            Self::forget_if_done(c, stream);
        }
        if c.conn_blocked && c.unread < c.window {
            Self::wake_readers(c);
            wake = true;
        }
        if wake {
            self.touched.insert(conn);
        }
    }

    /// Room under the connection's window again: every stream that stopped reads again.
    fn wake_readers(c: &mut Conn) {
        c.conn_blocked = false;
        for (&id, st) in c.streams.iter_mut() {
            if st.want_read {
                st.want_read = false;
                c.to_read.push(id);
            }
        }
    }

    /// Sends a PING; a `PingRtt` event follows the next acknowledgement.
    pub fn ping(&mut self, conn: u64, now: Instant) -> Result<(), QuicError> {
        let c = self.conn(conn)?;
        c.inner.ping();
        let acks = c.inner.stats().frame_rx.acks;
        c.ping = Some((now, acks));
        self.mark_sending(conn);
        Ok(())
    }

    /// The smoothed round-trip time, seconds.
    pub fn rtt(&mut self, conn: u64) -> Option<f64> {
        self.conn(conn).ok().map(|c| c.inner.rtt().as_secs_f64())
    }

    /// The peer's address.
    pub fn remote_address(&mut self, conn: u64) -> Option<SocketAddr> {
        self.conn(conn).ok().map(|c| c.inner.remote_address())
    }

    /// Sets the connection's receive window (the caller's memory budget for what the peer
    /// may send ahead of our reads), at most the configured `connection_receive_window`.
    /// A smaller window than before takes effect as the peer's credit is used up.
    pub fn set_receive_window(&mut self, conn: u64, bytes: u64) {
        let cap = u64::from(self.config.connection_receive_window);
        let Ok(c) = self.conn(conn) else { return };
        let w = bytes.min(cap);
        if let Ok(v) = VarInt::from_u64(w) {
            c.inner.set_receive_window(v);
            c.window = w;
            c.read_since_set = 0;
            if c.conn_blocked && c.unread < c.window {
                Self::wake_readers(c);
            }
            self.mark_sending(conn);
        }
    }

    /// The connection's receive window now (0 when gone).
    pub fn receive_window(&mut self, conn: u64) -> u64 {
        self.conn(conn).map_or(0, |c| c.window)
    }

    /// True when the window is below the configured maximum and the peer sent a whole
    /// window's worth since it was set: a larger budget would let it send faster.
    pub fn window_capped(&mut self, conn: u64) -> bool {
        let cap = u64::from(self.config.connection_receive_window);
        self.conn(conn)
            .is_ok_and(|c| c.window < cap && c.read_since_set >= c.window)
    }

    /// An ICMP port unreachable came back for a datagram sent to `remote`: our dials to it
    /// that are still handshaking end at once (`Refused`); established connections go on
    /// (a lost datagram is QUIC's to recover, and an ICMP message is easily forged).
    pub fn unreachable(&mut self, now: Instant, remote: SocketAddr) {
        let refused: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                !c.inbound && !c.connected && !c.ended && c.inner.remote_address() == remote
            })
            .map(|(&id, _)| id)
            .collect();
        for id in refused {
            self.end(
                id,
                now,
                CloseReason::new(
                    CloseKind::Refused,
                    format!("connection refused: nothing listens at UDP {remote}"),
                ),
            );
        }
    }

    /// Sets how many streams the peer may open (0: no new streams, a GoAway).
    pub fn set_max_streams(&mut self, conn: u64, n: u32) {
        if let Ok(c) = self.conn(conn) {
            c.inner
                .set_max_concurrent_streams(Dir::Bi, VarInt::from_u32(n));
            self.mark_sending(conn);
        }
    }

    fn mark_sending(&mut self, id: u64) {
        self.touched.insert(id);
    }

    fn forget_if_done(c: &mut Conn, stream: u64) {
        // Kept while the caller holds unread bytes of it: `ack` or `reset` settles them.
        if c.streams
            .get(&stream)
            .is_some_and(|s| s.recv_done && s.send_done && s.unread == 0)
        {
            c.streams.remove(&stream);
        }
    }

    /// Drives every connection touched since the last call; returns their events.
    pub fn process(&mut self, now: Instant) -> Vec<Event> {
        let touched: Vec<u64> = self.touched.drain().collect();
        for id in touched {
            self.drive(id, now);
            if self.in_sending.insert(id) {
                self.sending.push_back(id);
            }
        }
        std::mem::take(&mut self.events)
    }

    fn drive(&mut self, id: u64, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let window = u64::from(self.config.stream_receive_window);
        loop {
            let mut progressed = false;
            while let Some(ev) = c.inner.poll_endpoint_events() {
                progressed = true;
                if let Some(back) = self.inner.handle_event(c.handle, ev) {
                    c.inner.handle_event(back);
                }
            }
            while let Some(ev) = c.inner.poll() {
                progressed = true;
                let unix_now = self.clock.now();
                Self::app_event(id, c, ev, unix_now, now, window, &mut self.events);
            }
            for stream in std::mem::take(&mut c.to_read) {
                Self::read_stream(id, c, stream, window, now, &mut self.events);
            }
            if !progressed && c.to_read.is_empty() {
                break;
            }
        }
        if let Some((at, acks)) = c.ping {
            if c.inner.stats().frame_rx.acks > acks {
                c.ping = None;
                let rtt = now.saturating_duration_since(at).as_secs_f64();
                self.events.push(Event::PingRtt { conn: id, rtt });
            }
        }
        if c.inner.is_drained() {
            if !c.ended {
                c.ended = true;
                let reason = CloseReason::new(CloseKind::Closed, "connection drained");
                self.events.push(Event::Closed { conn: id, reason });
            }
            self.by_handle.remove(&c.handle);
            self.conns.remove(&id);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn app_event(
        id: u64,
        c: &mut Conn,
        ev: QEvent,
        unix_now: i64,
        now: Instant,
        window: u64,
        events: &mut Vec<Event>,
    ) {
        match ev {
            QEvent::HandshakeDataReady => {}
            QEvent::Connected if c.h3.as_ref().is_some_and(ServerSession::is_client) => {
                Self::client_session(id, c, now, events);
            }
            QEvent::Connected if c.h3.is_some() => {
                // HTTP/3 is up: our control stream and SETTINGS. The handshake deadline
                // stays until the session is accepted.
                if let Some(sid) = c.inner.streams().open(Dir::Uni) {
                    let bytes =
                        c.h3.as_ref()
                            .map(|h| h.control_stream())
                            .unwrap_or_default();
                    let _ = c.inner.send_stream(sid).write(&bytes);
                }
            }
            QEvent::Connected => {
                c.handshake_deadline = None;
                match peer_certificate(c, unix_now) {
                    Ok(peer) => {
                        c.connected = true;
                        events.push(Event::Connected {
                            conn: id,
                            inbound: c.inbound,
                            remote: c.inner.remote_address(),
                            peer,
                        });
                    }
                    Err(reason) => {
                        c.inner
                            .close(Instant::now(), VarInt::from_u32(0), Bytes::new());
                        c.ended = true;
                        events.push(Event::Closed { conn: id, reason });
                    }
                }
            }
            QEvent::ConnectionLost { reason } => {
                if !c.ended {
                    c.ended = true;
                    let reason = close_reason(c, &reason);
                    events.push(Event::Closed { conn: id, reason });
                }
            }
            QEvent::Stream(StreamEvent::Opened { dir: Dir::Bi }) => {
                while let Some(sid) = c.inner.streams().accept(Dir::Bi) {
                    let raw = u64::from(sid);
                    if c.h3.is_some() {
                        // A request or a WebTransport stream: its header decides.
                        let st = StreamState {
                            role: Role::H3,
                            ..StreamState::default()
                        };
                        c.streams.insert(raw, st);
                    } else {
                        c.streams.insert(raw, StreamState::default());
                        events.push(Event::StreamOpened {
                            conn: id,
                            stream: raw,
                        });
                    }
                    Self::read_stream(id, c, raw, window, now, events);
                }
            }
            QEvent::Stream(StreamEvent::Opened { dir: Dir::Uni }) if c.h3.is_some() => {
                while let Some(sid) = c.inner.streams().accept(Dir::Uni) {
                    let raw = u64::from(sid);
                    let st = StreamState {
                        role: Role::H3,
                        send_done: true,
                        ..StreamState::default()
                    };
                    c.streams.insert(raw, st);
                    Self::read_stream(id, c, raw, window, now, events);
                }
            }
            QEvent::Stream(StreamEvent::Opened { dir: Dir::Uni }) => {
                // Never allowed (limit 0); refuse anything that slips through.
                while let Some(sid) = c.inner.streams().accept(Dir::Uni) {
                    let _ = c.inner.recv_stream(sid).stop(VarInt::from_u32(0));
                }
            }
            QEvent::Stream(StreamEvent::Readable { id: sid }) => {
                Self::read_stream(id, c, u64::from(sid), window, now, events);
            }
            QEvent::Stream(StreamEvent::Writable { id: sid }) => {
                let raw = u64::from(sid);
                if let Some(st) = c.streams.get_mut(&raw) {
                    if st.send_blocked {
                        st.send_blocked = false;
                        events.push(Event::Writable {
                            conn: id,
                            stream: raw,
                        });
                    }
                }
            }
            QEvent::Stream(StreamEvent::Finished { id: sid }) => {
                events.push(Event::Finished {
                    conn: id,
                    stream: u64::from(sid),
                });
            }
            QEvent::Stream(StreamEvent::Stopped { id: sid, .. }) => {
                // STOP_SENDING ends our direction only: go-libp2p sends it whenever it
                // closes a stream it will not read (`Close` = CloseWrite + CloseRead) while
                // its answer and FIN are still on the way, so what it sends stays readable.
                let raw = u64::from(sid);
                if let Some(st) = c.streams.get_mut(&raw) {
                    if !st.send_done {
                        let _ = c.inner.send_stream(sid).reset(VarInt::from_u32(0));
                    }
                    st.send_done = true;
                    st.stopped = true;
                    events.push(Event::Finished {
                        conn: id,
                        stream: raw,
                    });
                    Self::forget_if_done(c, raw);
                }
            }
            QEvent::Stream(StreamEvent::Available { .. }) => {
                events.push(Event::StreamsAvailable { conn: id });
            }
            QEvent::DatagramReceived => {
                // WebTransport datagrams: libp2p uses none; drop them.
                while c.inner.datagrams().recv().is_some() {}
            }
            QEvent::DatagramsUnblocked => {}
        }
    }

    fn read_stream(
        id: u64,
        c: &mut Conn,
        stream: u64,
        window: u64,
        now: Instant,
        events: &mut Vec<Event>,
    ) {
        let Some(st) = c.streams.get_mut(&stream) else {
            return;
        };
        if st.recv_done || matches!(st.role, Role::Parked(..)) {
            return;
        }
        if matches!(st.role, Role::H3) {
            Self::read_h3(id, c, stream, now, events);
            return;
        }
        let floor = STREAM_FLOOR.saturating_sub(st.unread);
        let conn_room = c.window.saturating_sub(c.unread).max(floor);
        let room = window.saturating_sub(st.unread).min(conn_room);
        if room == 0 {
            st.want_read = true;
            c.conn_blocked |= conn_room == 0;
            return;
        }
        let Ok(sid) = stream_id(stream) else { return };
        let mut rs = c.inner.recv_stream(sid);
        let mut chunks = match rs.read(true) {
            Ok(chunks) => chunks,
            Err(ReadableError::ClosedStream) | Err(ReadableError::IllegalOrderedRead) => {
                st.recv_done = true;
                return;
            }
        };
        let mut got = Vec::new();
        let mut n = 0u64;
        let mut fin = false;
        let mut reset = false;
        loop {
            if n >= room {
                st.want_read = true;
                c.conn_blocked |= n >= conn_room;
                break;
            }
            match chunks.next(usize::try_from(room - n).unwrap_or(usize::MAX)) {
                Ok(Some(chunk)) => {
                    n += chunk.bytes.len() as u64;
                    got.push(chunk.bytes);
                }
                Ok(None) => {
                    fin = true;
                    break;
                }
                Err(ReadError::Blocked) => break,
                Err(ReadError::Reset(_)) => {
                    reset = true;
                    break;
                }
            }
        }
        let _ = chunks.finalize();
        if reset {
            c.unread = c.unread.saturating_sub(st.unread);
            c.streams.remove(&stream);
            if let Ok(sid) = stream_id(stream) {
                let _ = c.inner.send_stream(sid).reset(VarInt::from_u32(0));
            }
            events.push(Event::Reset { conn: id, stream });
            return;
        }
        if n > 0 {
            st.unread += n;
            c.unread += n;
            c.read_since_set += n;
            events.push(Event::Data {
                conn: id,
                stream,
                chunks: got,
            });
        }
        if fin {
            st.recv_done = true;
            events.push(Event::Fin { conn: id, stream });
            Self::forget_if_done(c, stream);
        }
    }

    /// Reads a stream the HTTP/3 layer owns and acts on what it decides; a stream that turns
    /// out to be a WebTransport stream of the session becomes the caller's.
    fn read_h3(id: u64, c: &mut Conn, stream: u64, now: Instant, events: &mut Vec<Event>) {
        let Ok(sid) = stream_id(stream) else { return };
        let mut data = Vec::new();
        let mut fin = false;
        let mut reset = false;
        {
            let mut rs = c.inner.recv_stream(sid);
            let Ok(mut chunks) = rs.read(true) else {
                return;
            };
            // Bounded per call by the stream's window (what quinn-proto lets the peer send);
            // the HTTP/3 layer bounds what it keeps.
            loop {
                match chunks.next(usize::MAX) {
                    Ok(Some(chunk)) => data.extend_from_slice(&chunk.bytes),
                    Ok(None) => {
                        fin = true;
                        break;
                    }
                    Err(ReadError::Blocked) => break,
                    Err(ReadError::Reset(_)) => {
                        reset = true;
                        break;
                    }
                }
            }
            let _ = chunks.finalize();
        }
        let uni = sid.dir() == Dir::Uni;
        let Some(h3) = c.h3.as_mut() else { return };
        if reset {
            h3.forget(stream);
            c.streams.remove(&stream);
            return;
        }
        if uni {
            match h3.on_uni(stream, &data, fin) {
                Ok(UniOutcome::Read) => {
                    if fin {
                        c.streams.remove(&stream);
                    }
                }
                Ok(UniOutcome::Stop) => {
                    c.streams.remove(&stream);
                    let _ = c.inner.recv_stream(sid).stop(VarInt::from_u32(0x0100));
                }
                Err(e) => Self::h3_error(id, c, &e, now, events),
            }
            return;
        }
        match h3.on_bidi(stream, &data, fin) {
            Ok(BidiOutcome::More) | Ok(BidiOutcome::Ignored) => {
                if fin {
                    if let Some(st) = c.streams.get_mut(&stream) {
                        st.recv_done = true;
                    }
                    Self::forget_if_done(c, stream);
                }
            }
            Ok(BidiOutcome::Respond {
                response,
                fin: close,
                accepted,
            }) => {
                let mut send = c.inner.send_stream(sid);
                let _ = send.write(&response);
                if close {
                    let _ = send.finish();
                    if let Some(st) = c.streams.get_mut(&stream) {
                        st.send_done = true;
                    }
                }
                if accepted {
                    c.connected = true;
                    c.handshake_deadline = None;
                    events.push(Event::SessionReady {
                        conn: id,
                        inbound: c.inbound,
                        remote: c.inner.remote_address(),
                        certhash: None,
                    });
                    Self::unpark(id, c, events);
                }
            }
            Ok(BidiOutcome::Status(status)) => {
                if !(200..300).contains(&status) {
                    let reason = CloseReason::new(
                        CloseKind::Handshake,
                        format!("the WebTransport server refused the session: HTTP {status}"),
                    );
                    Self::close_conn(id, c, now, h3code::H3_NO_ERROR, reason, events);
                }
            }
            Ok(BidiOutcome::WtStream { session, payload }) => {
                let ready = h3.session();
                if ready == Some(session) {
                    Self::become_app(id, c, stream, payload, fin, events);
                } else if ready.is_none() {
                    if let Some(st) = c.streams.get_mut(&stream) {
                        st.role = Role::Parked(payload, fin);
                    }
                } else {
                    c.streams.remove(&stream);
                    let code = VarInt::from_u64(h3code::WT_BUFFERED_STREAM_REJECTED)
                        .unwrap_or(VarInt::from_u32(0));
                    let _ = c.inner.send_stream(sid).reset(code);
                    let _ = c.inner.recv_stream(sid).stop(code);
                }
            }
            Ok(BidiOutcome::Reject) => {
                h3.forget(stream);
                c.streams.remove(&stream);
                let _ = c.inner.send_stream(sid).reset(VarInt::from_u32(0x0100));
                let _ = c.inner.recv_stream(sid).stop(VarInt::from_u32(0x0100));
            }
            Ok(BidiOutcome::SessionClosed) => {
                Self::close_conn(
                    id,
                    c,
                    now,
                    h3code::H3_NO_ERROR,
                    CloseReason::new(CloseKind::Closed, "the peer ended the WebTransport session"),
                    events,
                );
            }
            Err(e) => Self::h3_error(id, c, &e, now, events),
        }
    }

    /// A WebTransport dial's QUIC handshake finished: our control stream, the extended
    /// CONNECT on stream 0, and the session is the caller's (Noise proves who answered).
    fn client_session(id: u64, c: &mut Conn, now: Instant, events: &mut Vec<Event>) {
        let certhash = c
            .inner
            .crypto_session()
            .peer_identity()
            .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
            .and_then(|certs| certs.first().map(|d| certhash_multihash(d.as_ref())));
        let Some(certhash) = certhash else {
            let reason = CloseReason::new(CloseKind::Certificate, "the peer sent no certificate");
            Self::close_conn(id, c, now, 0, reason, events);
            return;
        };
        if let Some(sid) = c.inner.streams().open(Dir::Uni) {
            let bytes =
                c.h3.as_ref()
                    .map(|h| h.control_stream())
                    .unwrap_or_default();
            let _ = c.inner.send_stream(sid).write(&bytes);
        }
        let opened = c.inner.streams().open(Dir::Bi).map(u64::from);
        let Some(sid) = opened
            .filter(|s| *s == WT_CONNECT_STREAM)
            .and_then(|s| stream_id(s).ok())
        else {
            let reason = CloseReason::new(CloseKind::Handshake, "no stream for the CONNECT");
            Self::close_conn(id, c, now, h3code::H3_STREAM_CREATION_ERROR, reason, events);
            return;
        };
        let authority = c.inner.remote_address().to_string();
        let request = rapidp2p_webtransport::ClientSession::request(&authority);
        let _ = c.inner.send_stream(sid).write(&request);
        c.streams.insert(
            WT_CONNECT_STREAM,
            StreamState {
                role: Role::H3,
                ..StreamState::default()
            },
        );
        c.connected = true;
        c.handshake_deadline = None;
        events.push(Event::SessionReady {
            conn: id,
            inbound: false,
            remote: c.inner.remote_address(),
            certhash: Some(certhash),
        });
    }

    /// A WebTransport stream's header was read: it is the caller's stream from now on.
    fn become_app(
        id: u64,
        c: &mut Conn,
        stream: u64,
        payload: Vec<u8>,
        fin: bool,
        events: &mut Vec<Event>,
    ) {
        let Some(st) = c.streams.get_mut(&stream) else {
            return;
        };
        st.role = Role::App;
        events.push(Event::StreamOpened { conn: id, stream });
        let n = payload.len() as u64;
        if n > 0 {
            st.unread += n;
            c.unread += n;
            c.read_since_set += n;
            events.push(Event::Data {
                conn: id,
                stream,
                chunks: vec![Bytes::from(payload)],
            });
        }
        if fin {
            st.recv_done = true;
            events.push(Event::Fin { conn: id, stream });
            Self::forget_if_done(c, stream);
        } else {
            c.to_read.push(stream);
        }
    }

    /// The session is up: streams that came early are the caller's now.
    fn unpark(id: u64, c: &mut Conn, events: &mut Vec<Event>) {
        let mut parked: Vec<u64> = c
            .streams
            .iter()
            .filter(|(_, st)| matches!(st.role, Role::Parked(..)))
            .map(|(&s, _)| s)
            .collect();
        parked.sort_unstable();
        for stream in parked {
            let Some(st) = c.streams.get_mut(&stream) else {
                continue;
            };
            let Role::Parked(payload, fin) = std::mem::take(&mut st.role) else {
                continue;
            };
            Self::become_app(id, c, stream, payload, fin, events);
        }
    }

    fn h3_error(id: u64, c: &mut Conn, e: &WtError, now: Instant, events: &mut Vec<Event>) {
        let reason = CloseReason::new(CloseKind::Protocol, format!("WebTransport: {e}"));
        Self::close_conn(id, c, now, e.code(), reason, events);
    }

    fn close_conn(
        id: u64,
        c: &mut Conn,
        now: Instant,
        code: u64,
        reason: CloseReason,
        events: &mut Vec<Event>,
    ) {
        if !c.inner.is_closed() {
            let code = VarInt::from_u64(code).unwrap_or(VarInt::from_u32(0));
            c.inner
                .close(now, code, Bytes::from(reason.message.clone().into_bytes()));
        }
        if !c.ended {
            c.ended = true;
            events.push(Event::Closed { conn: id, reason });
        }
    }

    /// The next datagram (or GSO batch of up to `max_datagrams`) to send, written into
    /// `buf`; None when nothing is due.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        max_datagrams: usize,
        buf: &mut Vec<u8>,
    ) -> Option<quinn_proto::Transmit> {
        if let Some((t, data)) = self.responses.pop_front() {
            buf.clear();
            buf.extend_from_slice(&data);
            return Some(t);
        }
        while let Some(&id) = self.sending.front() {
            if let Some(c) = self.conns.get_mut(&id) {
                buf.clear();
                if let Some(t) = c.inner.poll_transmit(now, max_datagrams.max(1), buf) {
                    return Some(t);
                }
                // A transmit may have produced endpoint events (retired ids, drained).
                self.touched.insert(id);
            }
            self.sending.pop_front();
            self.in_sending.remove(&id);
        }
        None
    }
}

fn peer_certificate(c: &Conn, unix_now: i64) -> Result<PeerCertificate, CloseReason> {
    let certs = c
        .inner
        .crypto_session()
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or_else(|| CloseReason::new(CloseKind::Certificate, "the peer sent no certificate"))?;
    let first = certs
        .first()
        .ok_or_else(|| CloseReason::new(CloseKind::Certificate, "the peer sent no certificate"))?;
    verify_certificate(first, unix_now).map_err(|e| CloseReason::from_tls(&e))
}

fn close_reason(c: &Conn, e: &ConnectionError) -> CloseReason {
    if let Some(tls) = c.verifier.as_ref().and_then(|v| v.refusal()) {
        return CloseReason::from_tls(&tls);
    }
    let text = e.to_string();
    if !c.connected {
        return match e {
            ConnectionError::TimedOut => CloseReason::new(
                CloseKind::HandshakeTimeout,
                "QUIC handshake timed out (no answer)",
            ),
            _ => CloseReason::new(
                CloseKind::Handshake,
                format!("QUIC handshake failed: {text}"),
            ),
        };
    }
    match e {
        ConnectionError::TransportError(_) => CloseReason::new(CloseKind::Protocol, text),
        ConnectionError::TimedOut => CloseReason::new(CloseKind::Closed, "idle timeout"),
        _ => CloseReason::new(CloseKind::Closed, text),
    }
}
