//! The sans-IO mplex session: bytes in, events out; frames appended to an output buffer.

use std::collections::{HashMap, VecDeque};

use crate::config::Config;
use crate::error::{Error, ProtocolError};
use crate::event::Event;
use crate::frame::{Flag, FrameHeader, MAX_HEADER_LEN};

/// Receives DATA bytes instead of `Event::Data`: `(index of the event in the events vector,
/// bytes)`, see `Session::receive_part`.
pub type DataSink<'a> = &'a mut dyn FnMut(usize, &[u8]);

#[derive(Debug, Default)]
struct Stream {
    write_closed: bool,
    read_closed: bool,
    /// Bytes delivered and not yet acknowledged by the application.
    buffered: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Closed,
    Reset,
}

/// The last `cap` streams that ended and how, for the error a late local call gets.
#[derive(Debug)]
struct Recent {
    map: HashMap<u32, Ended>,
    order: VecDeque<u32>,
    cap: usize,
}

impl Recent {
    fn insert(&mut self, key: u32, how: Ended) {
        if self.cap == 0 {
            return;
        }
        if self.map.insert(key, how).is_none() {
            self.order.push_back(key);
            if self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// A frame body being read: delivered to a stream, or skipped.
#[derive(Debug)]
struct Body {
    key: u32,
    remaining: u64,
    deliver: bool,
}

/// Key of the stream we opened with mplex id `id`.
fn ours(id: u64) -> Option<u32> {
    u32::try_from(id.checked_mul(2)?.checked_add(1)?).ok()
}

/// Key of the stream the peer opened with mplex id `id`.
fn theirs(id: u64) -> Option<u32> {
    u32::try_from(id.checked_mul(2)?.checked_add(2)?).ok()
}

/// `(mplex id, opened by us)` of a key, or None for key 0.
fn split(key: u32) -> Option<(u64, bool)> {
    match key {
        0 => None,
        k if k % 2 == 1 => Some((u64::from(k - 1) / 2, true)),
        k => Some((u64::from(k - 2) / 2, false)),
    }
}

/// One mplex session. Feed it with `receive`, ship `take_output` to the peer.
#[derive(Debug)]
pub struct Session {
    cfg: Config,
    next_id: u64,
    streams: HashMap<u32, Stream>,
    recent: Recent,
    out: Vec<u8>,
    hdr: [u8; MAX_HEADER_LEN],
    hdr_len: usize,
    body: Option<Body>,
    data_idx: HashMap<u32, usize>,
    pending_resets: usize,
    going_away: bool,
    failed: bool,
}

impl Session {
    /// A session; the configuration must pass `Config::validate`. mplex numbers each side's
    /// streams apart, so the session needs no role.
    pub fn new(cfg: Config) -> Result<Self, Error> {
        cfg.validate().map_err(Error::InvalidArgument)?;
        Ok(Self {
            next_id: 0,
            streams: HashMap::new(),
            recent: Recent {
                map: HashMap::new(),
                order: VecDeque::new(),
                cap: cfg.recently_closed,
            },
            out: Vec::new(),
            hdr: [0; MAX_HEADER_LEN],
            hdr_len: 0,
            body: None,
            data_idx: HashMap::new(),
            pending_resets: 0,
            going_away: false,
            failed: false,
            cfg,
        })
    }

    // ---- output -------------------------------------------------------------------------

    /// Frames queued for the peer.
    pub fn pending_output(&self) -> &[u8] {
        &self.out
    }

    /// Takes every queued frame.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.pending_resets = 0;
        std::mem::take(&mut self.out)
    }

    /// Forgets the queued frames (after the caller copied `pending_output`).
    pub fn clear_output(&mut self) {
        self.pending_resets = 0;
        self.out.clear();
    }

    /// Queues a frame without a body for the stream `key`; `ours` picks the flag variant.
    fn frame(&mut self, key: u32, initiator_flag: Flag, receiver_flag: Flag, length: u64) {
        if let Some((id, mine)) = split(key) {
            let flag = if mine { initiator_flag } else { receiver_flag };
            FrameHeader::new(id, flag, length).encode(&mut self.out);
        }
    }

    fn queue_reset(&mut self, key: u32) {
        self.frame(key, Flag::ResetInitiator, Flag::ResetReceiver, 0);
    }

    // ---- introspection ------------------------------------------------------------------

    /// The limits this session runs with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Live streams (either direction).
    pub fn num_streams(&self) -> usize {
        self.streams.len()
    }

    /// Bytes delivered to a live stream and not acknowledged yet.
    pub fn buffered(&self, key: u32) -> Option<usize> {
        self.streams.get(&key).map(|s| s.buffered)
    }

    /// True once the session failed, or `go_away` was called and no stream is left.
    pub fn is_closed(&self) -> bool {
        self.failed || (self.going_away && self.streams.is_empty())
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
    fn gone(&self, key: u32) -> Error {
        match self.recent.map.get(&key) {
            Some(Ended::Reset) => Error::StreamReset(key),
            Some(Ended::Closed) => Error::StreamClosed(key),
            None => match split(key) {
                Some((id, true)) if id < self.next_id => Error::StreamClosed(key),
                _ => Error::UnknownStream(key),
            },
        }
    }

    fn live(&mut self, key: u32) -> Result<&mut Stream, Error> {
        self.check_alive()?;
        if !self.streams.contains_key(&key) {
            return Err(self.gone(key));
        }
        self.streams.get_mut(&key).ok_or(Error::UnknownStream(key))
    }

    /// Opens an outbound stream (NewStream, named by its id as go-mplex and js-mplex do) and
    /// returns its key.
    pub fn open_stream(&mut self) -> Result<u32, Error> {
        self.check_alive()?;
        if self.going_away {
            return Err(Error::GoingAway);
        }
        if self.streams.len() >= self.cfg.max_streams {
            return Err(Error::StreamLimit(self.cfg.max_streams));
        }
        let id = self.next_id;
        let key = ours(id).ok_or(Error::StreamLimit(self.cfg.max_streams))?;
        self.next_id += 1;
        self.streams.insert(key, Stream::default());
        let name = id.to_string();
        FrameHeader::new(id, Flag::NewStream, name.len() as u64).encode(&mut self.out);
        self.out.extend_from_slice(name.as_bytes());
        Ok(key)
    }

    /// Queues all of `data` (mplex has no send window); `fin` closes our side after it.
    pub fn send(&mut self, key: u32, data: &[u8], fin: bool) -> Result<usize, Error> {
        let mut out = std::mem::take(&mut self.out);
        let r = self.send_with(key, data, fin, &mut |hdr, body| {
            out.extend_from_slice(hdr);
            out.extend_from_slice(body);
        });
        self.out = out;
        r
    }

    /// Like `send`, but hands every frame to `emit` as `(header, body)` (the body a
    /// sub-slice of `data`) instead of queueing it. The caller must put these frames on the
    /// wire after everything `pending_output` held before this call.
    pub fn send_with(
        &mut self,
        key: u32,
        data: &[u8],
        fin: bool,
        emit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize, Error> {
        let max = self.cfg.send_frame;
        let s = self.live(key)?;
        if s.write_closed {
            return Err(Error::StreamClosed(key));
        }
        let remove = fin && s.read_closed;
        if fin {
            s.write_closed = true;
        }
        let Some((id, mine)) = split(key) else {
            return Err(Error::UnknownStream(key));
        };
        let (msg, close) = if mine {
            (Flag::MessageInitiator, Flag::CloseInitiator)
        } else {
            (Flag::MessageReceiver, Flag::CloseReceiver)
        };
        for chunk in data.chunks(max) {
            let (h, n) = FrameHeader::new(id, msg, chunk.len() as u64).to_bytes();
            emit(&h[..n], chunk);
        }
        if fin {
            let (h, n) = FrameHeader::new(id, close, 0).to_bytes();
            emit(&h[..n], &[]);
        }
        if remove {
            self.remove(key, Ended::Closed);
        }
        Ok(data.len())
    }

    /// Bytes `send` would take now: any amount (mplex has no flow control).
    pub fn send_window(&mut self, key: u32) -> Result<u32, Error> {
        self.live(key)?;
        Ok(u32::MAX)
    }

    /// Closes our writing side (Close). Idempotent.
    pub fn close_stream(&mut self, key: u32) -> Result<(), Error> {
        let s = self.live(key)?;
        if s.write_closed {
            return Ok(());
        }
        s.write_closed = true;
        let remove = s.read_closed;
        self.frame(key, Flag::CloseInitiator, Flag::CloseReceiver, 0);
        if remove {
            self.remove(key, Ended::Closed);
        }
        Ok(())
    }

    /// Resets a stream (Reset); a no-op when it is already gone.
    pub fn reset_stream(&mut self, key: u32) -> Result<(), Error> {
        self.check_alive()?;
        if self.streams.contains_key(&key) {
            self.queue_reset(key);
            self.remove(key, Ended::Reset);
            return Ok(());
        }
        match self.gone(key) {
            Error::UnknownStream(k) => Err(Error::UnknownStream(k)),
            _ => Ok(()),
        }
    }

    /// The application consumed `n` bytes of a stream: they no longer count against
    /// `max_buffered`. A no-op for streams that are gone.
    pub fn ack(&mut self, key: u32, n: usize) -> Result<(), Error> {
        self.check_alive()?;
        let Some(s) = self.streams.get_mut(&key) else {
            return Ok(());
        };
        if n > s.buffered {
            return Err(Error::InvalidArgument(
                "ack of more bytes than were delivered",
            ));
        }
        s.buffered -= n;
        Ok(())
    }

    /// No new streams either way from now on (mplex has no GoAway frame: nothing is sent;
    /// inbound NewStream is reset). The session counts as closed once no stream is left.
    pub fn go_away(&mut self) -> Result<(), Error> {
        self.check_alive()?;
        self.going_away = true;
        Ok(())
    }

    // ---- input --------------------------------------------------------------------------

    /// Parses every complete frame of `input` (a partial header is kept for the next call;
    /// bodies are delivered as they arrive) and appends events. A peer violation kills the
    /// session and returns the error; after that, input is ignored.
    pub fn receive(&mut self, input: &[u8], events: &mut Vec<Event>) -> Result<(), Error> {
        self.begin_receive();
        self.receive_part(input, events, None)
    }

    /// Starts one logical receive call made of several `receive_part` pieces (DATA stays
    /// coalesced per stream across them).
    pub fn begin_receive(&mut self) {
        self.data_idx.clear();
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
                self.failed = true;
                self.body = None;
                self.hdr_len = 0;
                Err(Error::Protocol(e))
            }
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
                let take = usize::try_from(body.remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                body.remaining -= take as u64;
                let (key, deliver, done) = (body.key, body.deliver, body.remaining == 0);
                if done {
                    self.body = None;
                }
                if deliver {
                    let sink: Option<DataSink<'_>> = match sink {
                        Some(ref mut f) => Some(&mut **f),
                        None => None,
                    };
                    self.deliver(key, &input[..take], events, sink);
                }
                input = &input[take..];
                continue;
            }
            let (header, used) = if self.hdr_len == 0 {
                match FrameHeader::decode(input)? {
                    Some(found) => found,
                    None => {
                        // Shorter than a full header (a longer one would have decoded or
                        // failed): keep it for the next call.
                        self.hdr[..input.len()].copy_from_slice(input);
                        self.hdr_len = input.len();
                        break;
                    }
                }
            } else {
                let had = self.hdr_len;
                let take = (MAX_HEADER_LEN - had).min(input.len());
                self.hdr[had..had + take].copy_from_slice(&input[..take]);
                match FrameHeader::decode(&self.hdr[..had + take])? {
                    Some((h, n)) => {
                        self.hdr_len = 0;
                        (h, n - had)
                    }
                    None => {
                        self.hdr_len = had + take;
                        break;
                    }
                }
            };
            input = &input[used..];
            self.on_header(header, events)?;
        }
        Ok(())
    }

    fn skip(&mut self, key: u32, len: u64) {
        if len > 0 {
            self.body = Some(Body {
                key,
                remaining: len,
                deliver: false,
            });
        }
    }

    /// Our side resets a stream the peer misused (or overflowed): the peer is told, the
    /// application gets `Event::Reset`.
    fn reset_by_us(&mut self, key: u32, events: &mut Vec<Event>) {
        if self.pending_resets < self.cfg.max_pending_resets {
            self.pending_resets += 1;
            self.queue_reset(key);
        }
        self.remove(key, Ended::Reset);
        events.push(Event::Reset(key));
    }

    fn on_header(&mut self, h: FrameHeader, events: &mut Vec<Event>) -> Result<(), ProtocolError> {
        if h.length > self.cfg.max_frame as u64 {
            return Err(ProtocolError::FrameTooLarge(
                h.length,
                h.id,
                self.cfg.max_frame,
            ));
        }
        let len = h.length;
        let key = if h.flag.from_initiator() {
            theirs(h.id)
        } else {
            ours(h.id)
        };
        // Frames for streams we never numbered (ids beyond our keys) cannot be live: ignored.
        let live = key.filter(|k| self.streams.contains_key(k));
        match h.flag {
            Flag::NewStream => {
                let key = key.ok_or(ProtocolError::StreamIdTooLarge(h.id))?;
                if live.is_some() {
                    return Err(ProtocolError::DuplicateStream(h.id));
                }
                self.skip(key, len); // the stream's name: not used
                if self.going_away || self.streams.len() >= self.cfg.max_streams {
                    if self.pending_resets < self.cfg.max_pending_resets {
                        self.pending_resets += 1;
                        self.queue_reset(key);
                    }
                    self.recent.insert(key, Ended::Reset);
                } else {
                    self.recent.map.remove(&key);
                    self.streams.insert(key, Stream::default());
                    events.push(Event::StreamOpened(key));
                }
            }
            Flag::MessageInitiator | Flag::MessageReceiver => {
                let Some(key) = live else {
                    // Late data for a stream that ended (or never was): dropped.
                    self.skip(0, len);
                    return Ok(());
                };
                if len == 0 {
                    return Ok(());
                }
                let max = self.cfg.max_buffered as u64;
                let Some(s) = self.streams.get_mut(&key) else {
                    return Ok(());
                };
                if s.read_closed || s.buffered as u64 + len > max {
                    // Data after the peer's Close, or more unread bytes than we hold for a
                    // stream: that stream is reset, the session goes on.
                    self.reset_by_us(key, events);
                    self.skip(0, len);
                    return Ok(());
                }
                s.buffered += len as usize;
                self.body = Some(Body {
                    key,
                    remaining: len,
                    deliver: true,
                });
            }
            Flag::CloseInitiator | Flag::CloseReceiver => {
                self.skip(0, len); // should be empty; tolerated
                let Some(key) = live else {
                    return Ok(());
                };
                if let Some(s) = self.streams.get_mut(&key) {
                    if !s.read_closed {
                        s.read_closed = true;
                        let remove = s.write_closed;
                        self.data_idx.remove(&key);
                        events.push(Event::Fin(key));
                        if remove {
                            self.remove(key, Ended::Closed);
                        }
                    }
                }
            }
            Flag::ResetInitiator | Flag::ResetReceiver => {
                self.skip(0, len);
                if let Some(key) = live {
                    self.remove(key, Ended::Reset);
                    events.push(Event::Reset(key));
                }
            }
        }
        Ok(())
    }

    fn deliver(
        &mut self,
        key: u32,
        bytes: &[u8],
        events: &mut Vec<Event>,
        sink: Option<DataSink<'_>>,
    ) {
        if !self.streams.contains_key(&key) {
            return; // reset locally while its body was arriving
        }
        let idx = match self.data_idx.get(&key) {
            Some(&i) if matches!(events.get(i), Some(Event::Data(..))) => i,
            _ => {
                let i = events.len();
                self.data_idx.insert(key, i);
                events.push(Event::Data(key, Vec::new()));
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

    fn remove(&mut self, key: u32, how: Ended) {
        self.streams.remove(&key);
        self.recent.insert(key, how);
        self.data_idx.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for id in [0u64, 1, 7, 1000] {
            assert_eq!(split(ours(id).unwrap()), Some((id, true)));
            assert_eq!(split(theirs(id).unwrap()), Some((id, false)));
        }
        assert_eq!(split(0), None);
        assert_eq!(ours(u64::from(u32::MAX)), None);
        assert_eq!(theirs(1 << 40), None);
    }
}
