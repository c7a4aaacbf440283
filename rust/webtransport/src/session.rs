//! One connection's HTTP/3 state for a WebTransport server or client
//! (draft-ietf-webtrans-http3-02, as Chromium and webtransport-go speak it). The caller (the
//! QUIC endpoint) hands over the bytes of every stream that is not yet known to be a libp2p
//! stream and acts on the outcome:
//!
//! - unidirectional streams: the peer's control stream (its SETTINGS are read, the rest of
//!   its frames skipped), its QPACK encoder and decoder streams (read and dropped: with our
//!   table capacity of 0 they carry nothing we need); any other type is refused
//!   (STOP_SENDING), WebTransport unidirectional streams included (libp2p uses none);
//! - bidirectional streams: the first one carrying a HEADERS frame is the extended CONNECT
//!   request; the answer is 200 for `:protocol webtransport` on [`CONNECT_PATH`], 404 for
//!   another path, 400 for a malformed request, and 429 for a second session (one per
//!   connection); a stream starting with the signal 0x41 and a session id is a WebTransport
//!   stream, its payload a libp2p stream.
//!
//! A client ([`ServerSession::client`]) sends the extended CONNECT itself
//! ([`ClientSession::request`]) on its first bidirectional stream and reads the answer there
//! ([`BidiOutcome::Status`]); the streams its server opens must be WebTransport streams
//! (a server sends no requests).
//!
//! Errors ([`WtError`]) are connection errors with their HTTP/3 code: the caller closes this
//! connection only.

use std::collections::HashMap;

use thiserror::Error;

use crate::qpack::{decode_field_section, encode_field_section, QpackError};
use crate::varint;

/// The signal that opens a WebTransport bidirectional stream (draft-02 WEBTRANSPORT_STREAM).
pub const WT_STREAM_SIGNAL: u64 = 0x41;
/// The HTTP endpoint of libp2p WebTransport with the Noise handshake.
pub const CONNECT_PATH: &str = "/.well-known/libp2p-webtransport?type=noise";

const FRAME_DATA: u64 = 0x00;
const FRAME_HEADERS: u64 = 0x01;
const FRAME_SETTINGS: u64 = 0x04;

const STREAM_CONTROL: u64 = 0x00;
const STREAM_QPACK_ENCODER: u64 = 0x02;
const STREAM_QPACK_DECODER: u64 = 0x03;

/// SETTINGS we send (values 1): the extended CONNECT (RFC 8441/9220), HTTP datagrams
/// (RFC 9297) and WebTransport draft-02 (ENABLE_WEBTRANSPORT), as webtransport-go sends them.
pub const SETTINGS_ENABLE_CONNECT_PROTOCOL: u64 = 0x08;
pub const SETTINGS_H3_DATAGRAM: u64 = 0x33;
pub const SETTINGS_ENABLE_WEBTRANSPORT: u64 = 0x2b60_3742;
/// What later drafts call the number of sessions a server allows (ours: 1).
pub const SETTINGS_WEBTRANSPORT_MAX_SESSIONS: u64 = 0xc671_706a;
/// The draft numbers of the same two settings that older clients look for.
pub const SETTINGS_WEBTRANSPORT_MAX_SESSIONS_DRAFT: u64 = 0x2b60_3743;
pub const SETTINGS_H3_DATAGRAM_DRAFT04: u64 = 0xff_d277;
const SETTINGS_MAX_FIELD_SECTION_SIZE: u64 = 0x06;

/// HTTP/3 error codes (RFC 9114 8.1, RFC 9204 6).
pub mod code {
    pub const H3_NO_ERROR: u64 = 0x100;
    pub const H3_STREAM_CREATION_ERROR: u64 = 0x103;
    pub const H3_CLOSED_CRITICAL_STREAM: u64 = 0x104;
    pub const H3_FRAME_UNEXPECTED: u64 = 0x105;
    pub const H3_FRAME_ERROR: u64 = 0x106;
    pub const H3_EXCESSIVE_LOAD: u64 = 0x107;
    pub const H3_SETTINGS_ERROR: u64 = 0x109;
    pub const H3_MISSING_SETTINGS: u64 = 0x10a;
    pub const H3_MESSAGE_ERROR: u64 = 0x10e;
    pub const QPACK_DECOMPRESSION_FAILED: u64 = 0x200;
    /// WebTransport draft-02: a stream for an unknown session was refused.
    pub const WT_BUFFERED_STREAM_REJECTED: u64 = 0x3994_bd84;
}

/// A violation by the peer: the connection is closed with [`WtError::code`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WtError {
    #[error("HTTP/3 frame of {0} bytes is over the limit")]
    FrameTooLarge(u64),
    #[error("request header block of {0} bytes is over the limit")]
    HeadersTooLarge(u64),
    #[error("bad header block: {0}")]
    Qpack(#[from] QpackError),
    #[error("HTTP/3 control stream: {0}")]
    Control(&'static str),
    #[error("a second HTTP/3 control stream")]
    SecondControlStream,
    #[error("the peer closed its HTTP/3 control stream")]
    ControlClosed,
    #[error("unexpected HTTP/3 frame 0x{0:x} on a request stream")]
    UnexpectedFrame(u64),
    #[error("duplicate HTTP/3 setting 0x{0:x}")]
    DuplicateSetting(u64),
    #[error("too many HTTP/3 streams of type 0x{0:x}")]
    TooManyStreams(u64),
    #[error("the server ended the CONNECT stream without an answer")]
    NoAnswer,
}

impl WtError {
    /// The HTTP/3 error code of the CONNECTION_CLOSE.
    pub fn code(&self) -> u64 {
        match self {
            Self::FrameTooLarge(_) => code::H3_FRAME_ERROR,
            Self::HeadersTooLarge(_) => code::H3_EXCESSIVE_LOAD,
            Self::Qpack(_) => code::QPACK_DECOMPRESSION_FAILED,
            Self::Control(_) => code::H3_MISSING_SETTINGS,
            Self::SecondControlStream | Self::TooManyStreams(_) => code::H3_STREAM_CREATION_ERROR,
            Self::ControlClosed => code::H3_CLOSED_CRITICAL_STREAM,
            Self::UnexpectedFrame(_) => code::H3_FRAME_UNEXPECTED,
            Self::DuplicateSetting(_) => code::H3_SETTINGS_ERROR,
            Self::NoAnswer => code::H3_MESSAGE_ERROR,
        }
    }
}

/// Bounds on what one connection's peer may make us hold.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The request's header block (HEADERS frame payload), bytes; also its decoded size.
    pub max_field_section: usize,
    /// Any other frame we buffer whole (SETTINGS, unknown frames on the control stream).
    pub max_frame: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_field_section: 16 * 1024,
            max_frame: 16 * 1024,
        }
    }
}

/// What to do with a unidirectional stream after its bytes were taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UniOutcome {
    /// Keep reading it (control or QPACK stream, or its type is not known yet).
    Read,
    /// Stop reading it (STOP_SENDING): a type we do not accept.
    Stop,
}

/// What to do with a bidirectional stream after its bytes were taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BidiOutcome {
    /// Not decided yet: more bytes are needed.
    More,
    /// A request: write `response` on the stream (then FIN when `fin`); `accepted`: the
    /// WebTransport session (id = this stream's id) is established.
    Respond {
        response: Vec<u8>,
        fin: bool,
        accepted: bool,
    },
    /// A WebTransport stream of `session`; `payload`: the bytes that followed its header.
    WtStream { session: u64, payload: Vec<u8> },
    /// A client's CONNECT was answered with this HTTP status (2xx: the session is up).
    Status(u16),
    /// Bytes after the request (capsules, unused here): dropped.
    Ignored,
    /// The peer ended the session's request stream: the session is over.
    SessionClosed,
    /// Neither a request nor a WebTransport stream we accept: reset it.
    Reject,
}

#[derive(Debug)]
enum Uni {
    Unknown(Vec<u8>),
    Control { buf: Vec<u8>, settings: bool },
    Discard,
}

#[derive(Debug)]
enum Bidi {
    Unknown(Vec<u8>),
    Request(Vec<u8>),
    /// A client's CONNECT stream, until the answer's HEADERS arrived.
    Response(ClientSession),
    Done,
}

/// One HTTP/3 connection carrying at most one WebTransport session: the server's side
/// ([`ServerSession::new`]) or the client's ([`ServerSession::client`]).
#[derive(Debug, Default)]
pub struct ServerSession {
    limits: Limits,
    /// The client's side: we sent the CONNECT, the peer opens no request streams.
    client: bool,
    uni: HashMap<u64, Uni>,
    bidi: HashMap<u64, Bidi>,
    control_seen: bool,
    qpack_streams: u8,
    /// The session's id (its CONNECT stream) once accepted.
    session: Option<u64>,
    /// The peer's SETTINGS, when received.
    peer_settings: Option<Vec<(u64, u64)>>,
}

/// Appends one frame (type, length, payload).
pub fn frame(kind: u64, payload: &[u8], out: &mut Vec<u8>) {
    varint::encode(kind, out);
    varint::encode(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Parses one whole frame at the start of `buf`: `Some((type, payload range end))` with the
/// payload at `header..end`; None while incomplete. Refuses a declared length over `max`.
fn parse_frame(buf: &[u8], max: usize) -> Result<Option<(u64, usize, usize)>, WtError> {
    let Some((kind, a)) = varint::decode(buf) else {
        return Ok(None);
    };
    let Some((len, b)) = varint::decode(&buf[a..]) else {
        return Ok(None);
    };
    if len > max as u64 {
        return Err(if kind == FRAME_HEADERS {
            WtError::HeadersTooLarge(len)
        } else {
            WtError::FrameTooLarge(len)
        });
    }
    let start = a + b;
    let end = start + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((kind, start, end)))
}

/// Parses a SETTINGS payload (identifier/value pairs); duplicates are an error.
pub fn parse_settings(mut p: &[u8]) -> Result<Vec<(u64, u64)>, WtError> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    while !p.is_empty() {
        let (id, a) = varint::decode(p).ok_or(WtError::Control("truncated SETTINGS"))?;
        let (v, b) = varint::decode(&p[a..]).ok_or(WtError::Control("truncated SETTINGS"))?;
        if out.iter().any(|(i, _)| *i == id) {
            return Err(WtError::DuplicateSetting(id));
        }
        out.push((id, v));
        p = &p[a + b..];
    }
    Ok(out)
}

/// Our control stream's opening bytes: the stream type and our SETTINGS.
pub fn control_stream(max_field_section: usize) -> Vec<u8> {
    control_stream_with(&[
        (SETTINGS_MAX_FIELD_SECTION_SIZE, max_field_section as u64),
        (SETTINGS_ENABLE_CONNECT_PROTOCOL, 1),
        (SETTINGS_H3_DATAGRAM, 1),
        (SETTINGS_ENABLE_WEBTRANSPORT, 1),
        (SETTINGS_WEBTRANSPORT_MAX_SESSIONS, 1),
        (SETTINGS_WEBTRANSPORT_MAX_SESSIONS_DRAFT, 1),
        (SETTINGS_H3_DATAGRAM_DRAFT04, 1),
    ])
}

/// A client's control stream: draft-02 wants ENABLE_WEBTRANSPORT from both sides and HTTP
/// datagrams enabled (both numbers, as webtransport-go's client sends them); the extended
/// CONNECT and the session count are the server's to announce.
pub fn client_control_stream(max_field_section: usize) -> Vec<u8> {
    control_stream_with(&[
        (SETTINGS_MAX_FIELD_SECTION_SIZE, max_field_section as u64),
        (SETTINGS_H3_DATAGRAM, 1),
        (SETTINGS_ENABLE_WEBTRANSPORT, 1),
        (SETTINGS_H3_DATAGRAM_DRAFT04, 1),
    ])
}

fn control_stream_with(pairs: &[(u64, u64)]) -> Vec<u8> {
    let mut settings = Vec::new();
    for &(id, v) in pairs {
        varint::encode(id, &mut settings);
        varint::encode(v, &mut settings);
    }
    let mut out = Vec::new();
    varint::encode(STREAM_CONTROL, &mut out);
    frame(FRAME_SETTINGS, &settings, &mut out);
    out
}

fn response(status: &str) -> Vec<u8> {
    let block = encode_field_section(&[
        (":status", status),
        ("sec-webtransport-http3-draft", "draft02"),
    ]);
    let mut out = Vec::new();
    frame(FRAME_HEADERS, &block, &mut out);
    out
}

fn header<'a>(fields: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(n, _)| n == name.as_bytes())
        .map(|(_, v)| v.as_slice())
}

impl ServerSession {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The client's side of a connection whose extended CONNECT goes out on the
    /// bidirectional stream `connect_stream` (the session's id from then on: WebTransport
    /// streams may be opened before the answer, as the libp2p spec asks of a client).
    pub fn client(limits: Limits, connect_stream: u64) -> Self {
        let mut s = Self {
            limits,
            client: true,
            session: Some(connect_stream),
            ..Self::default()
        };
        s.bidi
            .insert(connect_stream, Bidi::Response(ClientSession::default()));
        s
    }

    /// True for the client's side.
    pub fn is_client(&self) -> bool {
        self.client
    }

    /// Our control stream's opening bytes (write them on a new unidirectional stream).
    pub fn control_stream(&self) -> Vec<u8> {
        if self.client {
            client_control_stream(self.limits.max_field_section)
        } else {
            control_stream(self.limits.max_field_section)
        }
    }

    /// The established session's id (its CONNECT stream), if any.
    pub fn session(&self) -> Option<u64> {
        self.session
    }

    /// The peer's SETTINGS once its control stream delivered them.
    pub fn peer_settings(&self) -> Option<&[(u64, u64)]> {
        self.peer_settings.as_deref()
    }

    /// Forgets a stream (reset, or both sides done).
    pub fn forget(&mut self, stream: u64) {
        self.uni.remove(&stream);
        self.bidi.remove(&stream);
    }

    /// Bytes of a unidirectional stream the peer opened (`fin`: they end it).
    pub fn on_uni(&mut self, stream: u64, data: &[u8], fin: bool) -> Result<UniOutcome, WtError> {
        let st = self
            .uni
            .entry(stream)
            .or_insert_with(|| Uni::Unknown(Vec::new()));
        if let Uni::Unknown(buf) = st {
            buf.extend_from_slice(data);
            let Some((kind, n)) = varint::decode(buf) else {
                if fin {
                    self.uni.remove(&stream);
                }
                return Ok(UniOutcome::Read);
            };
            let rest = buf[n..].to_vec();
            match kind {
                STREAM_CONTROL => {
                    if self.control_seen {
                        return Err(WtError::SecondControlStream);
                    }
                    self.control_seen = true;
                    *st = Uni::Control {
                        buf: Vec::new(),
                        settings: false,
                    };
                    return self.control_bytes(stream, &rest, fin);
                }
                STREAM_QPACK_ENCODER | STREAM_QPACK_DECODER => {
                    self.qpack_streams += 1;
                    if self.qpack_streams > 2 {
                        return Err(WtError::TooManyStreams(kind));
                    }
                    *st = Uni::Discard;
                    return Ok(UniOutcome::Read);
                }
                _ => {
                    self.uni.remove(&stream);
                    return Ok(UniOutcome::Stop);
                }
            }
        }
        match st {
            Uni::Control { .. } => self.control_bytes(stream, data, fin),
            _ => {
                if fin {
                    // A QPACK stream is critical too, but with no dynamic table nothing is
                    // lost; its end only matters to the peer.
                    self.uni.remove(&stream);
                }
                Ok(UniOutcome::Read)
            }
        }
    }

    fn control_bytes(
        &mut self,
        stream: u64,
        data: &[u8],
        fin: bool,
    ) -> Result<UniOutcome, WtError> {
        if fin {
            return Err(WtError::ControlClosed);
        }
        let max = self.limits.max_frame;
        let Some(Uni::Control { buf, settings }) = self.uni.get_mut(&stream) else {
            return Ok(UniOutcome::Read);
        };
        buf.extend_from_slice(data);
        let mut at = 0;
        while let Some((kind, start, end)) = parse_frame(&buf[at..], max)? {
            let payload = &buf[at + start..at + end];
            if !*settings {
                if kind != FRAME_SETTINGS {
                    return Err(WtError::Control("first frame is not SETTINGS"));
                }
                *settings = true;
                self.peer_settings = Some(parse_settings(payload)?);
            } else if kind == FRAME_SETTINGS {
                return Err(WtError::Control("a second SETTINGS frame"));
            } else if kind == FRAME_DATA || kind == FRAME_HEADERS {
                return Err(WtError::UnexpectedFrame(kind));
            }
            // GOAWAY, MAX_PUSH_ID and unknown frames need no action from a server that
            // serves one session and pushes nothing.
            at += end;
        }
        buf.drain(..at);
        Ok(UniOutcome::Read)
    }

    /// Bytes of a bidirectional stream the peer opened, until it is classified; a stream
    /// classified as a WebTransport stream is the caller's from then on (never call again).
    pub fn on_bidi(&mut self, stream: u64, data: &[u8], fin: bool) -> Result<BidiOutcome, WtError> {
        let st = self
            .bidi
            .entry(stream)
            .or_insert_with(|| Bidi::Unknown(Vec::new()));
        match st {
            Bidi::Done => {
                if fin && self.session == Some(stream) {
                    return Ok(BidiOutcome::SessionClosed);
                }
                Ok(BidiOutcome::Ignored)
            }
            Bidi::Response(resp) => match resp.on_response(data, &self.limits)? {
                Some(status) => {
                    *st = Bidi::Done;
                    if fin {
                        // Answered and ended at once: a refusal (or a session already over).
                        return Ok(if (200..300).contains(&status) {
                            BidiOutcome::SessionClosed
                        } else {
                            BidiOutcome::Status(status)
                        });
                    }
                    Ok(BidiOutcome::Status(status))
                }
                None if fin => Err(WtError::NoAnswer),
                None => Ok(BidiOutcome::More),
            },
            Bidi::Request(buf) => {
                buf.extend_from_slice(data);
                self.request(stream, fin)
            }
            Bidi::Unknown(buf) => {
                buf.extend_from_slice(data);
                let Some((kind, n)) = varint::decode(buf) else {
                    return Ok(if fin {
                        self.bidi.remove(&stream);
                        BidiOutcome::Reject
                    } else {
                        BidiOutcome::More
                    });
                };
                if kind == WT_STREAM_SIGNAL {
                    let Some((session, m)) = varint::decode(&buf[n..]) else {
                        return Ok(if fin {
                            self.bidi.remove(&stream);
                            BidiOutcome::Reject
                        } else {
                            BidiOutcome::More
                        });
                    };
                    let payload = buf[n + m..].to_vec();
                    self.bidi.remove(&stream);
                    return Ok(BidiOutcome::WtStream { session, payload });
                }
                if self.client {
                    // A server opens WebTransport streams only, never requests.
                    self.bidi.remove(&stream);
                    return Ok(BidiOutcome::Reject);
                }
                let all = std::mem::take(buf);
                *st = Bidi::Request(all);
                self.request(stream, fin)
            }
        }
    }

    fn request(&mut self, stream: u64, fin: bool) -> Result<BidiOutcome, WtError> {
        let max = self.limits.max_field_section;
        let Some(Bidi::Request(buf)) = self.bidi.get_mut(&stream) else {
            return Ok(BidiOutcome::Ignored);
        };
        // Unknown (reserved) frame types may precede HEADERS; they are bounded like any.
        loop {
            let Some((kind, start, end)) = parse_frame(buf, max)? else {
                if fin {
                    self.bidi.remove(&stream);
                    return Ok(BidiOutcome::Reject);
                }
                return Ok(BidiOutcome::More);
            };
            if kind == FRAME_HEADERS {
                let fields = decode_field_section(&buf[start..end], max)?;
                buf.drain(..end);
                let (status, accepted) = self.judge(stream, &fields);
                self.bidi.insert(stream, Bidi::Done);
                if accepted {
                    self.session = Some(stream);
                }
                return Ok(BidiOutcome::Respond {
                    response: response(status),
                    fin: !accepted,
                    accepted,
                });
            }
            if kind == FRAME_DATA || kind == FRAME_SETTINGS {
                return Err(WtError::UnexpectedFrame(kind));
            }
            buf.drain(..end);
        }
    }

    /// The answer to a request: status, and whether it opens the session.
    fn judge(&self, _stream: u64, fields: &[(Vec<u8>, Vec<u8>)]) -> (&'static str, bool) {
        let method = header(fields, ":method");
        let protocol = header(fields, ":protocol");
        let path = header(fields, ":path");
        let scheme = header(fields, ":scheme");
        let authority = header(fields, ":authority");
        let (Some(method), Some(path)) = (method, path) else {
            return ("400", false);
        };
        if method != b"CONNECT" {
            return ("404", false);
        }
        if protocol != Some(b"webtransport".as_slice()) || scheme.is_none() || authority.is_none() {
            return ("400", false);
        }
        if path != CONNECT_PATH.as_bytes() {
            return ("404", false);
        }
        if self.session.is_some() {
            return ("429", false);
        }
        ("200", true)
    }
}

/// The client side's few needs: the request and the parsing of the answer (dialling).
#[derive(Debug, Default)]
pub struct ClientSession {
    buf: Vec<u8>,
}

impl ClientSession {
    /// The extended CONNECT request for `authority` (`host:port`), as a HEADERS frame.
    pub fn request(authority: &str) -> Vec<u8> {
        let block = encode_field_section(&[
            (":method", "CONNECT"),
            (":protocol", "webtransport"),
            (":scheme", "https"),
            (":authority", authority),
            (":path", CONNECT_PATH),
            ("sec-webtransport-http3-draft02", "1"),
        ]);
        let mut out = Vec::new();
        frame(FRAME_HEADERS, &block, &mut out);
        out
    }

    /// The header of a WebTransport stream of `session`.
    pub fn stream_header(session: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint::encode(WT_STREAM_SIGNAL, &mut out);
        varint::encode(session, &mut out);
        out
    }

    /// Bytes of the request stream: `Some(status)` once the response's HEADERS arrived.
    pub fn on_response(&mut self, data: &[u8], limits: &Limits) -> Result<Option<u16>, WtError> {
        self.buf.extend_from_slice(data);
        loop {
            let Some((kind, start, end)) = parse_frame(&self.buf, limits.max_field_section)? else {
                return Ok(None);
            };
            if kind == FRAME_HEADERS {
                let fields = decode_field_section(&self.buf[start..end], limits.max_field_section)?;
                self.buf.clear();
                let status = header(&fields, ":status")
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| s.parse::<u16>().ok())
                    .ok_or(WtError::UnexpectedFrame(FRAME_HEADERS))?;
                return Ok(Some(status));
            }
            if kind == FRAME_DATA || kind == FRAME_SETTINGS {
                return Err(WtError::UnexpectedFrame(kind));
            }
            self.buf.drain(..end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(path: &str) -> Vec<u8> {
        let block = encode_field_section(&[
            (":method", "CONNECT"),
            (":protocol", "webtransport"),
            (":scheme", "https"),
            (":authority", "localhost:1234"),
            (":path", path),
            ("sec-webtransport-http3-draft02", "1"),
        ]);
        let mut out = Vec::new();
        frame(FRAME_HEADERS, &block, &mut out);
        out
    }

    fn status(resp: &[u8]) -> u16 {
        let mut c = ClientSession::default();
        c.on_response(resp, &Limits::default()).unwrap().unwrap()
    }

    #[test]
    fn control_stream_settings() {
        let s = ServerSession::new(Limits::default());
        let bytes = s.control_stream();
        assert_eq!(bytes[0], 0x00);
        let (kind, start, end) = parse_frame(&bytes[1..], 1024).unwrap().unwrap();
        assert_eq!(kind, FRAME_SETTINGS);
        let settings = parse_settings(&bytes[1 + start..1 + end]).unwrap();
        for id in [
            SETTINGS_ENABLE_CONNECT_PROTOCOL,
            SETTINGS_H3_DATAGRAM,
            SETTINGS_ENABLE_WEBTRANSPORT,
        ] {
            assert!(settings.contains(&(id, 1)), "setting 0x{id:x}");
        }
        // The peer's control stream, one byte at a time.
        let mut peer = ServerSession::new(Limits::default());
        for (i, b) in bytes.iter().enumerate() {
            assert_eq!(
                peer.on_uni(3, &[*b], false).unwrap(),
                UniOutcome::Read,
                "{i}"
            );
        }
        assert_eq!(peer.peer_settings().unwrap(), settings.as_slice());
    }

    #[test]
    fn control_stream_violations() {
        let mut s = ServerSession::new(Limits::default());
        let mut data = vec![0x00];
        frame(FRAME_HEADERS, b"", &mut data);
        assert!(matches!(
            s.on_uni(2, &data, false),
            Err(WtError::Control(_))
        ));
        let mut s = ServerSession::new(Limits::default());
        let c = s.control_stream();
        s.on_uni(2, &c, false).unwrap();
        assert_eq!(s.on_uni(6, &c, false), Err(WtError::SecondControlStream));
        assert_eq!(s.on_uni(2, &[], true), Err(WtError::ControlClosed));
        let mut s = ServerSession::new(Limits::default());
        let mut dup = vec![0x00];
        frame(FRAME_SETTINGS, &[0x08, 0x01, 0x08, 0x01], &mut dup);
        assert_eq!(s.on_uni(2, &dup, false), Err(WtError::DuplicateSetting(8)));
        // A huge declared frame is refused before it is buffered.
        let mut s = ServerSession::new(Limits::default());
        let mut huge = vec![0x00];
        varint::encode(FRAME_SETTINGS, &mut huge);
        varint::encode(1 << 40, &mut huge);
        assert_eq!(
            s.on_uni(2, &huge, false),
            Err(WtError::FrameTooLarge(1 << 40))
        );
    }

    #[test]
    fn qpack_and_unknown_uni_streams() {
        let mut s = ServerSession::new(Limits::default());
        assert_eq!(
            s.on_uni(2, &[0x02, 0x3f, 0xe1], false),
            Ok(UniOutcome::Read)
        );
        assert_eq!(s.on_uni(6, &[0x03], false), Ok(UniOutcome::Read));
        assert_eq!(s.on_uni(6, &[0x00, 0x01], false), Ok(UniOutcome::Read));
        // WebTransport unidirectional (0x54) and push (0x01) streams are refused.
        assert_eq!(
            s.on_uni(10, &[0x40, 0x54, 0x00], false),
            Ok(UniOutcome::Stop)
        );
        assert_eq!(s.on_uni(14, &[0x01], false), Ok(UniOutcome::Stop));
        assert_eq!(
            s.on_uni(18, &[0x02], false),
            Err(WtError::TooManyStreams(0x02))
        );
    }

    #[test]
    fn connect_accepted_split_anywhere() {
        let req = connect(CONNECT_PATH);
        for cut in 0..req.len() {
            let mut s = ServerSession::new(Limits::default());
            let first = s.on_bidi(0, &req[..cut], false).unwrap();
            let out = if first == BidiOutcome::More {
                s.on_bidi(0, &req[cut..], false).unwrap()
            } else {
                first
            };
            let BidiOutcome::Respond {
                response,
                fin,
                accepted,
            } = out
            else {
                panic!("cut {cut}: {out:?}");
            };
            assert!(accepted && !fin);
            assert_eq!(status(&response), 200);
            assert_eq!(s.session(), Some(0));
        }
    }

    #[test]
    fn other_paths_and_malformed_requests() {
        let mut s = ServerSession::new(Limits::default());
        let out = s.on_bidi(0, &connect("/other"), false).unwrap();
        let BidiOutcome::Respond {
            response,
            accepted,
            fin,
        } = out
        else {
            panic!("{out:?}");
        };
        assert!(!accepted && fin);
        assert_eq!(status(&response), 404);
        assert_eq!(s.session(), None);
        // Missing :path.
        let block = encode_field_section(&[(":method", "CONNECT"), (":protocol", "webtransport")]);
        let mut req = Vec::new();
        frame(FRAME_HEADERS, &block, &mut req);
        let BidiOutcome::Respond { response, .. } = s.on_bidi(4, &req, false).unwrap() else {
            panic!()
        };
        assert_eq!(status(&response), 400);
        // A second session on one connection.
        s.on_bidi(8, &connect(CONNECT_PATH), false).unwrap();
        let BidiOutcome::Respond {
            response, accepted, ..
        } = s.on_bidi(12, &connect(CONNECT_PATH), false).unwrap()
        else {
            panic!()
        };
        assert!(!accepted);
        assert_eq!(status(&response), 429);
        assert_eq!(s.session(), Some(8));
        // DATA before HEADERS.
        let mut data = Vec::new();
        frame(FRAME_DATA, b"x", &mut data);
        assert_eq!(
            s.on_bidi(16, &data, false),
            Err(WtError::UnexpectedFrame(0))
        );
    }

    #[test]
    fn oversized_headers() {
        let mut s = ServerSession::new(Limits::default());
        let mut req = Vec::new();
        varint::encode(FRAME_HEADERS, &mut req);
        varint::encode(1 << 20, &mut req);
        assert_eq!(
            s.on_bidi(0, &req, false),
            Err(WtError::HeadersTooLarge(1 << 20))
        );
        assert_eq!(WtError::HeadersTooLarge(1).code(), code::H3_EXCESSIVE_LOAD);
    }

    #[test]
    fn webtransport_streams() {
        let mut s = ServerSession::new(Limits::default());
        s.on_bidi(0, &connect(CONNECT_PATH), false).unwrap();
        let mut hdr = ClientSession::stream_header(0);
        hdr.extend_from_slice(b"/multistream");
        assert_eq!(s.on_bidi(4, &hdr[..1], false), Ok(BidiOutcome::More));
        assert_eq!(
            s.on_bidi(4, &hdr[1..], false),
            Ok(BidiOutcome::WtStream {
                session: 0,
                payload: b"/multistream".to_vec()
            })
        );
        assert_eq!(s.on_bidi(8, &[0x40], true), Ok(BidiOutcome::Reject));
        assert_eq!(s.on_bidi(0, b"", true), Ok(BidiOutcome::SessionClosed));
    }

    #[test]
    fn client_side() {
        let mut c = ServerSession::client(Limits::default(), 0);
        assert!(c.is_client());
        assert_eq!(c.session(), Some(0));
        // Client SETTINGS: WebTransport and datagrams, no extended CONNECT of its own.
        let bytes = c.control_stream();
        let (_, start, end) = parse_frame(&bytes[1..], 1024).unwrap().unwrap();
        let settings = parse_settings(&bytes[1 + start..1 + end]).unwrap();
        assert!(settings.contains(&(SETTINGS_ENABLE_WEBTRANSPORT, 1)));
        assert!(settings.contains(&(SETTINGS_H3_DATAGRAM, 1)));
        assert!(!settings
            .iter()
            .any(|(id, _)| *id == SETTINGS_ENABLE_CONNECT_PROTOCOL));
        // The server's answer, split anywhere, on the CONNECT stream.
        let ok = response("200");
        assert_eq!(c.on_bidi(0, &ok[..2], false), Ok(BidiOutcome::More));
        assert_eq!(c.on_bidi(0, &ok[2..], false), Ok(BidiOutcome::Status(200)));
        assert_eq!(c.on_bidi(0, b"", true), Ok(BidiOutcome::SessionClosed));
        // A stream the server opens: a WebTransport stream, or refused (no requests).
        let mut hdr = ClientSession::stream_header(0);
        hdr.extend_from_slice(b"x");
        assert_eq!(
            c.on_bidi(1, &hdr, false),
            Ok(BidiOutcome::WtStream {
                session: 0,
                payload: b"x".to_vec()
            })
        );
        assert_eq!(
            c.on_bidi(5, &connect(CONNECT_PATH), false),
            Ok(BidiOutcome::Reject)
        );
        // A refusal, and a CONNECT stream ended without an answer.
        let mut c = ServerSession::client(Limits::default(), 0);
        assert_eq!(
            c.on_bidi(0, &response("404"), true),
            Ok(BidiOutcome::Status(404))
        );
        let mut c = ServerSession::client(Limits::default(), 0);
        assert_eq!(c.on_bidi(0, b"", true), Err(WtError::NoAnswer));
        // The client's request is what a server accepts.
        let mut s = ServerSession::new(Limits::default());
        let req = ClientSession::request("127.0.0.1:4001");
        assert!(matches!(
            s.on_bidi(0, &req, false),
            Ok(BidiOutcome::Respond { accepted: true, .. })
        ));
    }
}
