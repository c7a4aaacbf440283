//! One multistream-select negotiation, dialer or listener, without IO.

use crate::message::{decode_message, encode_message, Decoded, MessageError, HEADER, NA};

/// Proposals a listener answers with `na` before it gives up on the dialer.
pub const MAX_ATTEMPTS: usize = 16;

/// Why a negotiation failed (the connection or stream carrying it is then useless).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error("expected the multistream header, got {0:?}")]
    NotMultistream(String),
    /// The listener answered `na` to every protocol we proposed.
    #[error("the peer supports none of {0:?}")]
    NotSupported(Vec<String>),
    /// The dialer proposed only protocols we do not speak, too many times.
    #[error("the peer proposed only {0:?}")]
    TooManyAttempts(Vec<String>),
    #[error("unexpected answer {got:?} to our proposal {proposed:?}")]
    Unexpected { proposed: String, got: String },
    #[error("no protocols to negotiate")]
    NoProtocols,
}

/// A dialer proposes `protocols` in order; a listener accepts any of them.
#[derive(Debug)]
pub struct Negotiation {
    dialer: bool,
    protocols: Vec<String>,
    /// Dialer: index of the proposal awaiting an answer.
    next: usize,
    header_seen: bool,
    /// A partial message carried between `receive` calls (at most one message long).
    partial: Vec<u8>,
    out: Vec<u8>,
    outcome: Option<String>,
    refused: Vec<String>,
}

impl Negotiation {
    /// The dialer side: queues the header and the first proposal at once (lazy).
    pub fn dialer(protocols: Vec<String>) -> Result<Self, NegotiationError> {
        let mut n = Self::new(true, protocols)?;
        encode_message(HEADER, &mut n.out)?;
        encode_message(&n.protocols[0], &mut n.out)?;
        Ok(n)
    }

    /// The listener side: queues the header; answers each proposal as it arrives.
    pub fn listener(protocols: Vec<String>) -> Result<Self, NegotiationError> {
        let mut n = Self::new(false, protocols)?;
        encode_message(HEADER, &mut n.out)?;
        Ok(n)
    }

    fn new(dialer: bool, protocols: Vec<String>) -> Result<Self, NegotiationError> {
        if protocols.is_empty() {
            return Err(NegotiationError::NoProtocols);
        }
        for p in &protocols {
            encode_message(p, &mut Vec::new())?; // refuse ids too long to send
        }
        Ok(Self {
            dialer,
            protocols,
            next: 0,
            header_seen: false,
            partial: Vec::new(),
            out: Vec::new(),
            outcome: None,
            refused: Vec::new(),
        })
    }

    /// The protocol agreed on, once there is one.
    pub fn outcome(&self) -> Option<&str> {
        self.outcome.as_deref()
    }

    /// Protocols the other side proposed (listener) that we answered `na`.
    pub fn refused(&self) -> &[String] {
        &self.refused
    }

    /// Bytes to send now.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    pub fn clear_output(&mut self) {
        self.out.clear();
    }

    /// Feeds received bytes; returns how many of `data` were used. Every byte is used until
    /// the outcome is known; the bytes after the message that decided it are left to the
    /// agreed protocol (the return value tells where they start).
    pub fn receive(&mut self, data: &[u8]) -> Result<usize, NegotiationError> {
        if self.outcome.is_some() {
            return Ok(0);
        }
        if self.partial.is_empty() {
            return self.receive_from(data, 0);
        }
        // Complete the carried message first (messages are at most ~1 KiB: cheap copy).
        let had = self.partial.len();
        let mut buf = std::mem::take(&mut self.partial);
        buf.extend_from_slice(data);
        let used = self.receive_from(&buf, 0)?;
        // `receive_from` kept any new partial itself; `used` counts bytes of `buf`.
        Ok(used.saturating_sub(had).min(data.len()))
    }

    fn receive_from(&mut self, buf: &[u8], mut pos: usize) -> Result<usize, NegotiationError> {
        while self.outcome.is_none() {
            match decode_message(&buf[pos..])? {
                Decoded::Incomplete => {
                    self.partial.extend_from_slice(&buf[pos..]);
                    return Ok(buf.len());
                }
                Decoded::Message(text, n) => {
                    pos += n;
                    self.on_message(text)?;
                }
            }
        }
        Ok(pos)
    }

    fn on_message(&mut self, text: &str) -> Result<(), NegotiationError> {
        if !self.header_seen {
            if text != HEADER {
                return Err(NegotiationError::NotMultistream(text.to_string()));
            }
            self.header_seen = true;
            return Ok(());
        }
        if self.dialer {
            let proposed = &self.protocols[self.next];
            if text == proposed {
                self.outcome = Some(proposed.clone());
            } else if text == NA {
                self.next += 1;
                match self.protocols.get(self.next) {
                    Some(p) => encode_message(p, &mut self.out)?,
                    None => return Err(NegotiationError::NotSupported(self.protocols.clone())),
                }
            } else {
                return Err(NegotiationError::Unexpected {
                    proposed: proposed.clone(),
                    got: text.to_string(),
                });
            }
            return Ok(());
        }
        if let Some(p) = self.protocols.iter().find(|p| *p == text) {
            encode_message(p, &mut self.out)?;
            self.outcome = Some(p.clone());
            return Ok(());
        }
        if self.refused.len() >= MAX_ATTEMPTS {
            return Err(NegotiationError::TooManyAttempts(self.refused.clone()));
        }
        self.refused.push(text.to_string());
        encode_message(NA, &mut self.out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Runs both sides to the end, one byte at a time when `bytewise`.
    fn run(
        d: &mut Negotiation,
        l: &mut Negotiation,
        bytewise: bool,
    ) -> Result<(), NegotiationError> {
        for _ in 0..64 {
            for (from, to) in [(0, 1), (1, 0)] {
                let (a, b) = if from == 0 {
                    (&mut *d, &mut *l)
                } else {
                    (&mut *l, &mut *d)
                };
                let _ = to;
                let out = a.output().to_vec();
                a.clear_output();
                if bytewise {
                    for byte in out.chunks(1) {
                        b.receive(byte)?;
                    }
                } else {
                    b.receive(&out)?;
                }
            }
            if d.outcome().is_some() && l.outcome().is_some() {
                return Ok(());
            }
        }
        panic!("negotiation did not end");
    }

    #[test]
    fn agrees_on_the_first_shared_protocol() {
        for bytewise in [false, true] {
            let mut d = Negotiation::dialer(ids(&["/mplex/6.7.0", "/yamux/1.0.0"])).unwrap();
            let mut l = Negotiation::listener(ids(&["/yamux/1.0.0"])).unwrap();
            run(&mut d, &mut l, bytewise).unwrap();
            assert_eq!(d.outcome(), Some("/yamux/1.0.0"));
            assert_eq!(l.outcome(), Some("/yamux/1.0.0"));
            assert_eq!(l.refused(), ["/mplex/6.7.0"]);
        }
    }

    #[test]
    fn dialer_fails_when_nothing_is_shared() {
        let mut d = Negotiation::dialer(ids(&["/yamux/1.0.0"])).unwrap();
        let mut l = Negotiation::listener(ids(&["/mplex/6.7.0"])).unwrap();
        let err = run(&mut d, &mut l, false).unwrap_err();
        assert_eq!(err, NegotiationError::NotSupported(ids(&["/yamux/1.0.0"])));
        assert_eq!(l.refused(), ["/yamux/1.0.0"]);
    }

    #[test]
    fn leaves_the_bytes_after_the_last_message() {
        let mut l = Negotiation::listener(ids(&["/p"])).unwrap();
        let mut msg = Vec::new();
        encode_message(HEADER, &mut msg).unwrap();
        encode_message("/p", &mut msg).unwrap();
        let split = 3;
        assert_eq!(l.receive(&msg[..split]).unwrap(), split);
        let mut rest = msg[split..].to_vec();
        rest.extend_from_slice(b"DATA");
        let used = l.receive(&rest).unwrap();
        assert_eq!(&rest[used..], b"DATA");
        assert_eq!(l.outcome(), Some("/p"));
    }

    #[test]
    fn refuses_bad_input() {
        let mut l = Negotiation::listener(ids(&["/p"])).unwrap();
        let mut msg = Vec::new();
        encode_message("/not-multistream", &mut msg).unwrap();
        assert!(matches!(
            l.receive(&msg),
            Err(NegotiationError::NotMultistream(_))
        ));
        let mut l = Negotiation::listener(ids(&["/p"])).unwrap();
        let mut msg = Vec::new();
        encode_message(HEADER, &mut msg).unwrap();
        for i in 0..=MAX_ATTEMPTS {
            encode_message(&format!("/x/{i}"), &mut msg).unwrap();
        }
        assert!(matches!(
            l.receive(&msg),
            Err(NegotiationError::TooManyAttempts(_))
        ));
        assert!(Negotiation::dialer(vec![]).is_err());
    }
}
