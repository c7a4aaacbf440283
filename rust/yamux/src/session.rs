//! The sans-IO yamux session: bytes in, events out; frames appended to an output buffer.

use std::collections::HashMap;

use crate::closed::{Ended, RecentlyClosed};
use crate::config::Config;
use crate::error::{Error, ProtocolError};
use crate::event::Event;
use crate::frame::{
    FrameType, Header, DEFAULT_WINDOW, FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN,
    GO_AWAY_PROTOCOL_ERROR, HEADER_LEN,
};
use crate::stream::Stream;

/// Receives DATA bytes instead of `Event::Data`: `(index of the event in the events vector,
/// bytes)`, see `Session::receive_part`.
pub type DataSink<'a> = &'a mut dyn FnMut(usize, &[u8]);

/// Which end of the connection we are: the dialer (client) opens odd stream IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// A DATA body being read: where its bytes go and which closing flags apply after it.
#[derive(Debug)]
struct Body {
    stream_id: u32,
    remaining: u32,
    deliver: bool,
    fin: bool,
    rst: bool,
}

/// One yamux session. Feed it with `receive`, drive its timer with `next_timer` /
/// `handle_timer`, and ship `take_output` / `write_output` to the peer.
#[derive(Debug)]
pub struct Session {
    cfg: Config,
    role: Role,
    next_id: u32,
    streams: HashMap<u32, Stream>,
    closed: RecentlyClosed,
    highest_remote: u32,
    out: Vec<u8>,
    hdr: [u8; HEADER_LEN],
    hdr_len: usize,
    body: Option<Body>,
    data_idx: HashMap<u32, usize>,
    window_idx: HashMap<u32, usize>,
    unacked: usize,
    pending_pongs: usize,
    pending_refusals: usize,
    ping: Option<(u32, f64)>,
    ping_counter: u32,
    rtt: Option<f64>,
    keepalive_due: Option<f64>,
    now: f64,
    goaway_sent: Option<u32>,
    goaway_received: Option<u32>,
    failed: bool,
    total_window: u64,
    /// Auto-tuning wanted to grow a window past `max_window_growth` since the cap was set.
    window_capped: bool,
    /// Growth auto-tuning wanted and did not get since the cap was set (bytes).
    window_wanted: u64,
}

impl Session {
    /// A session for `role`; the configuration must pass `Config::validate`.
    pub fn new(role: Role, cfg: Config) -> Result<Self, Error> {
        cfg.validate().map_err(Error::InvalidArgument)?;
        Ok(Self {
            role,
            next_id: match role {
                Role::Client => 1,
                Role::Server => 2,
            },
            streams: HashMap::new(),
            closed: RecentlyClosed::new(cfg.recently_closed),
            highest_remote: 0,
            out: Vec::new(),
            hdr: [0; HEADER_LEN],
            hdr_len: 0,
            body: None,
            data_idx: HashMap::new(),
            window_idx: HashMap::new(),
            unacked: 0,
            pending_pongs: 0,
            pending_refusals: 0,
            ping: None,
            ping_counter: 0,
            rtt: None,
            // Fire at once: the first ping measures the RTT that auto-tuning needs.
            keepalive_due: cfg.keepalive_interval.map(|_| 0.0),
            now: 0.0,
            goaway_sent: None,
            goaway_received: None,
            failed: false,
            total_window: 0,
            window_capped: false,
            window_wanted: 0,
            cfg,
        })
    }

    // ---- output -------------------------------------------------------------------------

    /// Frames queued for the peer (plaintext).
    pub fn pending_output(&self) -> &[u8] {
        &self.out
    }

    /// Takes every queued frame.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.drained();
        std::mem::take(&mut self.out)
    }

    /// Appends every queued frame to `dst` and keeps our buffer's capacity.
    pub fn write_output(&mut self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&self.out);
        self.clear_output();
    }

    /// Forgets the queued frames (after the caller copied `pending_output`).
    pub fn clear_output(&mut self) {
        self.drained();
        self.out.clear();
    }

    fn drained(&mut self) {
        self.pending_pongs = 0;
        self.pending_refusals = 0;
    }

    fn frame(&mut self, ty: FrameType, flags: u16, id: u32, length: u32) {
        Header::new(ty, flags, id, length).encode(&mut self.out);
    }

    // ---- introspection ------------------------------------------------------------------

    /// Latest measured round-trip time in seconds.
    pub fn rtt(&self) -> Option<f64> {
        self.rtt
    }

    /// Live streams (either direction).
    pub fn num_streams(&self) -> usize {
        self.streams.len()
    }

    /// Outbound streams still waiting for the peer's ACK.
    pub fn num_unacked(&self) -> usize {
        self.unacked
    }

    /// True once the session failed, or GoAway was exchanged and no stream is left.
    pub fn is_closed(&self) -> bool {
        self.failed
            || ((self.goaway_sent.is_some() || self.goaway_received.is_some())
                && self.streams.is_empty())
    }

    /// The GoAway code the peer sent, if any.
    pub fn goaway_received(&self) -> Option<u32> {
        self.goaway_received
    }

    /// Our current receive window of a live stream (grows by auto-tuning).
    pub fn receive_window(&self, id: u32) -> Option<u32> {
        self.streams.get(&id).map(|s| s.window)
    }

    /// Caps the sum of all windows' growth beyond `initial_window` (the memory the owner
    /// reserved for it): windows already granted are kept, auto-tuning grows none past it.
    /// Initial windows are not counted: an idle stream costs only what it buffers.
    pub fn set_max_window_growth(&mut self, bytes: u64) {
        self.cfg.max_window_growth = bytes;
        self.window_capped = false;
        self.window_wanted = 0;
    }

    /// True once auto-tuning was held back by `max_window_growth` since it was last set:
    /// the owner may reserve more memory and raise the cap (checked after an ack, never per
    /// frame).
    pub fn window_capped(&self) -> bool {
        self.window_capped
    }

    /// Growth auto-tuning was refused since the cap was last set (what to reserve next).
    pub fn window_wanted(&self) -> u64 {
        self.window_wanted
    }

    /// Sum of all live streams' window growth beyond `initial_window`.
    pub fn window_growth(&self) -> u64 {
        let initial = u64::from(self.cfg.initial_window) * self.streams.len() as u64;
        self.total_window.saturating_sub(initial)
    }

    /// Sum of all live streams' receive windows (what the peer may have in flight to us).
    pub fn total_window(&self) -> u64 {
        self.total_window
    }

    /// Credit the peer still has on a live stream.
    pub fn receive_credit(&self, id: u32) -> Option<u32> {
        self.streams.get(&id).map(|s| s.credit)
    }

    // ---- local API ----------------------------------------------------------------------

    fn check_alive(&self) -> Result<(), Error> {
        if self.failed {
            Err(Error::SessionClosed)
        } else {
            Ok(())
        }
    }

    /// The error for a stream that is not live.
    fn gone(&self, id: u32) -> Error {
        match self.closed.get(id) {
            Some(Ended::Reset) => Error::StreamReset(id),
            Some(Ended::Closed) => Error::StreamClosed(id),
            None if self.was_ours_or_seen(id) => Error::StreamClosed(id),
            None => Error::UnknownStream(id),
        }
    }

    fn is_ours(&self, id: u32) -> bool {
        (id % 2 == 1) == (self.role == Role::Client)
    }

    fn was_ours_or_seen(&self, id: u32) -> bool {
        id != 0
            && if self.is_ours(id) {
                id < self.next_id
            } else {
                id <= self.highest_remote
            }
    }

    /// Opens an outbound stream (sends SYN at once) and returns its ID.
    pub fn open_stream(&mut self) -> Result<u32, Error> {
        self.check_alive()?;
        if let Some(code) = self.goaway_sent.or(self.goaway_received) {
            return Err(Error::GoAway(code));
        }
        if self.streams.len() >= self.cfg.max_streams {
            return Err(Error::StreamLimit(self.cfg.max_streams));
        }
        if self.unacked >= self.cfg.ack_backlog {
            return Err(Error::AckBacklogFull(self.unacked));
        }
        let id = self.next_id;
        let Some(next) = id.checked_add(2) else {
            return Err(Error::StreamLimit(self.cfg.max_streams));
        };
        self.next_id = next;
        let window = self.cfg.initial_window;
        self.streams
            .insert(id, Stream::new(true, DEFAULT_WINDOW, window, self.now));
        self.total_window += u64::from(window);
        self.unacked += 1;
        self.frame(
            FrameType::WindowUpdate,
            FLAG_SYN,
            id,
            window - DEFAULT_WINDOW,
        );
        Ok(id)
    }

    fn live(&mut self, id: u32) -> Result<&mut Stream, Error> {
        if self.failed {
            return Err(Error::SessionClosed);
        }
        if self.streams.contains_key(&id) {
            // Checked just above; `get_mut` cannot fail here.
            return self.streams.get_mut(&id).ok_or(Error::UnknownStream(id));
        }
        Err(self.gone(id))
    }

    /// Queues up to the send window of `data`; returns how many bytes were taken. `fin`
    /// half-closes the stream only when every byte was taken.
    pub fn send(&mut self, id: u32, data: &[u8], fin: bool) -> Result<usize, Error> {
        let mut out = std::mem::take(&mut self.out);
        out.reserve(data.len().min(self.send_window(id).unwrap_or(0) as usize) + HEADER_LEN);
        let r = self.send_with(id, data, fin, &mut |hdr, body| {
            out.extend_from_slice(hdr);
            out.extend_from_slice(body);
        });
        self.out = out;
        r
    }

    /// Like `send`, but hands every frame to `emit` as `(header, body)` instead of queueing
    /// it (the body is a sub-slice of `data`), so a caller can encrypt or reference the bytes
    /// without an intermediate copy. The caller must put these frames on the wire after
    /// everything `pending_output` held before this call and before anything queued later.
    pub fn send_with(
        &mut self,
        id: u32,
        data: &[u8],
        fin: bool,
        emit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize, Error> {
        let max_frame = self.cfg.max_frame_size;
        let s = self.live(id)?;
        if s.write_closed {
            return Err(Error::StreamClosed(id));
        }
        let n = data.len().min(s.send_window as usize);
        let all = n == data.len();
        s.send_window -= n as u32;
        let fin = fin && all;
        if fin {
            s.write_closed = true;
        }
        let remove = fin && s.read_closed;
        if n == 0 {
            if fin {
                let h = Header::new(FrameType::WindowUpdate, FLAG_FIN, id, 0);
                emit(&h.to_bytes(), &[]);
            }
        } else {
            let mut chunks = data[..n].chunks(max_frame).peekable();
            while let Some(chunk) = chunks.next() {
                let flags = if fin && chunks.peek().is_none() {
                    FLAG_FIN
                } else {
                    0
                };
                let h = Header::new(FrameType::Data, flags, id, chunk.len() as u32);
                emit(&h.to_bytes(), chunk);
            }
        }
        if remove {
            self.remove(id, Ended::Closed);
        }
        Ok(n)
    }

    /// Bytes `send` would take now on a live stream.
    pub fn send_window(&mut self, id: u32) -> Result<u32, Error> {
        Ok(self.live(id)?.send_window)
    }

    /// Half-closes our side (FIN). Idempotent.
    pub fn close_stream(&mut self, id: u32) -> Result<(), Error> {
        let s = self.live(id)?;
        if s.write_closed {
            return Ok(());
        }
        s.write_closed = true;
        let remove = s.read_closed;
        self.frame(FrameType::WindowUpdate, FLAG_FIN, id, 0);
        if remove {
            self.remove(id, Ended::Closed);
        }
        Ok(())
    }

    /// Resets a stream (RST); a no-op when it is already gone.
    pub fn reset_stream(&mut self, id: u32) -> Result<(), Error> {
        self.check_alive()?;
        if self.streams.contains_key(&id) {
            self.frame(FrameType::WindowUpdate, FLAG_RST, id, 0);
            self.remove(id, Ended::Reset);
            return Ok(());
        }
        match self.gone(id) {
            Error::UnknownStream(id) => Err(Error::UnknownStream(id)),
            _ => Ok(()),
        }
    }

    /// The application consumed `n` bytes of a stream: return credit to the peer once half
    /// the window is consumed, doubling the window (up to `max_window`) when that took less
    /// than two round trips (the RTT counts as at least `min_autotune_rtt`, also before any
    /// ping answered). Returns the growth `max_window_growth` held back on this stream (0
    /// when none): the owner reserves memory for it, raises the cap and calls `grow_window`.
    /// A no-op for streams that are gone.
    pub fn ack(&mut self, id: u32, n: u32, now: Option<f64>) -> Result<u32, Error> {
        self.check_alive()?;
        let now = now.unwrap_or(self.now);
        let rtt = self.rtt.unwrap_or(0.0).max(self.cfg.min_autotune_rtt);
        let max_window = self.cfg.max_window;
        let room = self
            .cfg
            .max_window_growth
            .saturating_sub(self.window_growth());
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(0);
        };
        if n > s.buffered {
            return Err(Error::InvalidArgument(
                "ack of more bytes than were delivered",
            ));
        }
        s.buffered -= n;
        if s.read_closed {
            return Ok(0);
        }
        let mut delta = s.unreturned();
        if delta < s.window / 2 || delta == 0 {
            return Ok(0);
        }
        let mut grown = 0u32;
        s.wanted = 0;
        if rtt > 0.0 && now - s.epoch < 2.0 * rtt && s.window < max_window {
            let target = s.window.saturating_mul(2).min(max_window);
            let allowed = u32::try_from(room).unwrap_or(u32::MAX);
            grown = (target - s.window).min(allowed);
            if grown < target - s.window {
                s.wanted = target - s.window - grown;
                self.window_capped = true;
                self.window_wanted += u64::from(s.wanted);
            }
            s.window += grown;
            delta += grown;
        }
        s.epoch = now;
        s.credit += delta;
        let wanted = s.wanted;
        self.total_window += u64::from(grown);
        self.frame(FrameType::WindowUpdate, 0, id, delta);
        Ok(wanted)
    }

    /// Grants the growth the last `ack` of `id` held back, as far as `max_window_growth`
    /// now allows (after the owner reserved memory and raised it): one window update, the
    /// same auto-tuning epoch. Returns the bytes granted (0 for a stream that is gone).
    pub fn grow_window(&mut self, id: u32) -> Result<u32, Error> {
        self.check_alive()?;
        let room = self
            .cfg
            .max_window_growth
            .saturating_sub(self.window_growth());
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(0);
        };
        if s.read_closed {
            s.wanted = 0;
            return Ok(0);
        }
        let grown = s.wanted.min(u32::try_from(room).unwrap_or(u32::MAX));
        if grown == 0 {
            return Ok(0);
        }
        s.wanted -= grown;
        s.window += grown;
        s.credit += grown;
        self.total_window += u64::from(grown);
        self.frame(FrameType::WindowUpdate, 0, id, grown);
        Ok(grown)
    }

    /// Sends a ping to measure the RTT (reported as `Event::PingRtt`).
    pub fn ping(&mut self, now: f64) -> Result<(), Error> {
        self.check_alive()?;
        self.now = now;
        self.ping_counter = self.ping_counter.wrapping_add(1);
        self.ping = Some((self.ping_counter, now));
        self.frame(FrameType::Ping, FLAG_SYN, 0, self.ping_counter);
        Ok(())
    }

    /// Sends GoAway once: no new streams either way; open ones go on.
    pub fn go_away(&mut self, code: u32) -> Result<(), Error> {
        self.check_alive()?;
        if self.goaway_sent.is_none() {
            self.goaway_sent = Some(code);
            self.frame(FrameType::GoAway, 0, 0, code);
        }
        Ok(())
    }

    /// When `handle_timer` wants to run next (monotonic seconds), if ever.
    pub fn next_timer(&self) -> Option<f64> {
        if self.failed {
            None
        } else {
            self.keepalive_due
        }
    }

    /// Sends the keep-alive ping when due; fails when the previous one got no answer.
    pub fn handle_timer(&mut self, now: f64) -> Result<(), Error> {
        self.check_alive()?;
        self.now = now;
        let (Some(due), Some(interval)) = (self.keepalive_due, self.cfg.keepalive_interval) else {
            return Ok(());
        };
        if now < due {
            return Ok(());
        }
        if let Some((_, sent)) = self.ping {
            if now - sent >= interval {
                self.failed = true;
                return Err(Error::KeepAliveTimeout);
            }
        }
        if self.ping.is_none() {
            self.ping(now)?;
        }
        self.keepalive_due = Some(now + interval);
        Ok(())
    }

    // ---- input --------------------------------------------------------------------------

    /// Parses every complete frame of `input` (keeping a partial header for the next call;
    /// DATA bodies are delivered as they arrive) and appends events. A peer violation queues
    /// GoAway(protocol error), kills the session and returns the error; after that, input is
    /// ignored.
    pub fn receive(
        &mut self,
        input: &[u8],
        now: f64,
        events: &mut Vec<Event>,
    ) -> Result<(), Error> {
        self.begin_receive(now);
        self.receive_part(input, events, None)
    }

    /// Starts one logical receive call made of several `receive_part` pieces (DATA and
    /// WINDOW stay coalesced per stream across the pieces).
    pub fn begin_receive(&mut self, now: f64) {
        self.now = now;
        self.data_idx.clear();
        self.window_idx.clear();
    }

    /// Parses `input` like `receive` (after `begin_receive`). With `sink`, DATA bytes are not
    /// copied: each `Event::Data` is pushed with an empty vector and `sink(event_index,
    /// bytes)` gets its bytes, in order, as sub-slices of `input`.
    pub fn receive_part(
        &mut self,
        input: &[u8],
        events: &mut Vec<Event>,
        sink: Option<DataSink<'_>>,
    ) -> Result<(), Error> {
        if self.failed {
            return Ok(());
        }
        match self.receive_inner(input, events, sink) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.fail();
                Err(Error::Protocol(e))
            }
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.body = None;
        self.hdr_len = 0;
        if self.goaway_sent.is_none() {
            self.goaway_sent = Some(GO_AWAY_PROTOCOL_ERROR);
            self.frame(FrameType::GoAway, 0, 0, GO_AWAY_PROTOCOL_ERROR);
        }
    }

    fn receive_inner(
        &mut self,
        mut input: &[u8],
        events: &mut Vec<Event>,
        mut sink: Option<DataSink<'_>>,
    ) -> Result<(), ProtocolError> {
        while !input.is_empty() {
            if let Some(body) = self.body.as_mut() {
                let take = (body.remaining as usize).min(input.len());
                body.remaining -= take as u32;
                let (id, deliver, done) = (body.stream_id, body.deliver, body.remaining == 0);
                if deliver {
                    let sink: Option<DataSink<'_>> = match sink {
                        Some(ref mut f) => Some(&mut **f),
                        None => None,
                    };
                    self.deliver(id, &input[..take], events, sink);
                }
                input = &input[take..];
                if done {
                    if let Some(b) = self.body.take() {
                        self.end_of_frame(b.stream_id, b.fin, b.rst, events);
                    }
                }
                continue;
            }
            let header = if self.hdr_len == 0 && input.len() >= HEADER_LEN {
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&input[..HEADER_LEN]);
                input = &input[HEADER_LEN..];
                h
            } else {
                let take = (HEADER_LEN - self.hdr_len).min(input.len());
                self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&input[..take]);
                self.hdr_len += take;
                input = &input[take..];
                if self.hdr_len < HEADER_LEN {
                    break;
                }
                self.hdr_len = 0;
                self.hdr
            };
            let h = Header::decode(&header)?;
            self.on_header(h, events)?;
        }
        Ok(())
    }

    fn on_header(&mut self, h: Header, events: &mut Vec<Event>) -> Result<(), ProtocolError> {
        match h.ty {
            FrameType::Data | FrameType::WindowUpdate => self.on_stream_frame(h, events),
            FrameType::Ping => {
                if h.flags & FLAG_SYN != 0 {
                    if self.pending_pongs < self.cfg.max_pending_pongs {
                        self.pending_pongs += 1;
                        self.frame(FrameType::Ping, FLAG_ACK, 0, h.length);
                    }
                } else if h.flags & FLAG_ACK != 0 {
                    if let Some((opaque, sent)) = self.ping {
                        if opaque == h.length {
                            let rtt = (self.now - sent).max(0.0);
                            self.rtt = Some(rtt);
                            self.ping = None;
                            events.push(Event::PingRtt(rtt));
                        }
                    }
                }
                Ok(())
            }
            FrameType::GoAway => {
                self.goaway_received = Some(h.length);
                events.push(Event::GoAway(h.length));
                Ok(())
            }
        }
    }

    fn on_stream_frame(&mut self, h: Header, events: &mut Vec<Event>) -> Result<(), ProtocolError> {
        let id = h.stream_id;
        let is_data = h.ty == FrameType::Data;
        let body_len = if is_data { h.length } else { 0 };
        let fin = h.flags & FLAG_FIN != 0;
        let rst = h.flags & FLAG_RST != 0;
        let mut syn_delta_applied = false;
        if h.flags & FLAG_SYN != 0 {
            if id == 0 {
                return Err(ProtocolError::SynStreamZero);
            }
            if self.is_ours(id) {
                return Err(ProtocolError::SynWrongParity(id));
            }
            if self.streams.contains_key(&id) {
                return Err(ProtocolError::SynLiveStream(id));
            }
            if is_data && body_len > DEFAULT_WINDOW {
                return Err(ProtocolError::SynBodyTooLarge(id, body_len));
            }
            self.highest_remote = self.highest_remote.max(id);
            if self.goaway_sent.is_some() || self.streams.len() >= self.cfg.max_streams {
                if self.pending_refusals < self.cfg.max_pending_refusals {
                    self.pending_refusals += 1;
                    self.frame(FrameType::WindowUpdate, FLAG_RST, id, 0);
                }
                self.closed.insert(id, Ended::Reset);
                self.skip_body(id, body_len);
                return Ok(());
            }
            let send_window = if is_data {
                DEFAULT_WINDOW
            } else {
                DEFAULT_WINDOW
                    .checked_add(h.length)
                    .ok_or(ProtocolError::WindowOverflow(id))?
            };
            syn_delta_applied = true;
            let window = self.cfg.initial_window;
            self.streams
                .insert(id, Stream::new(false, send_window, window, self.now));
            self.total_window += u64::from(window);
            self.frame(
                FrameType::WindowUpdate,
                FLAG_ACK,
                id,
                window - DEFAULT_WINDOW,
            );
            events.push(Event::StreamOpened(id));
        }
        let Some(s) = self.streams.get_mut(&id) else {
            // Recently closed, reset, refused or never known: ignored silently.
            self.skip_body(id, body_len);
            return Ok(());
        };
        if h.flags & FLAG_ACK != 0 && s.outbound && !s.acked {
            s.acked = true;
            self.unacked -= 1;
            events.push(Event::StreamAcked(id));
        }
        if is_data {
            if body_len > 0 {
                if s.read_closed {
                    return Err(ProtocolError::DataAfterFin(id));
                }
                if body_len > s.credit {
                    return Err(ProtocolError::WindowExceeded(id, body_len, s.credit));
                }
                s.credit -= body_len;
                s.buffered += body_len;
            }
        } else if !syn_delta_applied && h.length > 0 {
            s.send_window = s
                .send_window
                .checked_add(h.length)
                .ok_or(ProtocolError::WindowOverflow(id))?;
            let w = s.send_window;
            match self.window_idx.get(&id) {
                Some(&i) => events[i] = Event::Window(id, w),
                None => {
                    self.window_idx.insert(id, events.len());
                    events.push(Event::Window(id, w));
                }
            }
        }
        if body_len > 0 {
            self.body = Some(Body {
                stream_id: id,
                remaining: body_len,
                deliver: true,
                fin,
                rst,
            });
        } else {
            self.end_of_frame(id, fin, rst, events);
        }
        Ok(())
    }

    fn skip_body(&mut self, id: u32, len: u32) {
        if len > 0 {
            self.body = Some(Body {
                stream_id: id,
                remaining: len,
                deliver: false,
                fin: false,
                rst: false,
            });
        }
    }

    fn deliver(
        &mut self,
        id: u32,
        bytes: &[u8],
        events: &mut Vec<Event>,
        sink: Option<DataSink<'_>>,
    ) {
        if !self.streams.contains_key(&id) {
            // Reset locally while its DATA body was still arriving.
            return;
        }
        let idx = match self.data_idx.get(&id) {
            Some(&i) if matches!(events.get(i), Some(Event::Data(..))) => i,
            _ => {
                let i = events.len();
                self.data_idx.insert(id, i);
                events.push(Event::Data(id, Vec::new()));
                i
            }
        };
        match sink {
            Some(sink) => sink(idx, bytes),
            None => {
                if let Some(Event::Data(_, buf)) = events.get_mut(idx) {
                    buf.extend_from_slice(bytes);
                }
            }
        }
    }

    fn end_of_frame(&mut self, id: u32, fin: bool, rst: bool, events: &mut Vec<Event>) {
        if rst {
            if self.streams.contains_key(&id) {
                self.remove(id, Ended::Reset);
                events.push(Event::Reset(id));
            }
            return;
        }
        if fin {
            if let Some(s) = self.streams.get_mut(&id) {
                if !s.read_closed {
                    s.read_closed = true;
                    let remove = s.write_closed;
                    self.data_idx.remove(&id);
                    events.push(Event::Fin(id));
                    if remove {
                        self.remove(id, Ended::Closed);
                    }
                }
            }
        }
    }

    fn remove(&mut self, id: u32, how: Ended) {
        if let Some(s) = self.streams.remove(&id) {
            if s.outbound && !s.acked {
                self.unacked -= 1;
            }
            self.total_window = self.total_window.saturating_sub(u64::from(s.window));
        }
        self.closed.insert(id, how);
        self.data_idx.remove(&id);
        self.window_idx.remove(&id);
    }
}
