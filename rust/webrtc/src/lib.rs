//! Sans-IO libp2p WebRTC-direct (libp2p/specs `webrtc/webrtc-direct.md`, `webrtc/README.md`).
//!
//! [`Endpoint`] is one UDP socket's worth of state: datagrams in (with the time), events and
//! datagrams out. Each connection is a str0m `Rtc` in ICE-lite mode whose ICE credentials are
//! the ufrag the dialler put in its first STUN request; DTLS runs with our persistent
//! certificate (advertised as `/certhash`) and without checking the dialler's (the Noise
//! handshake on data channel 0 authenticates both, its prologue binding both fingerprints);
//! every other data channel is one libp2p stream framed by [`framing`].

pub mod endpoint;
pub mod framing;
pub mod stun;

pub use endpoint::{
    certhash, certhash_fingerprint, fingerprint_multihash, generate_certificate, noise_prologue,
    Certificate, CloseKind, Config, Endpoint, Event, WebRtcError, MAX_REMOTE_CANDIDATES, MAX_SDP,
};
pub use framing::{Flag, FrameError, Message, MAX_MESSAGE_SIZE, MAX_PAYLOAD};
