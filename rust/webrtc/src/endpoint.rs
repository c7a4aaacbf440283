//! The endpoint: demultiplexes datagrams by remote address (a new address must open with a
//! libp2p STUN Binding request), drives one str0m `Rtc` per connection, runs the Noise XX
//! handshake on data channel 0 (the initiator when we listen, the responder when we dial with
//! [`Endpoint::dial`]), and frames every other data channel as a libp2p stream with half-close
//! (FIN / FIN_ACK), STOP_SENDING and RESET.
//!
//! The same endpoint also carries `/webrtc` connections (libp2p/specs `webrtc/webrtc.md`):
//! set up by an SDP offer and answer exchanged elsewhere (on a `/webrtc-signaling` stream
//! over a relayed connection) with [`Endpoint::offer`], [`Endpoint::accept_offer`],
//! [`Endpoint::accept_answer`] and [`Endpoint::add_remote_candidate`]. Those are full ICE
//! agents with our socket's address as their one host candidate, check the remote's DTLS
//! certificate against the fingerprint of its SDP, and run no Noise: the signalling channel
//! was authenticated already. They are up once the offerer's first data channel opens (the
//! offerer needs one for its SDP to carry an `m=application` line; js-libp2p's is `init`,
//! closed right after), and their streams are framed as WebRTC-direct's.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rapidp2p_noise::Handshake;
use rapidp2p_wire::multibase;
use sha2::{Digest, Sha256};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId};
use str0m::config::{DtlsCert, Fingerprint};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, IceCreds, Input, Output, Rtc};
use thiserror::Error;

use crate::framing::{self, Decoder, Flag, Message, SEND_PAYLOAD};
use crate::stun;

/// The Noise prologue prefix of the spec.
pub const PROLOGUE_PREFIX: &[u8] = b"libp2p-webrtc-noise:";
/// A Noise handshake message never exceeds this (the 2-byte length prefix).
const MAX_NOISE_MESSAGE: usize = 65535;

/// Our DTLS certificate (DER certificate and private key), kept for the host's lifetime (or
/// stored by the application) so that the advertised `/certhash` stays valid.
#[derive(Clone)]
pub struct Certificate {
    pub der: Vec<u8>,
    pub private_key: Vec<u8>,
}

impl Certificate {
    /// SHA-256 of the DER certificate.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }
}

/// A fresh self-signed certificate (str0m's pure-Rust DTLS backend draws it).
pub fn generate_certificate() -> Result<Certificate, WebRtcError> {
    let provider = str0m_provider();
    let cert = provider
        .dtls_provider
        .generate_certificate()
        .ok_or_else(|| WebRtcError::Config("could not generate a DTLS certificate".into()))?;
    Ok(Certificate {
        der: cert.certificate,
        private_key: cert.private_key,
    })
}

fn str0m_provider() -> str0m::config::CryptoProvider {
    str0m::crypto::from_feature_flags()
}

/// The multihash (sha2-256) of a SHA-256 fingerprint.
pub fn fingerprint_multihash(fp: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(34);
    out.push(0x12);
    out.push(0x20);
    out.extend_from_slice(fp);
    out
}

/// The `/certhash` value: multibase base64url of the fingerprint's multihash.
pub fn certhash(fp: &[u8; 32]) -> String {
    multibase::encode(multibase::Base::Base64Url, &fingerprint_multihash(fp))
}

/// `"libp2p-webrtc-noise:" + multihash(dialler's fingerprint) + multihash(listener's)`: the
/// Noise responder's (the dialler, A) first, then the initiator's (the listener, B).
pub fn noise_prologue(responder_fp: &[u8; 32], initiator_fp: &[u8; 32]) -> Vec<u8> {
    let mut p = PROLOGUE_PREFIX.to_vec();
    p.extend_from_slice(&fingerprint_multihash(responder_fp));
    p.extend_from_slice(&fingerprint_multihash(initiator_fp));
    p
}

/// The SHA-256 fingerprint a `/certhash` value names; None unless it is a multibase
/// sha2-256 multihash.
pub fn certhash_fingerprint(text: &str) -> Option<[u8; 32]> {
    let (_, mh) = multibase::decode(text).ok()?;
    match mh.as_slice() {
        [0x12, 0x20, rest @ ..] => rest.try_into().ok(),
        _ => None,
    }
}

#[derive(Debug, Error)]
pub enum WebRtcError {
    #[error("unknown connection {0}")]
    UnknownConnection(u64),
    #[error("unknown stream {0}")]
    UnknownStream(u64),
    #[error("stream {0} is closed for writing")]
    StreamClosed(u64),
    #[error("stream {0} was reset")]
    StreamReset(u64),
    #[error("too many streams")]
    TooManyStreams,
    #[error("configuration: {0}")]
    Config(String),
    #[error("bad dial: {0}")]
    Dial(String),
    /// A malformed or unusable SDP offer or answer from the signalling peer.
    #[error("bad SDP: {0}")]
    Sdp(String),
    /// An ICE candidate line that does not parse.
    #[error("bad ICE candidate: {0}")]
    Candidate(String),
}

/// Longest SDP text accepted from a signalling peer (a browser's is about 1 KiB).
pub const MAX_SDP: usize = 16 * 1024;
/// Remote ICE candidates accepted per `/webrtc` connection.
pub const MAX_REMOTE_CANDIDATES: usize = 32;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    /// ICE, DTLS or the Noise handshake failed.
    Handshake,
    /// The handshake did not finish in time.
    HandshakeTimeout,
    /// The peer broke the framing or the protocol.
    Protocol,
    /// Closed by either side, or the peer went silent.
    Closed,
}

/// What the endpoint reports; connection ids are the endpoint's, stream ids the connection's.
#[derive(Debug)]
pub enum Event {
    /// The Noise handshake finished: the remote's libp2p payload (identity key and signature,
    /// to verify against `remote_static`) and its address.
    Authenticated {
        conn: u64,
        payload: Vec<u8>,
        remote_static: [u8; 32],
        remote: SocketAddr,
    },
    StreamOpened {
        conn: u64,
        stream: u64,
    },
    Data {
        conn: u64,
        stream: u64,
        data: Vec<u8>,
    },
    /// The remote half-closed the stream (FIN).
    Fin {
        conn: u64,
        stream: u64,
    },
    /// Our FIN was acknowledged (every byte we wrote before it arrived).
    Finished {
        conn: u64,
        stream: u64,
    },
    /// The remote stopped reading, reset the stream, or its channel closed abruptly.
    Reset {
        conn: u64,
        stream: u64,
    },
    /// The stream may accept writes again.
    Writable {
        conn: u64,
        stream: u64,
    },
    Closed {
        conn: u64,
        kind: CloseKind,
        message: String,
    },
}

/// Limits of an endpoint.
#[derive(Debug, Clone)]
pub struct Config {
    /// ICE + DTLS + SCTP + Noise must finish within this.
    pub handshake_timeout: Duration,
    /// Connections still handshaking at once; a new dialler beyond it is ignored.
    pub max_handshakes: usize,
    /// All connections at once.
    pub max_connections: usize,
    /// Streams per connection.
    pub max_streams: usize,
    /// Bytes the data channels of one connection may hold unacknowledged.
    pub send_buffer: usize,
    /// Answer a FIN with FIN_ACK (the spec; js-libp2p waits 10 s for it). rust-libp2p's
    /// `libp2p-webrtc-utils` 0.5 predates FIN_ACK and fails a stream that receives one.
    pub fin_ack: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 64,
            max_connections: 1024,
            max_streams: 512,
            send_buffer: 1 << 20,
            fin_ack: true,
        }
    }
}

#[derive(Debug, Default)]
struct StreamState {
    chan: Option<ChannelId>,
    decoder: Decoder,
    /// We sent FIN (or will once the channel opens).
    fin_sent: bool,
    /// FIN waiting for the channel to open / for room in the send buffer.
    fin_pending: bool,
    fin_acked: bool,
    fin_received: bool,
    reset: bool,
    /// Stop-sending from the peer: writes fail.
    stopped: bool,
    open: bool,
}

enum Noise {
    /// Waiting for channel 0 and the DTLS fingerprint.
    Idle,
    /// A `/webrtc` connection: no Noise; up once the offerer's first data channel opens.
    Signalled,
    /// Message 1 sent; collecting message 2.
    Sent(Box<Handshake>),
    Done,
}

struct Conn {
    rtc: Rtc,
    remote: SocketAddr,
    deadline: Option<Instant>,
    noise: Noise,
    noise_buf: Vec<u8>,
    /// WebRTC-direct: the negotiated channel 0 (Noise). `/webrtc`: the offerer's first
    /// channel once known (not a stream).
    ch0: Option<ChannelId>,
    ch0_decoder: Decoder,
    /// `/webrtc`: our ICE ufrag (the key of `by_ufrag`), the SDP offer awaiting its answer,
    /// and every remote address routed to this connection.
    ufrag: Option<String>,
    pending: Option<SdpPendingOffer>,
    routes: Vec<SocketAddr>,
    remote_candidates: usize,
    streams: HashMap<u64, StreamState>,
    by_chan: HashMap<ChannelId, u64>,
    next_stream: u64,
    blocked: HashSet<u64>,
    next_timeout: Option<Instant>,
    closed: bool,
    /// Events held until the handshake is done (streams the peer opened early).
    held: Vec<Event>,
    /// We dialled: ICE controlling, DTLS client, Noise responder; `Some(listener's
    /// fingerprint from the certhash)`.
    dialed: Option<[u8; 32]>,
    /// The remote's Noise payload (message 2 for the listener, message 3 for the dialler).
    remote_payload: Vec<u8>,
}

/// One UDP socket's WebRTC-direct listener.
pub struct Endpoint {
    local: SocketAddr,
    cert: Certificate,
    fingerprint: [u8; 32],
    noise_secret: [u8; 32],
    noise_payload: Vec<u8>,
    config: Config,
    listening: bool,
    conns: HashMap<u64, Conn>,
    by_addr: HashMap<SocketAddr, u64>,
    /// `/webrtc` connections by our ICE ufrag: a STUN check from a new address names it.
    by_ufrag: HashMap<String, u64>,
    next_conn: u64,
    events: VecDeque<Event>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Connections the application wrote to (send, finish, reset, open): str0m has output
    /// for them that no datagram or timer would drain before its next timeout.
    dirty: HashSet<u64>,
    /// The latest instant we were given.
    now: Option<Instant>,
    /// Datagrams dropped: from unknown addresses that did not open with a libp2p STUN
    /// request, or over the handshake cap.
    pub dropped: u64,
}

impl Endpoint {
    /// `noise_secret`: our Noise static x25519 secret; `noise_payload`: our signed
    /// NoiseHandshakePayload (identity key + signature over the static key), sent in message 3.
    pub fn new(
        local: SocketAddr,
        cert: Certificate,
        noise_secret: [u8; 32],
        noise_payload: Vec<u8>,
        config: Config,
    ) -> Self {
        let fingerprint = cert.fingerprint();
        Self {
            local,
            cert,
            fingerprint,
            noise_secret,
            noise_payload,
            config,
            listening: true,
            conns: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            next_conn: 1,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            dirty: HashSet::new(),
            now: None,
            dropped: 0,
        }
    }

    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub fn stop_listening(&mut self) {
        self.listening = false;
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next datagram to send (first drains what the application's writes produced).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        if !self.dirty.is_empty() {
            if let Some(now) = self.now {
                let dirty: Vec<u64> = self.dirty.drain().collect();
                for id in dirty {
                    self.drive(id, now);
                }
            }
        }
        self.transmits.pop_front()
    }

    /// The earliest instant [`Endpoint::handle_timeout`] must be called at.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter_map(|c| match (c.next_timeout, c.deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
            .min()
    }

    /// One datagram from `source`.
    pub fn handle_datagram(&mut self, source: SocketAddr, data: &[u8], now: Instant) {
        self.now = Some(now);
        let id = match self.by_addr.get(&source) {
            Some(&id) => id,
            None => match self
                .route_signalled(source, data)
                .or_else(|| self.accept(source, data, now))
            {
                Some(id) => id,
                None => {
                    self.dropped += 1;
                    return;
                }
            },
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.ufrag.is_some() {
            conn.remote = source; // `/webrtc`: the address ICE uses now
        }
        let Ok(contents) = data.try_into() else {
            return; // neither STUN, DTLS nor RTP: ignore
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        if let Err(e) = conn.rtc.handle_input(input) {
            self.close_conn(id, CloseKind::Handshake, format!("WebRTC: {e}"));
            return;
        }
        self.drive(id, now);
    }

    fn handshaking(&self) -> usize {
        self.conns
            .values()
            .filter(|c| !matches!(c.noise, Noise::Done))
            .count()
    }

    fn accept(&mut self, source: SocketAddr, data: &[u8], now: Instant) -> Option<u64> {
        if !self.listening {
            return None;
        }
        let ufrag = stun::binding_ufrag(data)?.to_owned();
        if self.conns.len() >= self.config.max_connections
            || self.handshaking() >= self.config.max_handshakes
        {
            return None;
        }
        let creds = IceCreds {
            ufrag: ufrag.clone(),
            pass: ufrag.clone(),
        };
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_local_ice_credentials(creds.clone())
            .set_dtls_cert(DtlsCert {
                certificate: self.cert.der.clone(),
                private_key: self.cert.private_key.clone(),
            })
            .set_fingerprint_verification(false)
            .set_sctp_max_buffered_amount(self.config.send_buffer)
            .build(now);
        let candidate = Candidate::host(self.local, Protocol::Udp).ok()?;
        rtc.add_local_candidate(candidate);
        let ch0 = {
            let mut api = rtc.direct_api();
            api.set_ice_controlling(false);
            api.set_remote_ice_credentials(creds);
            // Not verified (spec step 7): the Noise prologue binds the real one.
            api.set_remote_fingerprint(Fingerprint {
                hash_func: "sha-256".into(),
                bytes: vec![0; 32],
            });
            api.start_dtls(false).ok()?;
            api.start_sctp(false);
            api.create_data_channel(ChannelConfig {
                label: String::new(),
                negotiated: Some(0),
                ..Default::default()
            })
        };
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                rtc,
                remote: source,
                deadline: Some(now + self.config.handshake_timeout),
                noise: Noise::Idle,
                noise_buf: Vec::new(),
                ch0: Some(ch0),
                ch0_decoder: Decoder::new(),
                ufrag: None,
                pending: None,
                routes: Vec::new(),
                remote_candidates: 0,
                streams: HashMap::new(),
                by_chan: HashMap::new(),
                next_stream: 1,
                blocked: HashSet::new(),
                next_timeout: None,
                closed: false,
                held: Vec::new(),
                dialed: None,
                remote_payload: Vec::new(),
            },
        );
        self.by_addr.insert(source, id);
        Some(id)
    }

    /// Dials a WebRTC-direct listener at `remote` whose DTLS certificate has the SHA-256
    /// fingerprint `remote_fp` (from its `/certhash`): ICE controlling (full agent, one host
    /// candidate each side) with `ufrag` as both ufrag and password (it must carry the
    /// `libp2p+webrtc+v1/` prefix), DTLS client verifying `remote_fp`, SCTP client, then the
    /// Noise XX handshake on channel 0 as the responder. Returns the connection id; its
    /// `Authenticated` or `Closed` event follows.
    pub fn dial(
        &mut self,
        remote: SocketAddr,
        remote_fp: [u8; 32],
        ufrag: &str,
        now: Instant,
    ) -> Result<u64, WebRtcError> {
        if !ufrag.starts_with(stun::UFRAG_PREFIX) || ufrag.len() > stun::MAX_UFRAG {
            return Err(WebRtcError::Dial("ufrag lacks the libp2p prefix".into()));
        }
        if self.by_addr.contains_key(&remote) {
            return Err(WebRtcError::Dial(format!("already dialling {remote}")));
        }
        if self.conns.len() >= self.config.max_connections {
            return Err(WebRtcError::Dial("too many connections".into()));
        }
        let creds = IceCreds {
            ufrag: ufrag.to_owned(),
            pass: ufrag.to_owned(),
        };
        let mut rtc = Rtc::builder()
            .set_local_ice_credentials(creds.clone())
            .set_dtls_cert(DtlsCert {
                certificate: self.cert.der.clone(),
                private_key: self.cert.private_key.clone(),
            })
            .set_fingerprint_verification(true)
            .set_sctp_max_buffered_amount(self.config.send_buffer)
            .build(now);
        let local = Candidate::host(self.local, Protocol::Udp)
            .map_err(|e| WebRtcError::Config(format!("local candidate: {e}")))?;
        rtc.add_local_candidate(local);
        let peer = Candidate::host(remote, Protocol::Udp)
            .map_err(|e| WebRtcError::Config(format!("remote candidate: {e}")))?;
        rtc.add_remote_candidate(peer);
        let ch0 = {
            let mut api = rtc.direct_api();
            api.set_ice_controlling(true);
            api.set_remote_ice_credentials(creds);
            api.set_remote_fingerprint(Fingerprint {
                hash_func: "sha-256".into(),
                bytes: remote_fp.to_vec(),
            });
            api.start_dtls(true)
                .map_err(|e| WebRtcError::Config(format!("DTLS: {e}")))?;
            api.start_sctp(true);
            api.create_data_channel(ChannelConfig {
                label: String::new(),
                negotiated: Some(0),
                ..Default::default()
            })
        };
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                rtc,
                remote,
                deadline: Some(now + self.config.handshake_timeout),
                noise: Noise::Idle,
                noise_buf: Vec::new(),
                ch0: Some(ch0),
                ch0_decoder: Decoder::new(),
                ufrag: None,
                pending: None,
                routes: Vec::new(),
                remote_candidates: 0,
                streams: HashMap::new(),
                by_chan: HashMap::new(),
                next_stream: 1,
                blocked: HashSet::new(),
                next_timeout: None,
                closed: false,
                held: Vec::new(),
                dialed: Some(remote_fp),
                remote_payload: Vec::new(),
            },
        );
        self.by_addr.insert(remote, id);
        self.now = Some(now);
        self.drive(id, now);
        Ok(id)
    }

    /// Timers due at `now` (str0m's retransmissions, handshake deadlines).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        let due: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.next_timeout.is_some_and(|t| t <= now) || c.deadline.is_some_and(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            if conn.deadline.is_some_and(|t| t <= now) {
                self.close_conn(
                    id,
                    CloseKind::HandshakeTimeout,
                    "WebRTC-direct handshake timed out".into(),
                );
                continue;
            }
            if let Err(e) = conn.rtc.handle_input(Input::Timeout(now)) {
                self.close_conn(id, CloseKind::Closed, format!("WebRTC: {e}"));
                continue;
            }
            self.drive(id, now);
        }
    }

    /// Drains str0m's outputs of one connection and reacts to its events.
    fn drive(&mut self, id: u64, now: Instant) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let out = match conn.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    self.close_conn(id, CloseKind::Handshake, format!("WebRTC: {e}"));
                    return;
                }
            };
            match out {
                Output::Transmit(t) => {
                    self.transmits
                        .push_back((t.destination, t.contents.to_vec()));
                }
                Output::Timeout(t) => {
                    conn.next_timeout = Some(t);
                    break;
                }
                Output::Event(ev) => {
                    if let Err((kind, msg)) = self.on_rtc_event(id, ev, now) {
                        self.close_conn(id, kind, msg);
                        return;
                    }
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            if !conn.blocked.is_empty() {
                // Room may have opened (SACKs arrived): let the writers retry.
                for s in conn.blocked.drain() {
                    self.events.push_back(Event::Writable {
                        conn: id,
                        stream: s,
                    });
                }
            }
        }
    }

    fn on_rtc_event(
        &mut self,
        id: u64,
        ev: RtcEvent,
        _now: Instant,
    ) -> Result<(), (CloseKind, String)> {
        let conn = self.conns.get_mut(&id).expect("live connection");
        match ev {
            RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                return Err((CloseKind::Closed, "ICE disconnected".into()));
            }
            RtcEvent::Closed => {
                // The peer's DTLS close_notify or SCTP shutdown/abort.
                return Err((CloseKind::Closed, "closed by the peer".into()));
            }
            RtcEvent::ChannelOpen(ch, _label) => {
                if matches!(conn.noise, Noise::Signalled)
                    && (conn.ch0.is_none() || conn.ch0 == Some(ch))
                {
                    return self.signalled_up(id, ch);
                }
                if conn.ch0 == Some(ch) {
                    self.start_noise(id)?;
                } else if let Some(&s) = conn.by_chan.get(&ch) {
                    // Our channel is open now: flush a pending FIN, wake the writer.
                    if let Some(st) = conn.streams.get_mut(&s) {
                        st.open = true;
                    }
                    Self::flush_fin(conn, s);
                    self.emit(
                        id,
                        Event::Writable {
                            conn: id,
                            stream: s,
                        },
                    );
                } else {
                    if conn.streams.len() >= self.config.max_streams {
                        conn.rtc.direct_api().close_data_channel(ch);
                        return Ok(());
                    }
                    let s = conn.next_stream;
                    conn.next_stream += 1;
                    conn.streams.insert(
                        s,
                        StreamState {
                            chan: Some(ch),
                            open: true,
                            ..Default::default()
                        },
                    );
                    conn.by_chan.insert(ch, s);
                    self.emit(
                        id,
                        Event::StreamOpened {
                            conn: id,
                            stream: s,
                        },
                    );
                }
            }
            RtcEvent::ChannelData(d) => {
                if conn.ch0 == Some(d.id) {
                    if conn.ufrag.is_some() {
                        return Ok(()); // `/webrtc`'s init channel carries nothing of ours
                    }
                    return self.noise_data(id, &d.data);
                }
                let Some(&s) = conn.by_chan.get(&d.id) else {
                    return Ok(());
                };
                let mut msgs = Vec::new();
                let st = conn.streams.get_mut(&s).expect("stream of a channel");
                if let Err(e) = st.decoder.push(&d.data, &mut msgs) {
                    // Bad framing ends this stream only.
                    Self::reset_stream_inner(conn, s, true);
                    self.emit(
                        id,
                        Event::Reset {
                            conn: id,
                            stream: s,
                        },
                    );
                    let _ = e;
                    return Ok(());
                }
                for m in msgs {
                    self.on_message(id, s, m);
                }
            }
            RtcEvent::ChannelClose(ch) => {
                if conn.ch0 == Some(ch) {
                    return Ok(());
                }
                if let Some(s) = conn.by_chan.remove(&ch) {
                    if let Some(st) = conn.streams.remove(&s) {
                        let clean = st.fin_received && (st.fin_acked || st.reset);
                        if !clean && !st.reset {
                            self.emit(
                                id,
                                Event::Reset {
                                    conn: id,
                                    stream: s,
                                },
                            );
                        } else if st.fin_sent && !st.fin_acked {
                            self.emit(
                                id,
                                Event::Finished {
                                    conn: id,
                                    stream: s,
                                },
                            );
                        }
                    }
                }
            }
            RtcEvent::ChannelBufferedAmountLow(ch) => {
                if let Some(&s) = conn.by_chan.get(&ch) {
                    conn.blocked.insert(s);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Events of a connection still handshaking wait until it is authenticated.
    fn emit(&mut self, id: u64, ev: Event) {
        match self.conns.get_mut(&id) {
            Some(c) if !matches!(c.noise, Noise::Done) => c.held.push(ev),
            _ => self.events.push_back(ev),
        }
    }

    fn on_message(&mut self, id: u64, s: u64, m: Message) {
        let fin_ack = self.config.fin_ack;
        let conn = self.conns.get_mut(&id).expect("live connection");
        let Some(st) = conn.streams.get_mut(&s) else {
            return;
        };
        if st.reset {
            return;
        }
        if !m.data.is_empty() && !st.fin_received {
            self.emit(
                id,
                Event::Data {
                    conn: id,
                    stream: s,
                    data: m.data,
                },
            );
        }
        let conn = self.conns.get_mut(&id).expect("live connection");
        let st = conn.streams.get_mut(&s).expect("stream");
        match m.flag {
            Some(Flag::Fin) if !st.fin_received => {
                st.fin_received = true;
                if fin_ack {
                    Self::write_framed(conn, s, Some(Flag::FinAck), b"");
                }
                self.emit(
                    id,
                    Event::Fin {
                        conn: id,
                        stream: s,
                    },
                );
                self.maybe_retire(id, s);
            }
            Some(Flag::FinAck) if st.fin_sent && !st.fin_acked => {
                st.fin_acked = true;
                self.emit(
                    id,
                    Event::Finished {
                        conn: id,
                        stream: s,
                    },
                );
                self.maybe_retire(id, s);
            }
            Some(Flag::StopSending) if !st.stopped => {
                st.stopped = true;
                if !st.fin_sent {
                    Self::reset_stream_inner(conn, s, true);
                    self.emit(
                        id,
                        Event::Reset {
                            conn: id,
                            stream: s,
                        },
                    );
                }
            }
            Some(Flag::Reset) => {
                Self::reset_stream_inner(conn, s, false);
                self.emit(
                    id,
                    Event::Reset {
                        conn: id,
                        stream: s,
                    },
                );
            }
            // None, and flags already handled (a repeated FIN, FIN_ACK, STOP_SENDING).
            _ => {}
        }
    }

    /// Both directions done: close the data channel (it leaves the map on ChannelClose).
    fn maybe_retire(&mut self, id: u64, s: u64) {
        let conn = self.conns.get_mut(&id).expect("live connection");
        let Some(st) = conn.streams.get(&s) else {
            return;
        };
        if st.fin_received && st.fin_acked {
            if let Some(ch) = st.chan {
                conn.rtc.direct_api().close_data_channel(ch);
            }
        }
    }

    fn reset_stream_inner(conn: &mut Conn, s: u64, send_reset: bool) {
        let Some(st) = conn.streams.get_mut(&s) else {
            return;
        };
        if st.reset {
            return;
        }
        st.reset = true;
        conn.blocked.remove(&s);
        if send_reset {
            Self::write_framed(conn, s, Some(Flag::Reset), b"");
        }
        if let Some(ch) = conn.streams.get(&s).and_then(|st| st.chan) {
            conn.rtc.direct_api().close_data_channel(ch);
        }
    }

    /// Writes one framed message on stream `s`'s channel; false when it did not fit.
    fn write_framed(conn: &mut Conn, s: u64, flag: Option<Flag>, data: &[u8]) -> bool {
        let Some(ch) = conn.streams.get(&s).and_then(|st| st.chan) else {
            return false;
        };
        let Some(mut chan) = conn.rtc.channel(ch) else {
            return false;
        };
        chan.write(true, &framing::encode_one(flag, data))
            .unwrap_or(false)
    }

    fn flush_fin(conn: &mut Conn, s: u64) {
        let pending = conn.streams.get(&s).is_some_and(|st| st.fin_pending);
        if pending && Self::write_framed(conn, s, Some(Flag::Fin), b"") {
            if let Some(st) = conn.streams.get_mut(&s) {
                st.fin_pending = false;
            }
        }
    }

    // ---- Noise on data channel 0 ------------------------------------------------------

    fn start_noise(&mut self, id: u64) -> Result<(), (CloseKind, String)> {
        let conn = self.conns.get_mut(&id).expect("live connection");
        if !matches!(conn.noise, Noise::Idle) {
            return Ok(());
        }
        let remote_fp = conn
            .rtc
            .direct_api()
            .remote_dtls_fingerprint()
            .cloned()
            .ok_or((
                CloseKind::Handshake,
                "no DTLS certificate from the remote".into(),
            ))?;
        let remote_fp: [u8; 32] = remote_fp.bytes.as_slice().try_into().map_err(|_| {
            (
                CloseKind::Handshake,
                "remote fingerprint is not sha-256".into(),
            )
        })?;
        if let Some(expected) = conn.dialed {
            // str0m verified it already; the prologue must bind the certhash we dialled.
            if expected != remote_fp {
                return Err((
                    CloseKind::Handshake,
                    "the listener's DTLS certificate does not match the certhash".into(),
                ));
            }
            // The dialler (A) is the Noise responder: wait for message 1.
            let prologue = noise_prologue(&self.fingerprint, &remote_fp);
            let hs = Handshake::new(false, Some(self.noise_secret), &prologue)
                .map_err(|e| (CloseKind::Handshake, format!("Noise: {e}")))?;
            conn.noise = Noise::Sent(Box::new(hs));
            return Ok(());
        }
        let prologue = noise_prologue(&remote_fp, &self.fingerprint);
        let mut hs = Handshake::new(true, Some(self.noise_secret), &prologue)
            .map_err(|e| (CloseKind::Handshake, format!("Noise: {e}")))?;
        let m1 = hs
            .write_message(&[])
            .map_err(|e| (CloseKind::Handshake, format!("Noise: {e}")))?;
        Self::write_ch0(conn, &m1)?;
        conn.noise = Noise::Sent(Box::new(hs));
        Ok(())
    }

    fn write_ch0(conn: &mut Conn, noise_msg: &[u8]) -> Result<(), (CloseKind, String)> {
        let mut bytes = Vec::with_capacity(noise_msg.len() + 2);
        bytes.extend_from_slice(&(noise_msg.len() as u16).to_be_bytes());
        bytes.extend_from_slice(noise_msg);
        let ch0 = conn
            .ch0
            .ok_or((CloseKind::Handshake, "no data channel 0".into()))?;
        let mut chan = conn
            .rtc
            .channel(ch0)
            .ok_or((CloseKind::Handshake, "data channel 0 is not open".into()))?;
        for chunk in bytes.chunks(SEND_PAYLOAD) {
            let ok = chan
                .write(true, &framing::encode_one(None, chunk))
                .unwrap_or(false);
            if !ok {
                return Err((
                    CloseKind::Handshake,
                    "data channel 0 refused a write".into(),
                ));
            }
        }
        Ok(())
    }

    fn noise_data(&mut self, id: u64, data: &[u8]) -> Result<(), (CloseKind, String)> {
        let payload = self.noise_payload.clone();
        let conn = self.conns.get_mut(&id).expect("live connection");
        let mut msgs = Vec::new();
        conn.ch0_decoder
            .push(data, &mut msgs)
            .map_err(|e| (CloseKind::Protocol, format!("channel 0: {e}")))?;
        let mut fin = false;
        for m in msgs {
            if matches!(conn.noise, Noise::Sent(_)) {
                conn.noise_buf.extend_from_slice(&m.data);
                if conn.noise_buf.len() > MAX_NOISE_MESSAGE + 2 {
                    return Err((CloseKind::Handshake, "Noise message too large".into()));
                }
            }
            if m.flag == Some(Flag::Fin) {
                fin = true;
            }
        }
        if fin {
            // The dialler closes the handshake channel when done: acknowledge, and finish ours.
            if let Some(mut chan) = conn.ch0.and_then(|c| conn.rtc.channel(c)) {
                let _ = chan.write(true, &framing::encode_one(Some(Flag::FinAck), b""));
            }
        }
        loop {
            if !matches!(conn.noise, Noise::Sent(_)) || conn.noise_buf.len() < 2 {
                break;
            }
            let len = u16::from_be_bytes([conn.noise_buf[0], conn.noise_buf[1]]) as usize;
            if conn.noise_buf.len() < 2 + len {
                break;
            }
            let msg: Vec<u8> = conn.noise_buf.drain(..2 + len).skip(2).collect();
            let Noise::Sent(hs) = &mut conn.noise else {
                unreachable!()
            };
            let got = hs
                .read_message(&msg)
                .map_err(|e| (CloseKind::Handshake, format!("Noise: {e}")))?;
            if !got.is_empty() {
                conn.remote_payload = got;
            }
            if !hs.is_finished() && hs.is_my_turn() {
                // Our one message with a payload: message 2 (dialler) or 3 (listener).
                let out = hs
                    .write_message(&payload)
                    .map_err(|e| (CloseKind::Handshake, format!("Noise: {e}")))?;
                Self::write_ch0(conn, &out)?;
            }
            let Noise::Sent(hs) = &conn.noise else {
                unreachable!()
            };
            if !hs.is_finished() {
                continue;
            }
            let remote_static = hs
                .remote_static_public()
                .ok_or((CloseKind::Handshake, "Noise: no remote static key".into()))?;
            conn.noise = Noise::Done;
            if conn.dialed.is_none() {
                if let Some(mut chan) = conn.ch0.and_then(|c| conn.rtc.channel(c)) {
                    let _ = chan.write(true, &framing::encode_one(Some(Flag::Fin), b""));
                }
            }
            conn.deadline = None;
            conn.noise_buf = Vec::new();
            let remote = conn.remote;
            let held = std::mem::take(&mut conn.held);
            let remote_payload = std::mem::take(&mut conn.remote_payload);
            self.events.push_back(Event::Authenticated {
                conn: id,
                payload: remote_payload,
                remote_static,
                remote,
            });
            self.events.extend(held);
            return Ok(());
        }
        if fin && !matches!(conn.noise, Noise::Done) {
            return Err((CloseKind::Handshake, "channel 0 closed during Noise".into()));
        }
        Ok(())
    }

    // ---- `/webrtc`: connections set up by signalling -------------------------------------

    /// A full ICE agent with our socket's address as its host candidate, for `/webrtc`.
    fn signalled_rtc(&self, ufrag: &str, pwd: &str, now: Instant) -> Result<Rtc, WebRtcError> {
        if ufrag.len() < 4 || ufrag.len() > stun::MAX_UFRAG || ufrag.contains(':') {
            return Err(WebRtcError::Config(
                "ICE ufrag must be 4..256 characters, no ':'".into(),
            ));
        }
        if pwd.len() < 22 || pwd.len() > 256 {
            return Err(WebRtcError::Config(
                "ICE password must be 22..256 characters".into(),
            ));
        }
        if self.by_ufrag.contains_key(ufrag) {
            return Err(WebRtcError::Config("ICE ufrag already in use".into()));
        }
        if self.conns.len() >= self.config.max_connections
            || self.handshaking() >= self.config.max_handshakes
        {
            return Err(WebRtcError::Dial("too many connections".into()));
        }
        let mut rtc = Rtc::builder()
            .set_local_ice_credentials(IceCreds {
                ufrag: ufrag.to_owned(),
                pass: pwd.to_owned(),
            })
            .set_dtls_cert(DtlsCert {
                certificate: self.cert.der.clone(),
                private_key: self.cert.private_key.clone(),
            })
            .set_fingerprint_verification(true)
            .set_sctp_max_buffered_amount(self.config.send_buffer)
            .build(now);
        let local = Candidate::host(self.local, Protocol::Udp)
            .map_err(|e| WebRtcError::Config(format!("local candidate: {e}")))?;
        rtc.add_local_candidate(local);
        Ok(rtc)
    }

    fn insert_signalled(
        &mut self,
        rtc: Rtc,
        ufrag: &str,
        ch0: Option<ChannelId>,
        now: Instant,
    ) -> u64 {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                rtc,
                remote: self.local, // until a datagram arrives
                deadline: Some(now + self.config.handshake_timeout),
                noise: Noise::Signalled,
                noise_buf: Vec::new(),
                ch0,
                ch0_decoder: Decoder::new(),
                ufrag: Some(ufrag.to_owned()),
                pending: None,
                routes: Vec::new(),
                remote_candidates: 0,
                streams: HashMap::new(),
                by_chan: HashMap::new(),
                next_stream: 1,
                blocked: HashSet::new(),
                next_timeout: None,
                closed: false,
                held: Vec::new(),
                dialed: None,
                remote_payload: Vec::new(),
            },
        );
        self.by_ufrag.insert(ufrag.to_owned(), id);
        self.now = Some(now);
        id
    }

    /// Starts a `/webrtc` connection as the offerer (the dialler of the relayed connection):
    /// returns its id and the SDP offer to send; [`Endpoint::accept_answer`] follows.
    /// `ufrag` and `pwd` are our ICE credentials (random, drawn by the caller).
    pub fn offer(
        &mut self,
        ufrag: &str,
        pwd: &str,
        now: Instant,
    ) -> Result<(u64, String), WebRtcError> {
        let mut rtc = self.signalled_rtc(ufrag, pwd, now)?;
        let (ch, offer, pending) = {
            let mut api = rtc.sdp_api();
            let ch = api.add_channel("init".into());
            let (offer, pending) = api
                .apply()
                .ok_or_else(|| WebRtcError::Config("no SDP offer to make".into()))?;
            (ch, offer, pending)
        };
        let id = self.insert_signalled(rtc, ufrag, Some(ch), now);
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.pending = Some(pending);
        }
        self.drive(id, now);
        Ok((id, offer.to_sdp_string()))
    }

    /// Answers a remote SDP offer (we are the answerer, the relayed connection's listener):
    /// returns the new connection's id and the SDP answer to send back.
    pub fn accept_offer(
        &mut self,
        sdp: &str,
        ufrag: &str,
        pwd: &str,
        now: Instant,
    ) -> Result<(u64, String), WebRtcError> {
        if sdp.len() > MAX_SDP {
            return Err(WebRtcError::Sdp(format!("offer of {} bytes", sdp.len())));
        }
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let mut rtc = self.signalled_rtc(ufrag, pwd, now)?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let id = self.insert_signalled(rtc, ufrag, None, now);
        self.route_sdp_candidates(id, sdp);
        self.drive(id, now);
        Ok((id, answer.to_sdp_string()))
    }

    /// The remote's SDP answer to our [`Endpoint::offer`].
    pub fn accept_answer(&mut self, id: u64, sdp: &str) -> Result<(), WebRtcError> {
        if sdp.len() > MAX_SDP {
            return Err(WebRtcError::Sdp(format!("answer of {} bytes", sdp.len())));
        }
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let conn = self
            .conns
            .get_mut(&id)
            .ok_or(WebRtcError::UnknownConnection(id))?;
        let pending = conn
            .pending
            .take()
            .ok_or_else(|| WebRtcError::Sdp("no offer awaits an answer".into()))?;
        conn.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        self.route_sdp_candidates(id, sdp);
        self.dirty.insert(id);
        Ok(())
    }

    /// One trickled remote candidate (`candidate:...`, as `RTCIceCandidate.candidate`).
    /// Returns false for one we skip (not UDP, an mDNS `.local` name, over the cap): the
    /// browser reaches us from it anyway (a peer-reflexive candidate).
    pub fn add_remote_candidate(&mut self, id: u64, line: &str) -> Result<bool, WebRtcError> {
        let line = line.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        if line.len() > 1024 {
            return Err(WebRtcError::Candidate("longer than 1024 bytes".into()));
        }
        let conn = self
            .conns
            .get_mut(&id)
            .ok_or(WebRtcError::UnknownConnection(id))?;
        if conn.ufrag.is_none() {
            return Err(WebRtcError::UnknownConnection(id));
        }
        if line
            .split_whitespace()
            .nth(4)
            .is_some_and(|a| a.ends_with(".local"))
        {
            return Ok(false);
        }
        let cand =
            Candidate::from_sdp_string(line).map_err(|e| WebRtcError::Candidate(e.to_string()))?;
        if cand.proto() != Protocol::Udp || conn.remote_candidates >= MAX_REMOTE_CANDIDATES {
            return Ok(false);
        }
        conn.remote_candidates += 1;
        let addr = cand.addr();
        conn.rtc.add_remote_candidate(cand);
        self.route(id, addr);
        self.dirty.insert(id);
        Ok(true)
    }

    /// Datagrams from `addr` go to connection `id` (unless another holds the address).
    fn route(&mut self, id: u64, addr: SocketAddr) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.by_addr.entry(addr) {
            e.insert(id);
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.routes.push(addr);
            }
        }
    }

    /// The candidates written into an SDP (`a=candidate:` lines) route to `id` too.
    fn route_sdp_candidates(&mut self, id: u64, sdp: &str) {
        let addrs: Vec<SocketAddr> = sdp
            .lines()
            .filter_map(|l| l.trim().strip_prefix("a="))
            .filter_map(|l| Candidate::from_sdp_string(l).ok())
            .filter(|c| c.proto() == Protocol::Udp)
            .map(|c| c.addr())
            .take(MAX_REMOTE_CANDIDATES)
            .collect();
        for addr in addrs {
            self.route(id, addr);
        }
    }

    /// A STUN check from a new address whose USERNAME starts with a `/webrtc` connection's
    /// ufrag belongs to it (the remote's peer-reflexive or unannounced host candidate).
    fn route_signalled(&mut self, source: SocketAddr, data: &[u8]) -> Option<u64> {
        if self.by_ufrag.is_empty() {
            return None;
        }
        let local = stun::binding_local_ufrag(data)?;
        let id = *self.by_ufrag.get(local)?;
        self.route(id, source);
        Some(id)
    }

    /// The offerer's first data channel opened: the `/webrtc` connection is up.
    fn signalled_up(&mut self, id: u64, ch: ChannelId) -> Result<(), (CloseKind, String)> {
        let conn = self.conns.get_mut(&id).expect("live connection");
        let ours = conn.ch0 == Some(ch);
        conn.ch0 = Some(ch);
        conn.noise = Noise::Done;
        conn.deadline = None;
        if ours {
            // Our `init` channel did its job (the offer's m=application line): close it.
            conn.rtc.direct_api().close_data_channel(ch);
        }
        let remote = conn.remote;
        let held = std::mem::take(&mut conn.held);
        self.events.push_back(Event::Authenticated {
            conn: id,
            payload: Vec::new(),
            remote_static: [0; 32],
            remote,
        });
        self.events.extend(held);
        Ok(())
    }

    // ---- the application side ---------------------------------------------------------

    fn live(&mut self, id: u64) -> Result<&mut Conn, WebRtcError> {
        self.dirty.insert(id);
        match self.conns.get_mut(&id) {
            Some(c) if !c.closed && matches!(c.noise, Noise::Done) => Ok(c),
            _ => Err(WebRtcError::UnknownConnection(id)),
        }
    }

    /// Opens an outbound stream (a new data channel, negotiated in band).
    pub fn open_stream(&mut self, id: u64) -> Result<u64, WebRtcError> {
        let max = self.config.max_streams;
        let conn = self.live(id)?;
        if conn.streams.len() >= max {
            return Err(WebRtcError::TooManyStreams);
        }
        let ch = conn.rtc.direct_api().create_data_channel(ChannelConfig {
            label: String::new(),
            ..Default::default()
        });
        let s = conn.next_stream;
        conn.next_stream += 1;
        conn.streams.insert(
            s,
            StreamState {
                chan: Some(ch),
                ..Default::default()
            },
        );
        conn.by_chan.insert(ch, s);
        Ok(s)
    }

    /// Queues `data` on stream `s`; returns the bytes taken (fewer when the send buffer is
    /// full: a `Writable` event follows).
    pub fn send(&mut self, id: u64, s: u64, data: &[u8]) -> Result<usize, WebRtcError> {
        let conn = self.live(id)?;
        let st = conn.streams.get(&s).ok_or(WebRtcError::UnknownStream(s))?;
        if st.reset || st.stopped {
            return Err(WebRtcError::StreamReset(s));
        }
        if st.fin_sent {
            return Err(WebRtcError::StreamClosed(s));
        }
        let mut taken = 0;
        for chunk in data.chunks(SEND_PAYLOAD) {
            if !Self::write_framed(conn, s, None, chunk) {
                conn.blocked.insert(s);
                break;
            }
            taken += chunk.len();
        }
        Ok(taken)
    }

    /// Bytes a send would take now (an estimate: at most one message).
    pub fn send_window(&mut self, id: u64, s: u64) -> Result<usize, WebRtcError> {
        let conn = self.live(id)?;
        let st = conn.streams.get(&s).ok_or(WebRtcError::UnknownStream(s))?;
        if st.reset || st.stopped || st.fin_sent || !st.open {
            return Ok(0);
        }
        Ok(SEND_PAYLOAD)
    }

    /// Half-closes stream `s` (FIN after what was written); true when it was not yet closed.
    pub fn finish(&mut self, id: u64, s: u64) -> Result<bool, WebRtcError> {
        let conn = self.live(id)?;
        let Some(st) = conn.streams.get_mut(&s) else {
            return Ok(false);
        };
        if st.fin_sent || st.reset {
            return Ok(false);
        }
        st.fin_sent = true;
        st.fin_pending = true;
        Self::flush_fin(conn, s);
        Ok(true)
    }

    /// Resets stream `s` both ways.
    pub fn reset(&mut self, id: u64, s: u64) -> Result<(), WebRtcError> {
        let conn = self.live(id)?;
        Self::reset_stream_inner(conn, s, true);
        conn.streams.remove(&s);
        conn.by_chan.retain(|_, v| *v != s);
        Ok(())
    }

    /// Closes connection `id` (no event follows for it).
    pub fn close(&mut self, id: u64) {
        if let Some(mut conn) = self.conns.remove(&id) {
            // `Rtc::close` queues an SCTP SHUTDOWN and a DTLS close_notify so the peer
            // notices (str0m reports `Closed` there); `disconnect` would drop the
            // connection silently and leave the peer holding it until it times out.
            if conn.rtc.close().is_err() {
                conn.rtc.disconnect();
            }
            if self.by_addr.get(&conn.remote) == Some(&id) {
                self.by_addr.remove(&conn.remote);
            }
            for addr in &conn.routes {
                if self.by_addr.get(addr) == Some(&id) {
                    self.by_addr.remove(addr);
                }
            }
            if let Some(u) = &conn.ufrag {
                self.by_ufrag.remove(u);
            }
            // Flush what the close queued (SCTP SHUTDOWN, DTLS close_notify); nothing
            // polls this `Rtc` again, so its retransmissions are forgone. Bounded in
            // case str0m keeps yielding events.
            for _ in 0..64 {
                match conn.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => self
                        .transmits
                        .push_back((t.destination, t.contents.to_vec())),
                    Ok(Output::Event(_)) => {}
                    Ok(Output::Timeout(_)) | Err(_) => break,
                }
            }
        }
    }

    fn close_conn(&mut self, id: u64, kind: CloseKind, message: String) {
        if self.conns.contains_key(&id) {
            self.close(id);
            self.events.push_back(Event::Closed {
                conn: id,
                kind,
                message,
            });
        }
    }
}
