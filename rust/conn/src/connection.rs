//! `Connection`: the whole secured life of a TCP-like connection after its handshake, one
//! call per socket read and one per flush.
//!
//! Layers, bottom up: the private-network protector (optional), the transport cipher
//! (optional: plaintext security), multistream-select for the muxer when the handshake did
//! not agree on one, then the muxer session: yamux, or mplex for old peers (see [`Muxer`]).
//! The connection owns the only carried receive state: a partial cipher frame (`rbuf`,
//! shorter than one frame) between reads.

use std::collections::HashMap;
use std::ops::Range;

use rapidp2p_mplex as mplex;

use rapidp2p_multistream::{Negotiation, NegotiationError};
use rapidp2p_pnet::Protector;
use rapidp2p_yamux::frame::GO_AWAY_PROTOCOL_ERROR;
use rapidp2p_yamux::{Config, DataSink, Error as MuxError, Event, Role, Session};

use crate::channel::{SecureChannel, MAX_WIRE_FRAME};
use crate::outqueue::OutQueue;
use crate::tls_channel::Cipher;
use crate::upgrade::{Upgrade, UpgradeError, UpgradeEvent};

/// Bodies at least this long are queued by reference to the caller's buffer, not copied.
pub const REF_MIN: usize = 4096;
/// A carried partial frame buffer larger than this is released once empty.
const MAX_IDLE_RBUF: usize = 128 * 1024;

/// Why a connection call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// A transport frame failed authentication (or could not be encrypted); the connection
    /// is dead.
    #[error("decryption failed: {0}")]
    Crypto(String),
    /// multistream-select for the muxer failed (the connection is useless).
    #[error("muxer negotiation failed: {0}")]
    Negotiation(#[from] NegotiationError),
    /// The yamux session refused (peer violation or local misuse).
    #[error(transparent)]
    Mux(#[from] MuxError),
    /// The mplex session refused (peer violation or local misuse).
    #[error(transparent)]
    Mplex(#[from] mplex::Error),
    /// The security upgrade (multistream-select, handshake) failed.
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
}

/// How the muxer starts once an upgrading connection is secured.
#[derive(Debug)]
struct MuxerSetup {
    role: Role,
    cfg: Config,
    /// Our muxers, in order (negotiated in the channel unless the handshake agreed on one).
    muxers: Vec<String>,
}

/// The upgrade phase of a connection built with [`Connection::upgrading`].
struct Upgrading<T> {
    upgrade: Upgrade,
    setup: MuxerSetup,
    /// Turns the handshake's cipher into the connection's.
    adopt: fn(Cipher) -> T,
}

/// The multistream id of yamux.
pub const YAMUX_ID: &str = "/yamux/1.0.0";

/// The muxer session the connection runs: yamux, or mplex once the negotiation chose it.
/// mplex has no windows, pings or GoAway frame: its calls map onto the same connection API
/// with those parts inert (`send_window` is unbounded, `ping` is refused, no timers).
#[derive(Debug)]
pub enum Muxer {
    Yamux(Session),
    Mplex(mplex::Session),
}

/// Mplex DATA events coalesced per stream within one `receive` call, and mplex events
/// turned into the connection's (yamux-shaped) events.
#[derive(Debug, Default)]
struct MplexGlue {
    data_idx: HashMap<u32, usize>,
    tmp: Vec<mplex::Event>,
    pieces: Vec<(usize, Range<usize>)>,
    finals: Vec<usize>,
}

impl MplexGlue {
    /// Runs `m` over `data`, appending its events to `events` (DATA of one stream stays one
    /// event per call; bytes go to `sink` with the final event index when given).
    fn receive(
        &mut self,
        m: &mut mplex::Session,
        data: &[u8],
        events: &mut Vec<Event>,
        sink: Option<DataSink<'_>>,
    ) -> Result<(), mplex::Error> {
        let base = data.as_ptr() as usize;
        self.tmp.clear();
        self.pieces.clear();
        m.begin_receive();
        let pieces = &mut self.pieces;
        let r = if sink.is_some() {
            let mut f = |i: usize, b: &[u8]| {
                let start = b.as_ptr() as usize - base;
                pieces.push((i, start..start + b.len()));
            };
            m.receive_part(data, &mut self.tmp, Some(&mut f))
        } else {
            m.receive_part(data, &mut self.tmp, None)
        };
        self.finals.clear();
        for e in self.tmp.drain(..) {
            let idx = match e {
                mplex::Event::Data(k, own) => match self.data_idx.get(&k) {
                    Some(&i) if matches!(events.get(i), Some(Event::Data(j, _)) if *j == k) => {
                        if let Some(Event::Data(_, v)) = events.get_mut(i) {
                            v.extend_from_slice(&own);
                        }
                        i
                    }
                    _ => {
                        self.data_idx.insert(k, events.len());
                        events.push(Event::Data(k, own));
                        events.len() - 1
                    }
                },
                mplex::Event::StreamOpened(k) => {
                    events.push(Event::StreamOpened(k));
                    events.len() - 1
                }
                mplex::Event::Fin(k) => {
                    self.data_idx.remove(&k);
                    events.push(Event::Fin(k));
                    events.len() - 1
                }
                mplex::Event::Reset(k) => {
                    self.data_idx.remove(&k);
                    events.push(Event::Reset(k));
                    events.len() - 1
                }
            };
            self.finals.push(idx);
        }
        if let Some(sink) = sink {
            for (i, r) in self.pieces.drain(..) {
                if let Some(&idx) = self.finals.get(i) {
                    sink(idx, &data[r]);
                }
            }
        }
        r
    }
}

/// Where the bytes of one `Event::Data` pushed with an empty vector lie in the buffer given
/// to `Connection::receive`: `(event index, byte range)`, in stream order.
pub type DataRange = (usize, Range<usize>);

fn crypto<E: std::fmt::Display>(e: E) -> ConnError {
    ConnError::Crypto(e.to_string())
}

/// See the module docs. `T` is the cipher, `B` the type of caller buffers queued by
/// reference (see [`Connection::send_ref`]).
pub struct Connection<T, B = Vec<u8>> {
    /// Until the handshake ends: the upgrade (the muxer is not running yet).
    upgrading: Option<Box<Upgrading<T>>>,
    /// Upgrade events not taken yet (`take_upgrade_events`).
    upgrade_events: Vec<UpgradeEvent>,
    /// Handshake bytes to send before anything sealed (never encrypted by the cipher).
    raw_out: Vec<u8>,
    cipher: Option<T>,
    pnet: Option<Protector>,
    session: Muxer,
    /// Used when the negotiation picks mplex.
    mplex_cfg: Option<mplex::Config>,
    mplex_glue: MplexGlue,
    /// multistream-select for the muxer, until it agrees.
    negotiation: Option<Negotiation>,
    muxer: Option<String>,
    /// Set when the negotiation agreed; taken once by `take_muxer_selected`.
    muxer_selected: Option<String>,
    rbuf: Vec<u8>,
    frames: Vec<Range<usize>>,
    out: OutQueue<B>,
    failed: bool,
}

impl<T, B> std::fmt::Debug for Connection<T, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("encrypted", &self.cipher.is_some())
            .field("muxer", &self.muxer)
            .field("carried", &self.rbuf.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl<B: AsRef<[u8]>> Connection<Cipher, B> {
    /// A connection from its first byte: `upgrade` runs multistream-select of the security
    /// protocol and the handshake over the bytes `receive` gets (its events come from
    /// [`Self::take_upgrade_events`]); once secured, the cipher is installed and the muxer
    /// starts: the handshake's early muxer if it is one of `muxers`, else multistream-select
    /// of `muxers` inside the channel (`role` Client proposes them in order).
    pub fn upgrading(
        mut upgrade: Upgrade,
        role: Role,
        cfg: Config,
        muxers: Vec<String>,
        mplex_cfg: mplex::Config,
    ) -> Result<Self, ConnError> {
        cfg.validate().map_err(MuxError::InvalidArgument)?;
        if muxers.is_empty() {
            return Err(NegotiationError::NoProtocols.into());
        }
        let mut c = Self::new(None, role, cfg.clone(), None)?;
        c.set_mplex_config(mplex_cfg)?;
        c.out.clear();
        c.muxer = None;
        c.raw_out = upgrade.take_output();
        c.upgrade_events = upgrade.take_events();
        c.upgrading = Some(Box::new(Upgrading {
            upgrade,
            setup: MuxerSetup { role, cfg, muxers },
            adopt: |c| c,
        }));
        Ok(c)
    }
}

impl<T: SecureChannel, B: AsRef<[u8]>> Connection<T, B> {
    /// True until the security handshake of an upgrading connection finished.
    pub fn is_upgrading(&self) -> bool {
        self.upgrading.is_some()
    }

    /// Upgrade events since the last call, in order (taken).
    pub fn take_upgrade_events(&mut self) -> Vec<UpgradeEvent> {
        std::mem::take(&mut self.upgrade_events)
    }

    /// The caller's answer to `UpgradeEvent::Verify` (`Err(reason)`: the signature is bad).
    /// Goes on with the bytes that waited: events as for `receive` (DATA owning its bytes).
    pub fn verified(
        &mut self,
        result: Result<(), String>,
        now: f64,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        let Some(up) = self.upgrading.as_mut() else {
            return Err(UpgradeError::Local("no upgrade is running").into());
        };
        let r = up.upgrade.verified(result, now);
        self.after_upgrade_step(r, now, events)
    }

    /// The remote closed its side: the typed reason when that cut the upgrade short (None
    /// once secured: an end of stream is then the caller's ordinary close).
    pub fn receive_eof(&mut self) -> Option<ConnError> {
        let up = self.upgrading.as_mut()?;
        let e = up.upgrade.receive_eof();
        self.failed = true;
        Some(e.into())
    }

    fn receive_upgrading(
        &mut self,
        data: &[u8],
        now: f64,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        let Some(up) = self.upgrading.as_mut() else {
            return Ok(());
        };
        let r = up.upgrade.receive(data, now);
        self.after_upgrade_step(r, now, events)
    }

    /// Collects the upgrade's output and events; once secured, installs the cipher, starts
    /// the muxer and feeds it the bytes that followed the handshake.
    fn after_upgrade_step(
        &mut self,
        r: Result<(), UpgradeError>,
        now: f64,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        let Some(up) = self.upgrading.as_mut() else {
            return Ok(());
        };
        self.raw_out.extend_from_slice(up.upgrade.output()); // also a TLS alert on failure
        up.upgrade.take_output();
        self.upgrade_events.extend(up.upgrade.take_events());
        if let Err(e) = r {
            self.failed = true;
            return Err(e.into());
        }
        let Some((secured, rest)) = up.upgrade.take_secured() else {
            return Ok(());
        };
        let Some(up) = self.upgrading.take() else {
            return Ok(());
        };
        let Upgrading { setup, adopt, .. } = *up;
        self.cipher = Some(adopt(secured.cipher));
        self.start_muxer(setup, secured.muxer)?;
        if rest.is_empty() {
            return Ok(());
        }
        let mut buf = rest;
        let mut ranges = Vec::new();
        let r = self.receive_plain(&mut buf, now, events, &mut ranges);
        for (idx, range) in ranges {
            if let Some(Event::Data(_, d)) = events.get_mut(idx) {
                d.extend_from_slice(&buf[range]);
            }
        }
        r
    }

    /// The muxer of a connection that was just secured: the early muxer when it is ours,
    /// else the negotiation of `setup.muxers`.
    fn start_muxer(&mut self, setup: MuxerSetup, early: Option<String>) -> Result<(), ConnError> {
        let early = early.filter(|m| setup.muxers.contains(m));
        match early.as_deref() {
            Some(mplex::PROTOCOL_ID) => {
                let cfg = self.mplex_cfg.clone().unwrap_or_default();
                self.session = Muxer::Mplex(mplex::Session::new(cfg)?);
                self.negotiation = None;
            }
            Some(YAMUX_ID) => {
                self.session = Muxer::Yamux(Session::new(setup.role, setup.cfg)?);
                self.negotiation = None;
            }
            _ => {
                self.session = Muxer::Yamux(Session::new(setup.role, setup.cfg)?);
                self.negotiation = Some(if setup.role == Role::Client {
                    Negotiation::dialer(setup.muxers)?
                } else {
                    Negotiation::listener(setup.muxers)?
                });
            }
        }
        if let Some(m) = early.filter(|m| m == mplex::PROTOCOL_ID || m == YAMUX_ID) {
            self.muxer = Some(m.clone());
            self.muxer_selected = Some(m);
        }
        self.queue_pending();
        Ok(())
    }

    /// `cipher = None` means no encryption; `role` is Client for the dialer. `muxers`:
    /// `None` when the handshake already agreed on yamux, else the muxer ids to negotiate
    /// with multistream-select (the dialer proposes them in order).
    pub fn new(
        cipher: Option<T>,
        role: Role,
        cfg: Config,
        muxers: Option<Vec<String>>,
    ) -> Result<Self, ConnError> {
        let negotiation = match muxers {
            None => None,
            Some(ids) if role == Role::Client => Some(Negotiation::dialer(ids)?),
            Some(ids) => Some(Negotiation::listener(ids)?),
        };
        let mut c = Self {
            upgrading: None,
            upgrade_events: Vec::new(),
            raw_out: Vec::new(),
            cipher,
            pnet: None,
            session: Muxer::Yamux(Session::new(role, cfg)?),
            mplex_cfg: None,
            mplex_glue: MplexGlue::default(),
            muxer: None,
            muxer_selected: None,
            negotiation,
            rbuf: Vec::new(),
            frames: Vec::new(),
            out: OutQueue::default(),
            failed: false,
        };
        if c.negotiation.is_none() {
            c.muxer = Some(YAMUX_ID.into());
        }
        c.queue_pending();
        Ok(c)
    }

    /// A connection whose handshake already agreed on mplex (early muxer negotiation).
    pub fn new_mplex(cipher: Option<T>, cfg: mplex::Config) -> Result<Self, ConnError> {
        let mut c = Self::new(cipher, Role::Client, Config::default(), None)?;
        c.session = Muxer::Mplex(mplex::Session::new(cfg)?);
        c.muxer = Some(mplex::PROTOCOL_ID.into());
        Ok(c)
    }

    /// The mplex session's limits, used if the muxer negotiation picks `/mplex/6.7.0`
    /// (validated now; the crate's defaults otherwise). Whether mplex can be picked at all
    /// is the `muxers` list given to `new`.
    pub fn set_mplex_config(&mut self, cfg: mplex::Config) -> Result<(), ConnError> {
        cfg.validate().map_err(mplex::Error::InvalidArgument)?;
        self.mplex_cfg = Some(cfg);
        Ok(())
    }

    /// Private network: every byte in and out passes through `p` from now on (its remote
    /// nonce must have arrived; bytes received before this call were decrypted by the caller).
    pub fn set_protector(&mut self, p: Protector) {
        self.pnet = Some(p);
    }

    pub fn is_protected(&self) -> bool {
        self.pnet.is_some()
    }

    /// True when bytes on the wire are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// The agreed muxer, once there is one.
    pub fn muxer(&self) -> Option<&str> {
        self.muxer.as_deref()
    }

    /// Muxer ids the dialer proposed that we answered `na` to (listener side), for a clear
    /// error when the negotiation then ends without agreement.
    pub fn muxers_refused(&self) -> &[String] {
        self.negotiation.as_ref().map_or(&[], |n| n.refused())
    }

    /// The muxer, once, right after the negotiation agreed on it (for the caller's event).
    pub fn take_muxer_selected(&mut self) -> Option<String> {
        self.muxer_selected.take()
    }

    /// The yamux session, when yamux is the muxer.
    pub fn yamux(&self) -> Option<&Session> {
        match &self.session {
            Muxer::Yamux(s) => Some(s),
            Muxer::Mplex(_) => None,
        }
    }

    /// The mplex session, when mplex is the muxer.
    pub fn mplex(&self) -> Option<&mplex::Session> {
        match &self.session {
            Muxer::Mplex(s) => Some(s),
            Muxer::Yamux(_) => None,
        }
    }

    /// Live streams (either direction).
    pub fn num_streams(&self) -> usize {
        match &self.session {
            Muxer::Yamux(s) => s.num_streams(),
            Muxer::Mplex(s) => s.num_streams(),
        }
    }

    /// True once the transport failed or the session is closed.
    pub fn is_closed(&self) -> bool {
        self.failed
            || match &self.session {
                Muxer::Yamux(s) => s.is_closed(),
                Muxer::Mplex(s) => s.is_closed(),
            }
    }

    /// Bytes of a partial wire frame carried to the next read.
    pub fn carried(&self) -> usize {
        self.rbuf.len()
    }

    fn fail_crypto<E: std::fmt::Display>(&mut self, e: E) -> ConnError {
        self.failed = true;
        self.rbuf = Vec::new();
        // Tell the peer why (our send cipher still works), then the caller closes.
        if let Muxer::Yamux(s) = &mut self.session {
            let _ = s.go_away(GO_AWAY_PROTOCOL_ERROR);
        }
        crypto(e)
    }

    /// Takes everything in `buf` (one socket read): unmasks, decrypts complete frames in
    /// place and runs the negotiation and the session over the plaintext, appending events.
    /// DATA is not copied: the bytes of an `Event::Data` are its own vector (from a frame
    /// completed across reads: always first) followed by its `ranges` (ranges of `buf`, in
    /// order). A partial frame at the end is kept inside for the next call.
    pub fn receive(
        &mut self,
        buf: &mut [u8],
        now: f64,
        events: &mut Vec<Event>,
        ranges: &mut Vec<DataRange>,
    ) -> Result<(), ConnError> {
        if self.failed {
            return Ok(());
        }
        let mut skip = 0;
        if let Some(p) = self.pnet.as_mut() {
            skip = p.decrypt(buf);
        }
        let buf = &mut buf[skip..];
        if self.upgrading.is_some() {
            return self.receive_upgrading(buf, now, events);
        }
        self.receive_plain(buf, now, events, ranges)
    }

    /// `receive` after the private-network layer.
    fn receive_plain(
        &mut self,
        buf: &mut [u8],
        now: f64,
        events: &mut Vec<Event>,
        ranges: &mut Vec<DataRange>,
    ) -> Result<(), ConnError> {
        let base = buf.as_ptr() as usize;
        let mut sink = |idx: usize, bytes: &[u8]| {
            let start = bytes.as_ptr() as usize - base;
            ranges.push((idx, start..start + bytes.len()));
        };
        match &mut self.session {
            Muxer::Yamux(s) => s.begin_receive(now),
            Muxer::Mplex(_) => self.mplex_glue.data_idx.clear(),
        }
        if self.cipher.is_none() {
            return self.feed_plain(buf, events, Some(&mut sink));
        }
        let mut start = 0;
        if !self.rbuf.is_empty() {
            // Complete the carried frame: at most one frame's bytes are copied.
            let had = self.rbuf.len();
            let take = buf.len().min(MAX_WIRE_FRAME);
            let mut rbuf = std::mem::take(&mut self.rbuf);
            rbuf.extend_from_slice(&buf[..take]);
            let mut frames = std::mem::take(&mut self.frames);
            frames.clear();
            let n = match self
                .cipher
                .as_mut()
                .map(|c| c.decrypt_in_place(&mut rbuf, &mut frames))
            {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(self.fail_crypto(e)),
                None => 0,
            };
            if n == 0 {
                // Still partial (the whole read was shorter than the rest of the frame).
                self.rbuf = rbuf;
                self.frames = frames;
                return Ok(());
            }
            let mut result = Ok(());
            for r in frames.drain(..) {
                result = self.feed_plain(&rbuf[r], events, None);
                if result.is_err() {
                    break;
                }
            }
            self.frames = frames;
            rbuf.clear();
            if rbuf.capacity() <= MAX_IDLE_RBUF {
                self.rbuf = rbuf;
            }
            result?;
            start = n - had;
        }
        let rest = &mut buf[start..];
        let mut frames = std::mem::take(&mut self.frames);
        frames.clear();
        let n = match self
            .cipher
            .as_mut()
            .map(|c| c.decrypt_in_place(rest, &mut frames))
        {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(self.fail_crypto(e)),
            None => 0,
        };
        let mut result = Ok(());
        for r in frames.drain(..) {
            result = self.feed_plain(&rest[r], events, Some(&mut sink));
            if result.is_err() {
                break;
            }
        }
        self.frames = frames;
        self.rbuf.extend_from_slice(&rest[n..]);
        result
    }

    /// Convenience for callers without a buffer of their own: copies `data`, then
    /// `receive`, with every DATA event owning its bytes.
    pub fn receive_copy(
        &mut self,
        data: &[u8],
        now: f64,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        let mut buf = data.to_vec();
        let mut ranges = Vec::new();
        let r = self.receive(&mut buf, now, events, &mut ranges);
        for (idx, range) in ranges {
            if let Some(Event::Data(_, d)) = events.get_mut(idx) {
                d.extend_from_slice(&buf[range]);
            }
        }
        r
    }

    /// Plaintext to the muxer negotiation while it runs, the rest to the session.
    fn feed_plain(
        &mut self,
        mut data: &[u8],
        events: &mut Vec<Event>,
        sink: Option<DataSink<'_>>,
    ) -> Result<(), ConnError> {
        if let Some(neg) = self.negotiation.as_mut() {
            let used = neg.receive(data)?;
            self.out.push_own(neg.output());
            neg.clear_output();
            let Some(agreed) = neg.outcome().map(str::to_string) else {
                return Ok(());
            };
            self.negotiation = None;
            if agreed == mplex::PROTOCOL_ID {
                let cfg = self.mplex_cfg.clone().unwrap_or_default();
                self.session = Muxer::Mplex(mplex::Session::new(cfg)?);
                self.mplex_glue.data_idx.clear();
            }
            self.muxer = Some(agreed.clone());
            self.muxer_selected = Some(agreed);
            data = &data[used..];
            self.queue_pending(); // session output held back during the negotiation
        }
        if data.is_empty() {
            return Ok(());
        }
        match &mut self.session {
            Muxer::Yamux(s) => Ok(s.receive_part(data, events, sink)?),
            Muxer::Mplex(m) => Ok(self.mplex_glue.receive(m, data, events, sink)?),
        }
    }

    /// Moves what the negotiation and the session queued into the output queue.
    fn queue_pending(&mut self) {
        if self.upgrading.is_some() {
            return; // no muxer before the handshake ends
        }
        if let Some(neg) = self.negotiation.as_mut() {
            self.out.push_own(neg.output());
            neg.clear_output();
            return; // yamux waits for the negotiation
        }
        match &mut self.session {
            Muxer::Yamux(s) => {
                let pending = s.pending_output();
                if !pending.is_empty() {
                    self.out.push_own(pending);
                    s.clear_output();
                }
            }
            Muxer::Mplex(s) => {
                let pending = s.pending_output();
                if !pending.is_empty() {
                    self.out.push_own(pending);
                    s.clear_output();
                }
            }
        }
    }

    fn check_muxed(&self) -> Result<(), ConnError> {
        if self.upgrading.is_some() {
            return Err(ConnError::Mux(MuxError::InvalidArgument(
                "the connection is not secured yet",
            )));
        }
        if self.negotiation.is_some() {
            return Err(ConnError::Mux(MuxError::InvalidArgument(
                "the muxer is still being negotiated",
            )));
        }
        Ok(())
    }

    pub fn open_stream(&mut self) -> Result<u32, ConnError> {
        self.check_muxed()?;
        match &mut self.session {
            Muxer::Yamux(s) => Ok(s.open_stream()?),
            Muxer::Mplex(s) => Ok(s.open_stream()?),
        }
    }

    /// Queues as much of `data` as the send window allows (copied); returns bytes taken.
    pub fn send(&mut self, id: u32, data: &[u8], fin: bool) -> Result<usize, ConnError> {
        self.send_ref(id, data, fin, |_| None)
    }

    /// As `send`, but bodies of [`REF_MIN`] bytes and more are queued by reference:
    /// `share(range)` returns the caller's buffer for `data[range]` (or None to copy).
    pub fn send_ref(
        &mut self,
        id: u32,
        data: &[u8],
        fin: bool,
        mut share: impl FnMut(Range<usize>) -> Option<B>,
    ) -> Result<usize, ConnError> {
        self.check_muxed()?;
        self.queue_pending();
        let base = data.as_ptr() as usize;
        let q = &mut self.out;
        let mut emit = |hdr: &[u8], body: &[u8]| {
            q.push_own(hdr);
            if body.len() >= REF_MIN {
                let start = body.as_ptr() as usize - base;
                if let Some(b) = share(start..start + body.len()) {
                    q.push_ext(b, 0..body.len());
                    return;
                }
            }
            q.push_own(body);
        };
        match &mut self.session {
            Muxer::Yamux(s) => Ok(s.send_with(id, data, fin, &mut emit)?),
            Muxer::Mplex(s) => Ok(s.send_with(id, data, fin, &mut emit)?),
        }
    }

    /// Bytes `send` would take now (mplex: unbounded, it has no flow control).
    pub fn send_window(&mut self, id: u32) -> Result<u32, ConnError> {
        match &mut self.session {
            Muxer::Yamux(s) => Ok(s.send_window(id)?),
            Muxer::Mplex(s) => Ok(s.send_window(id)?),
        }
    }

    pub fn close_stream(&mut self, id: u32) -> Result<(), ConnError> {
        match &mut self.session {
            Muxer::Yamux(s) => Ok(s.close_stream(id)?),
            Muxer::Mplex(s) => Ok(s.close_stream(id)?),
        }
    }

    pub fn reset_stream(&mut self, id: u32) -> Result<(), ConnError> {
        match &mut self.session {
            Muxer::Yamux(s) => Ok(s.reset_stream(id)?),
            Muxer::Mplex(s) => Ok(s.reset_stream(id)?),
        }
    }

    /// The application consumed `n` bytes of a stream: grants window (auto-tuned) with
    /// yamux; with mplex they stop counting against the stream's buffer cap.
    /// Returns the window growth yamux held back for want of memory (see `Session::ack`).
    pub fn ack(&mut self, id: u32, n: u32, now: Option<f64>) -> Result<u32, ConnError> {
        match &mut self.session {
            Muxer::Yamux(s) => Ok(s.ack(id, n, now)?),
            Muxer::Mplex(s) => {
                s.ack(id, n as usize)?;
                Ok(0)
            }
        }
    }

    /// Grants the window growth the last ack of `id` held back, within the raised cap.
    pub fn grow_window(&mut self, id: u32) -> Result<u32, ConnError> {
        match &mut self.session {
            Muxer::Yamux(s) => Ok(s.grow_window(id)?),
            Muxer::Mplex(_) => Ok(0),
        }
    }

    /// A muxer ping (yamux); mplex has none and refuses.
    pub fn ping(&mut self, now: f64) -> Result<(), ConnError> {
        if self.upgrading.is_some() {
            return Err(ConnError::Mux(MuxError::InvalidArgument(
                "the connection is not secured yet",
            )));
        }
        match &mut self.session {
            Muxer::Yamux(s) => Ok(s.ping(now)?),
            Muxer::Mplex(_) => Err(mplex::Error::Unsupported("ping").into()),
        }
    }

    /// GoAway (yamux); mplex only stops taking new streams (it has no such frame).
    pub fn go_away(&mut self, code: u32) -> Result<(), ConnError> {
        if self.upgrading.is_some() {
            return Ok(()); // nothing to tell before the muxer runs
        }
        match &mut self.session {
            Muxer::Yamux(s) => Ok(s.go_away(code)?),
            Muxer::Mplex(s) => Ok(s.go_away()?),
        }
    }

    pub fn next_timer(&self) -> Option<f64> {
        if let Some(up) = &self.upgrading {
            return up.upgrade.next_timer();
        }
        match &self.session {
            Muxer::Yamux(s) => s.next_timer(),
            Muxer::Mplex(_) => None,
        }
    }

    pub fn handle_timer(&mut self, now: f64) -> Result<(), ConnError> {
        if let Some(up) = self.upgrading.as_mut() {
            let r = up.upgrade.handle_timer(now);
            return self.after_upgrade_step(r, now, &mut Vec::new());
        }
        match &mut self.session {
            Muxer::Yamux(s) => Ok(s.handle_timer(now)?),
            Muxer::Mplex(_) => Ok(()),
        }
    }

    /// Caps yamux windows' growth beyond their initial size (see
    /// `Session::set_max_window_growth`); mplex has no windows.
    pub fn set_max_window_growth(&mut self, bytes: u64) {
        if let Muxer::Yamux(s) = &mut self.session {
            s.set_max_window_growth(bytes);
        }
    }

    /// Wire bytes for `plaintext_len` bytes of plaintext sealed in one go.
    fn wire_len(&self, plaintext_len: usize) -> usize {
        match &self.cipher {
            Some(c) if plaintext_len > 0 => c.encrypted_len(plaintext_len),
            _ => plaintext_len,
        }
    }

    /// Exact bytes the next `flush_into` writes (queues what is pending first).
    pub fn output_len(&mut self) -> usize {
        self.queue_pending();
        self.raw_out.len() + self.wire_len(self.out.len())
    }

    /// Wire bytes pending now, without queueing anything.
    pub fn pending_output(&self) -> usize {
        let session = match &self.session {
            _ if self.negotiation.is_some() => 0,
            Muxer::Yamux(s) => s.pending_output().len(),
            Muxer::Mplex(s) => s.pending_output().len(),
        };
        self.raw_out.len() + self.wire_len(self.out.len() + session)
    }

    /// Seals everything queued into exactly `output_len()` bytes of `out` (one pass, no
    /// staging copy) and masks it for the private network; returns bytes written. A failure
    /// (nonce exhaustion) kills the connection.
    pub fn flush_into(&mut self, out: &mut [u8]) -> Result<usize, ConnError> {
        let need = self.output_len();
        if out.len() < need {
            return Err(ConnError::Mux(MuxError::InvalidArgument(
                "output slice too small",
            )));
        }
        let raw = self.raw_out.len();
        out[..raw].copy_from_slice(&self.raw_out);
        self.raw_out.clear();
        let need = need - raw;
        let segs = self.out.slices();
        let sealed = &mut out[raw..];
        let written = match self.cipher.as_mut() {
            None => {
                let mut pos = 0;
                for s in &segs {
                    sealed[pos..pos + s.len()].copy_from_slice(s);
                    pos += s.len();
                }
                pos
            }
            Some(_) if need == 0 => 0,
            Some(c) => match c.encrypt_gather_to_slice(&segs, &mut sealed[..need]) {
                Ok(n) => n,
                Err(e) => {
                    drop(segs);
                    self.failed = true;
                    return Err(crypto(e));
                }
            },
        };
        drop(segs);
        self.out.clear();
        if let Some(p) = self.pnet.as_mut() {
            p.encrypt(&mut out[..raw + written]);
        }
        Ok(raw + written)
    }

    /// The last output of the connection: everything queued (sealed, masked), then the
    /// cipher's closing message (TLS close_notify), so the peer sees an orderly end of the
    /// secure channel before the socket closes. Nothing may be sent afterwards.
    pub fn take_closing_output(&mut self) -> Result<Vec<u8>, ConnError> {
        let mut out = self.take_output()?;
        if let Some(c) = self.cipher.as_mut() {
            let start = out.len();
            c.close_notify(&mut out).map_err(crypto)?;
            if let Some(p) = self.pnet.as_mut() {
                p.encrypt(&mut out[start..]);
            }
        }
        Ok(out)
    }

    /// True once the peer ended its side of the secure channel (TLS close_notify): the
    /// connection is over in an orderly way (an end of stream, not an error).
    pub fn peer_closed(&self) -> bool {
        self.cipher.as_ref().is_some_and(SecureChannel::peer_closed)
    }

    /// Convenience: all pending output as a new vector.
    pub fn take_output(&mut self) -> Result<Vec<u8>, ConnError> {
        let mut out = vec![0; self.output_len()];
        let n = self.flush_into(&mut out)?;
        out.truncate(n);
        Ok(out)
    }
}
