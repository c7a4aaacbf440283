//! multistream-select 1.0 without IO: the message codec and one negotiation.
//!
//! A message is `uvarint(len) || text || "\n"`. A [`Negotiation`] is fed bytes with
//! [`Negotiation::receive`] and queues its answers in [`Negotiation::take_output`]; once
//! [`Negotiation::outcome`] is `Some`, the bytes after the last message belong to the
//! protocol that was agreed. The dialer proposes lazily: the header and its first proposal
//! leave together, and each `na` brings the next proposal (go-multistream and rust-libp2p
//! listeners accept that).

mod message;
mod negotiation;

pub use message::{decode_message, encode_message, Decoded, MessageError, HEADER, MAX_MESSAGE, NA};
pub use negotiation::{Negotiation, NegotiationError, MAX_ATTEMPTS};
