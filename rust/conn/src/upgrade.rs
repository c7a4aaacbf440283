//! The upgrade of a raw TCP-like connection, without IO: multistream-select of the security
//! protocol, then the Noise XX or TLS 1.3 handshake. A [`crate::Connection`] built with
//! [`crate::Connection::upgrading`] runs one of these over its first bytes, then installs
//! the cipher and the muxer itself: one object from the first byte to the last.
//!
//! Round trips are those of the Python upgrader this replaces: a dialer proposing a single
//! protocol selects it lazily (the multistream header, the proposal and the first handshake
//! message leave in one write; the listener's answer is checked before its handshake
//! message), and a listener answers the header, the protocol and its handshake message in one
//! write (all are queued by one `receive`).
//!
//! The Noise payload is built and signed by the caller (the identity key lives there); the
//! remote's payload is decoded here and its signature check is asked of the caller with
//! [`UpgradeEvent::Verify`] (any identity key type: the caller's crypto library), answered by
//! [`Upgrade::verified`]. Until then nothing more is processed. Everything else (payload
//! bounds, the peer id of the key, the expected peer, the early muxer) is decided here.

use rapidp2p_multistream::{decode_message, Decoded, Negotiation, NegotiationError};
use rapidp2p_noise::{Handshake as NoiseHandshake, NoiseError, MAX_MESSAGE_LEN};
use rapidp2p_tls::{Handshake as TlsHandshake, Identity as TlsIdentity, TlsError};
use rapidp2p_wire::peerid;

use crate::tls_channel::Cipher;

/// The Noise security protocol id.
pub const NOISE_ID: &str = "/noise";
/// The TLS 1.3 security protocol id.
pub const TLS_ID: &str = "/tls/1.0.0";
/// An identity key protobuf larger than this is refused before anything else (RSA 8192 is
/// about 1.1 KB).
pub const MAX_IDENTITY_KEY: usize = 2048;
/// The message a rapidp2p listener sends after `na` to say why it refused the connection.
pub const REFUSED_PREFIX: &str = "refused: ";
/// Seconds a refused dialer waits for the listener's reason after its `na`.
pub const REASON_WAIT: f64 = 1.0;
/// RFC 8446 5.1/5.2: a record body is at most 2^14 + 256 bytes.
pub const MAX_TLS_RECORD_BODY: usize = 16384 + 256;
/// A TLS handshake longer than this many records is abandoned (a real one takes fewer than 10).
pub const MAX_TLS_RECORDS: usize = 64;
/// Bytes received and not yet consumed that the upgrade keeps (only while a signature check
/// is pending can more than one handshake message wait).
pub const MAX_UPGRADE_BUFFER: usize = 4 * 1024 * 1024;
/// The Noise payload signature covers this prefix followed by the static key.
pub const NOISE_SIGNATURE_PREFIX: &[u8] = b"noise-libp2p-static-key:";

/// Why an upgrade failed; the connection is then useless.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    /// multistream-select of the security protocol failed.
    #[error(transparent)]
    Negotiation(#[from] NegotiationError),
    /// The listener refused the connection and said why (`refused: <reason>` after `na`).
    #[error("the listener refused the connection: {0}")]
    Refused(String),
    /// The Noise state machine refused a message (truncated, bad tag, low-order key...).
    #[error("{0}")]
    Noise(#[from] NoiseError),
    /// The libp2p layer of a handshake is wrong (payload, size, order, early close).
    #[error("{0}")]
    Handshake(String),
    /// The caller's signature check of the remote's Noise payload failed (its reason).
    #[error("{0}")]
    BadSignature(String),
    /// The remote proved another peer id than the expected one.
    #[error("{0}")]
    PeerIdMismatch(String),
    /// The TLS handshake failed (typed by the TLS crate).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A call the upgrade did not expect (local misuse, never the peer's doing).
    #[error("{0}")]
    Local(&'static str),
}

/// The Noise part of the local configuration.
#[derive(Clone)]
pub struct NoiseConfig {
    /// Our x25519 static secret (shared by the host's handshakes).
    pub static_secret: [u8; 32],
    /// Our NoiseHandshakePayload (identity key, signature over the static key, our early
    /// muxers): built and signed by the caller, sent as is in message 2 or 3.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for NoiseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseConfig").finish_non_exhaustive()
    }
}

/// What one upgrade may do.
#[derive(Clone, Debug)]
pub struct UpgradeConfig {
    /// Dialer side of multistream-select and handshake initiator (else listener, responder).
    pub initiator: bool,
    /// Dialer: proposed in order; listener: accepted. Only [`NOISE_ID`] and [`TLS_ID`].
    pub protocols: Vec<String>,
    /// The peer id (bytes) the remote must prove, if known.
    pub expected_peer: Option<Vec<u8>>,
    /// Muxers listed for early negotiation (Noise extensions, TLS ALPN), in our order.
    pub early_muxers: Vec<String>,
    /// Needed when `protocols` holds [`NOISE_ID`].
    pub noise: Option<NoiseConfig>,
    /// Needed when `protocols` holds [`TLS_ID`].
    pub tls: Option<TlsIdentity>,
    /// Wall-clock Unix seconds (TLS certificate validity).
    pub unix_now: i64,
}

/// What the caller learns as the upgrade goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpgradeEvent {
    /// The security protocol was agreed (the listener's answer arrived, or we answered).
    Selected(String),
    /// Check that `signature` over [`NOISE_SIGNATURE_PREFIX`] + `static_key` verifies with
    /// the identity key `key` (a PublicKey protobuf), then call [`Upgrade::verified`].
    Verify {
        key: Vec<u8>,
        signature: Vec<u8>,
        static_key: Vec<u8>,
    },
    /// The handshake is done: the remote proved `peer` (peer id bytes) with `key` (its
    /// PublicKey protobuf); `muxer` is the early muxer agreed, if any.
    Secured {
        protocol: String,
        peer: Vec<u8>,
        key: Vec<u8>,
        muxer: Option<String>,
    },
}

/// The outcome of a finished upgrade, taken once by the connection.
pub struct Secured {
    pub cipher: Cipher,
    pub muxer: Option<String>,
}

impl std::fmt::Debug for Secured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secured")
            .field("muxer", &self.muxer)
            .finish_non_exhaustive()
    }
}

/// Where the Noise handshake is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NoiseStep {
    /// Initiator: message 2 is due; responder: message 1.
    Reading,
    /// The remote's payload awaits the caller's signature check.
    Verifying,
    /// Responder: message 3 is due.
    ReadingLast,
}

struct NoiseRun {
    hs: NoiseHandshake,
    step: NoiseStep,
    /// The remote's identity key protobuf and listed muxers (read from its payload).
    remote_key: Vec<u8>,
    remote_muxers: Vec<String>,
}

enum Security {
    /// Not started (the listener's answer, or the dialer's proposal, is awaited).
    None,
    Noise(Box<NoiseRun>),
    Tls(Box<TlsHandshake>, usize),
}

/// One upgrade (see the module docs).
pub struct Upgrade {
    cfg: UpgradeConfig,
    /// multistream-select, until it agreed.
    negotiation: Option<Negotiation>,
    security: Security,
    /// Received bytes not consumed yet.
    inbuf: Vec<u8>,
    /// Wire bytes to send.
    out: Vec<u8>,
    events: Vec<UpgradeEvent>,
    /// The dialer got `na` to its last proposal: when to stop waiting for the reason.
    refused_until: Option<f64>,
    refused_error: Option<NegotiationError>,
    secured: Option<Secured>,
    failed: bool,
}

impl std::fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrade")
            .field("initiator", &self.cfg.initiator)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

fn handshake(msg: impl Into<String>) -> UpgradeError {
    UpgradeError::Handshake(msg.into())
}

/// The first muxer of the initiator's list the responder also lists.
pub fn select_early_muxer(initiator: &[String], responder: &[String]) -> Option<String> {
    initiator.iter().find(|m| responder.contains(m)).cloned()
}

impl Upgrade {
    /// A new upgrade; a dialer's first bytes are queued at once (see [`Self::take_output`]).
    pub fn new(cfg: UpgradeConfig) -> Result<Self, UpgradeError> {
        if cfg.protocols.is_empty() {
            return Err(UpgradeError::Negotiation(NegotiationError::NoProtocols));
        }
        for p in &cfg.protocols {
            match p.as_str() {
                NOISE_ID if cfg.noise.is_none() => {
                    return Err(UpgradeError::Local("/noise needs a Noise configuration"))
                }
                TLS_ID if cfg.tls.is_none() => {
                    return Err(UpgradeError::Local("/tls/1.0.0 needs a TLS identity"))
                }
                NOISE_ID | TLS_ID => {}
                _ => return Err(UpgradeError::Local("only /noise and /tls/1.0.0 run here")),
            }
        }
        let negotiation = if cfg.initiator {
            Negotiation::dialer(cfg.protocols.clone())?
        } else {
            Negotiation::listener(cfg.protocols.clone())?
        };
        let mut up = Self {
            cfg,
            negotiation: Some(negotiation),
            security: Security::None,
            inbuf: Vec::new(),
            out: Vec::new(),
            events: Vec::new(),
            refused_until: None,
            refused_error: None,
            secured: None,
            failed: false,
        };
        up.drain_negotiation();
        if up.cfg.initiator && up.cfg.protocols.len() == 1 {
            // Lazy: the handshake starts before the listener confirmed the protocol.
            let p = up.cfg.protocols[0].clone();
            up.start_security(&p)?;
        }
        Ok(up)
    }

    /// Wire bytes to send now (taken).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Wire bytes waiting to be sent.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Events since the last call (taken).
    pub fn take_events(&mut self) -> Vec<UpgradeEvent> {
        std::mem::take(&mut self.events)
    }

    /// True once the handshake finished (the result waits in [`Self::take_secured`]).
    pub fn is_secured(&self) -> bool {
        self.secured.is_some()
    }

    /// True while the caller's signature check is awaited.
    pub fn is_verifying(&self) -> bool {
        matches!(&self.security, Security::Noise(n) if n.step == NoiseStep::Verifying)
    }

    /// The cipher and early muxer of a finished handshake (once), with the bytes received
    /// after the handshake's last message (they belong to the secured channel).
    pub fn take_secured(&mut self) -> Option<(Secured, Vec<u8>)> {
        let s = self.secured.take()?;
        Some((s, std::mem::take(&mut self.inbuf)))
    }

    /// When [`Self::handle_timer`] must run (the wait for a refusal's reason), if ever.
    pub fn next_timer(&self) -> Option<f64> {
        self.refused_until
    }

    /// Runs due timers: a refused dialer stops waiting for the listener's reason.
    pub fn handle_timer(&mut self, now: f64) -> Result<(), UpgradeError> {
        match self.refused_until {
            Some(at) if now >= at => {
                let e = self.refused_plain();
                Err(self.fail(e))
            }
            _ => Ok(()),
        }
    }

    fn refused_plain(&mut self) -> UpgradeError {
        self.refused_until = None;
        UpgradeError::Negotiation(
            self.refused_error
                .take()
                .unwrap_or(NegotiationError::NoProtocols),
        )
    }

    fn fail(&mut self, e: UpgradeError) -> UpgradeError {
        self.failed = true;
        self.inbuf = Vec::new();
        e
    }

    /// The remote closed its side before the upgrade ended: the typed reason.
    pub fn receive_eof(&mut self) -> UpgradeError {
        if self.refused_until.is_some() {
            let e = self.refused_plain();
            return self.fail(e);
        }
        let e = match &self.security {
            Security::Noise(_) => handshake("connection closed during the Noise handshake"),
            Security::Tls(..) => handshake("connection closed during the TLS handshake"),
            Security::None => handshake("connection closed during multistream-select"),
        };
        self.fail(e)
    }

    /// Takes received bytes (any split). Stops early while a signature check is pending
    /// (the bytes wait inside) and once secured (the rest is in [`Self::take_secured`]).
    pub fn receive(&mut self, data: &[u8], now: f64) -> Result<(), UpgradeError> {
        if self.failed {
            return Err(handshake("the upgrade already failed"));
        }
        if self.inbuf.len() + data.len() > MAX_UPGRADE_BUFFER {
            return Err(self.fail(handshake("too many bytes before the handshake ended")));
        }
        self.inbuf.extend_from_slice(data);
        self.run(now).map_err(|e| self.fail(e))
    }

    /// The caller's answer to [`UpgradeEvent::Verify`]: `Err(reason)` when the signature
    /// (or the key) is bad. Goes on with the bytes that waited.
    pub fn verified(&mut self, result: Result<(), String>, now: f64) -> Result<(), UpgradeError> {
        if !self.is_verifying() {
            return Err(UpgradeError::Local("no signature check is pending"));
        }
        if let Err(reason) = result {
            return Err(self.fail(UpgradeError::BadSignature(reason)));
        }
        self.after_verify()
            .and_then(|()| self.run(now))
            .map_err(|e| self.fail(e))
    }

    fn drain_negotiation(&mut self) {
        if let Some(n) = self.negotiation.as_mut() {
            self.out.extend_from_slice(n.output());
            n.clear_output();
        }
    }

    fn start_security(&mut self, protocol: &str) -> Result<(), UpgradeError> {
        if !matches!(self.security, Security::None) {
            return Ok(()); // the lazy dialer started it already
        }
        let initiator = self.cfg.initiator;
        match protocol {
            NOISE_ID => {
                let noise = self
                    .cfg
                    .noise
                    .as_ref()
                    .ok_or(UpgradeError::Local("no Noise configuration"))?;
                let mut hs = NoiseHandshake::new(initiator, Some(noise.static_secret), &[])?;
                if initiator {
                    let msg = hs.write_message(&[])?;
                    write_noise_frame(&mut self.out, &msg)?;
                }
                self.security = Security::Noise(Box::new(NoiseRun {
                    hs,
                    step: NoiseStep::Reading,
                    remote_key: Vec::new(),
                    remote_muxers: Vec::new(),
                }));
            }
            TLS_ID => {
                let id = self
                    .cfg
                    .tls
                    .as_ref()
                    .ok_or(UpgradeError::Local("no TLS identity"))?;
                let muxers: Vec<&str> = self.cfg.early_muxers.iter().map(String::as_str).collect();
                let mut hs = if initiator {
                    TlsHandshake::client(
                        id,
                        self.cfg.expected_peer.as_deref(),
                        &muxers,
                        self.cfg.unix_now,
                    )?
                } else {
                    TlsHandshake::server(id, &muxers, self.cfg.unix_now)?
                };
                hs.write_output(&mut self.out)?;
                self.security = Security::Tls(Box::new(hs), 0);
            }
            _ => return Err(UpgradeError::Local("unknown security protocol")),
        }
        Ok(())
    }

    /// Consumes `inbuf` as far as possible.
    fn run(&mut self, now: f64) -> Result<(), UpgradeError> {
        loop {
            if self.secured.is_some() || self.is_verifying() {
                return Ok(());
            }
            if self.refused_until.is_some() {
                return self.read_reason();
            }
            if self.negotiation.is_some() {
                if !self.negotiate_one(now)? {
                    return Ok(());
                }
                continue;
            }
            let progressed = match &self.security {
                Security::None => return Err(UpgradeError::Local("no security protocol")),
                Security::Noise(_) => self.noise_step()?,
                Security::Tls(..) => self.tls_step()?,
            };
            if !progressed {
                return Ok(());
            }
        }
    }

    /// Feeds one whole multistream message to the negotiation; false when none is complete.
    fn negotiate_one(&mut self, now: f64) -> Result<bool, UpgradeError> {
        let n = match decode_message(&self.inbuf).map_err(NegotiationError::from)? {
            Decoded::Incomplete => return Ok(false),
            Decoded::Message(_, n) => n,
        };
        let neg = self
            .negotiation
            .as_mut()
            .ok_or(UpgradeError::Local("no negotiation"))?;
        let r = neg.receive(&self.inbuf[..n]);
        self.inbuf.drain(..n);
        match r {
            Ok(_) => {}
            Err(e @ NegotiationError::NotSupported(_)) if self.cfg.initiator => {
                // A rapidp2p listener says why right after its `na`: wait a moment for it.
                self.negotiation = None;
                self.refused_error = Some(e);
                self.refused_until = Some(now + REASON_WAIT);
                return Ok(true);
            }
            Err(e) => return Err(e.into()),
        }
        self.drain_negotiation();
        let agreed = self
            .negotiation
            .as_ref()
            .and_then(|n| n.outcome().map(str::to_string));
        if let Some(p) = agreed {
            self.negotiation = None;
            self.events.push(UpgradeEvent::Selected(p.clone()));
            self.start_security(&p)?;
        }
        Ok(true)
    }

    /// After the dialer's last `na`: a `refused: <reason>` message, else the plain refusal.
    fn read_reason(&mut self) -> Result<(), UpgradeError> {
        match decode_message(&self.inbuf) {
            Ok(Decoded::Incomplete) => Ok(()),
            Ok(Decoded::Message(text, _)) => match text.strip_prefix(REFUSED_PREFIX) {
                Some(reason) => {
                    let reason = reason.to_string();
                    self.refused_until = None;
                    Err(UpgradeError::Refused(reason))
                }
                None => Err(self.refused_plain()),
            },
            Err(_) => Err(self.refused_plain()),
        }
    }

    /// One Noise message from `inbuf`, if complete; true when it was processed.
    fn noise_step(&mut self) -> Result<bool, UpgradeError> {
        if self.inbuf.len() < 2 {
            return Ok(false);
        }
        let size = usize::from(u16::from_be_bytes([self.inbuf[0], self.inbuf[1]]));
        if self.inbuf.len() < 2 + size {
            return Ok(false);
        }
        let body: Vec<u8> = self.inbuf.drain(..2 + size).skip(2).collect();
        let initiator = self.cfg.initiator;
        let Security::Noise(run) = &mut self.security else {
            return Err(UpgradeError::Local("not a Noise handshake"));
        };
        let payload = run.hs.read_message(&body)?;
        match (initiator, run.step) {
            (false, NoiseStep::Reading) => {
                // Message 1: its payload is never read (nothing there is authenticated).
                let ours = &self
                    .cfg
                    .noise
                    .as_ref()
                    .ok_or(UpgradeError::Local("no Noise configuration"))?
                    .payload;
                let msg = run.hs.write_message(ours)?;
                write_noise_frame(&mut self.out, &msg)?;
                run.step = NoiseStep::ReadingLast;
            }
            (true, NoiseStep::Reading) | (false, NoiseStep::ReadingLast) => {
                if !initiator && !run.hs.is_finished() {
                    return Err(handshake(
                        "Noise handshake did not finish after three messages",
                    ));
                }
                let (key, signature, muxers) = decode_payload(&payload)?;
                let static_key = run
                    .hs
                    .remote_static_public()
                    .ok_or(UpgradeError::Local("no remote static key"))?
                    .to_vec();
                run.remote_key = key.clone();
                run.remote_muxers = muxers;
                run.step = NoiseStep::Verifying;
                self.events.push(UpgradeEvent::Verify {
                    key,
                    signature,
                    static_key,
                });
            }
            (_, NoiseStep::Verifying) | (true, NoiseStep::ReadingLast) => {
                return Err(UpgradeError::Local("unexpected Noise message"));
            }
        }
        Ok(true)
    }

    /// The signature verified: check the peer id, finish the handshake.
    fn after_verify(&mut self) -> Result<(), UpgradeError> {
        let initiator = self.cfg.initiator;
        let Security::Noise(run) = &mut self.security else {
            return Err(UpgradeError::Local("not a Noise handshake"));
        };
        let mut peer = Vec::with_capacity(44);
        peerid::from_public_key_protobuf(&run.remote_key, &mut peer)
            .map_err(|e| handshake(format!("bad identity key in the Noise payload: {e}")))?;
        if let Some(expected) = &self.cfg.expected_peer {
            if *expected != peer {
                let (want, got) = (peerid::to_base58(expected), peerid::to_base58(&peer));
                return Err(UpgradeError::PeerIdMismatch(if initiator {
                    format!("dialed {want}, but the remote proved to be {got}")
                } else {
                    format!("expected {want}, the remote proved {got}")
                }));
            }
        }
        let ours: &[String] = &self.cfg.early_muxers;
        let muxer = if initiator {
            let payload = &self
                .cfg
                .noise
                .as_ref()
                .ok_or(UpgradeError::Local("no Noise configuration"))?
                .payload;
            let msg = run.hs.write_message(payload)?;
            write_noise_frame(&mut self.out, &msg)?;
            select_early_muxer(ours, &run.remote_muxers)
        } else {
            select_early_muxer(&run.remote_muxers, ours)
        };
        if !run.hs.is_finished() {
            return Err(handshake(
                "Noise handshake did not finish after three messages",
            ));
        }
        let key = std::mem::take(&mut run.remote_key);
        let Security::Noise(run) = std::mem::replace(&mut self.security, Security::None) else {
            return Err(UpgradeError::Local("not a Noise handshake"));
        };
        let transport = run.hs.into_transport()?;
        self.finish(NOISE_ID, Cipher::Noise(transport), peer, key, muxer);
        Ok(())
    }

    fn finish(
        &mut self,
        protocol: &str,
        cipher: Cipher,
        peer: Vec<u8>,
        key: Vec<u8>,
        muxer: Option<String>,
    ) {
        self.events.push(UpgradeEvent::Secured {
            protocol: protocol.to_string(),
            peer,
            key,
            muxer: muxer.clone(),
        });
        self.secured = Some(Secured { cipher, muxer });
    }

    /// One TLS record from `inbuf`, if complete; true when it was processed.
    fn tls_step(&mut self) -> Result<bool, UpgradeError> {
        if self.inbuf.len() < 5 {
            return Ok(false);
        }
        let size = usize::from(u16::from_be_bytes([self.inbuf[3], self.inbuf[4]]));
        if size > MAX_TLS_RECORD_BODY {
            return Err(handshake(format!(
                "TLS record of {size} bytes during the handshake"
            )));
        }
        if self.inbuf.len() < 5 + size {
            return Ok(false);
        }
        let Security::Tls(hs, records) = &mut self.security else {
            return Err(UpgradeError::Local("not a TLS handshake"));
        };
        *records += 1;
        if *records > MAX_TLS_RECORDS {
            return Err(handshake(format!(
                "TLS handshake not finished after {MAX_TLS_RECORDS} records"
            )));
        }
        let record: Vec<u8> = self.inbuf.drain(..5 + size).collect();
        if let Err(e) = hs.receive(&record) {
            let _ = hs.write_output(&mut self.out); // the alert tells the peer why
            return Err(e.into());
        }
        hs.write_output(&mut self.out)?;
        if !hs.is_finished() {
            return Ok(true);
        }
        if !hs.take_early_data().is_empty() {
            return Err(handshake("application data inside the TLS handshake"));
        }
        let remote = hs.remote()?;
        if let (false, Some(expected)) = (self.cfg.initiator, &self.cfg.expected_peer) {
            if *expected != remote.peer_id {
                return Err(UpgradeError::PeerIdMismatch(format!(
                    "expected {}, the remote proved {}",
                    peerid::to_base58(expected),
                    peerid::to_base58(&remote.peer_id)
                )));
            }
        }
        let Security::Tls(hs, _) = std::mem::replace(&mut self.security, Security::None) else {
            return Err(UpgradeError::Local("not a TLS handshake"));
        };
        let transport = hs.into_transport()?;
        self.finish(
            TLS_ID,
            Cipher::Tls(transport),
            remote.peer_id,
            remote.public_key,
            remote.muxer,
        );
        Ok(true)
    }
}

fn write_noise_frame(out: &mut Vec<u8>, msg: &[u8]) -> Result<(), UpgradeError> {
    let len = u16::try_from(msg.len())
        .ok()
        .filter(|n| usize::from(*n) <= MAX_MESSAGE_LEN)
        .ok_or_else(|| handshake("Noise handshake message too large"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    Ok(())
}

/// The identity key protobuf, the signature and the listed muxers of a remote payload.
type RemotePayload = (Vec<u8>, Vec<u8>, Vec<String>);

/// Decodes and bounds a remote payload (see [`RemotePayload`]).
fn decode_payload(payload: &[u8]) -> Result<RemotePayload, UpgradeError> {
    let msg = rapidp2p_proto::decode_noise_payload(payload)
        .map_err(|e| handshake(format!("undecodable Noise payload: {e}")))?;
    let key = msg.identity_key.unwrap_or_default();
    let sig = msg.identity_sig.unwrap_or_default();
    if key.is_empty() || sig.is_empty() {
        return Err(handshake("Noise payload without identity key or signature"));
    }
    if key.len() > MAX_IDENTITY_KEY {
        return Err(handshake("identity key in the Noise payload is too large"));
    }
    let muxers = msg.extensions.map(|x| x.stream_muxers).unwrap_or_default();
    Ok((key, sig, muxers))
}

/// Our NoiseHandshakePayload: `key` (PublicKey protobuf), `signature` over
/// [`NOISE_SIGNATURE_PREFIX`] + our static key, and our early muxers (none: no extensions).
pub fn encode_noise_payload(key: &[u8], signature: &[u8], muxers: &[String]) -> Vec<u8> {
    use rapidp2p_proto::{NoiseExtensions, NoiseHandshakePayload};
    let extensions = (!muxers.is_empty()).then(|| NoiseExtensions {
        webtransport_certhashes: Vec::new(),
        stream_muxers: muxers.to_vec(),
    });
    rapidp2p_proto::encode(&NoiseHandshakePayload {
        identity_key: Some(key.to_vec()),
        identity_sig: Some(signature.to_vec()),
        extensions,
    })
}
