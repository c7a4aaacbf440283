//! The XX handshake as libp2p runs it:
//!
//! ```text
//! -> e
//! <- e, ee, s, es
//! -> s, se
//! ```
//!
//! Sans-IO: each call consumes or produces one message body (without the 2-byte length prefix
//! the caller frames it with). Any error poisons the state: a failed handshake never resumes.

use ring::rand::{SecureRandom, SystemRandom};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

use crate::cipher::TAG_LEN;
use crate::symmetric::{SymmetricState, HASHLEN};
use crate::transport::Transport;
use crate::{NoiseError, MAX_MESSAGE_LEN};

/// x25519 public key and DH output length.
pub const DHLEN: usize = 32;

/// An x25519 key pair: the secret zeroizes itself on drop.
struct KeyPair {
    secret: StaticSecret,
    public: [u8; DHLEN],
}

impl KeyPair {
    fn from_secret(mut bytes: [u8; DHLEN]) -> Self {
        let secret = StaticSecret::from(bytes);
        bytes.zeroize();
        let public = PublicKey::from(&secret).to_bytes();
        Self { secret, public }
    }

    fn generate() -> Result<Self, NoiseError> {
        let mut bytes = [0u8; DHLEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| NoiseError::Rng)?;
        Ok(Self::from_secret(bytes))
    }

    /// DH(self, remote); a low-order remote key (all-zero output) is rejected.
    fn dh(&self, remote: &[u8; DHLEN]) -> Result<[u8; DHLEN], NoiseError> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*remote));
        if !shared.was_contributory() {
            return Err(NoiseError::LowOrderKey);
        }
        Ok(shared.to_bytes())
    }
}

/// Generates a fresh x25519 static secret from the OS random generator.
pub fn generate_static_secret() -> Result<[u8; DHLEN], NoiseError> {
    let mut bytes = [0u8; DHLEN];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| NoiseError::Rng)?;
    Ok(bytes)
}

/// The public key that belongs to an x25519 static secret.
pub fn public_key_of(secret: &[u8; DHLEN]) -> [u8; DHLEN] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

/// Where the handshake is: which message is due next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Message 1 (`-> e`) is due.
    First,
    /// Message 2 (`<- e, ee, s, es`) is due.
    Second,
    /// Message 3 (`-> s, se`) is due.
    Third,
    /// All three messages were processed: ready for `into_transport`.
    Done,
    /// An error aborted the handshake.
    Failed,
}

/// One side of a `Noise_XX_25519_ChaChaPoly_SHA256` handshake.
pub struct Handshake {
    initiator: bool,
    step: Step,
    ss: SymmetricState,
    s: KeyPair,
    e: Option<KeyPair>,
    fixed_e: Option<[u8; DHLEN]>,
    rs: Option<[u8; DHLEN]>,
    re: Option<[u8; DHLEN]>,
}

impl Handshake {
    /// A new handshake. `static_secret` is our x25519 static secret (generated when `None`);
    /// `prologue` is mixed into the hash first (libp2p uses an empty one).
    pub fn new(
        initiator: bool,
        static_secret: Option<[u8; DHLEN]>,
        prologue: &[u8],
    ) -> Result<Self, NoiseError> {
        let s = match static_secret {
            Some(bytes) => KeyPair::from_secret(bytes),
            None => KeyPair::generate()?,
        };
        let mut ss = SymmetricState::initialize();
        ss.mix_hash(prologue);
        Ok(Self {
            initiator,
            step: Step::First,
            ss,
            s,
            e: None,
            fixed_e: None,
            rs: None,
            re: None,
        })
    }

    /// The initiator (dialer) side with a generated static key and empty prologue.
    pub fn initiator() -> Result<Self, NoiseError> {
        Self::new(true, None, &[])
    }

    /// The responder (listener) side with a generated static key and empty prologue.
    pub fn responder() -> Result<Self, NoiseError> {
        Self::new(false, None, &[])
    }

    /// Fixes the ephemeral secret instead of drawing one: only for reproducing test vectors.
    #[doc(hidden)]
    pub fn set_ephemeral_for_test(&mut self, secret: [u8; DHLEN]) {
        self.fixed_e = Some(secret);
    }

    /// True for the side that sends the first message.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// Our static x25519 public key (what the libp2p payload signs).
    pub fn local_static_public(&self) -> [u8; DHLEN] {
        self.s.public
    }

    /// The peer's static x25519 public key, once its `s` token was decrypted.
    pub fn remote_static_public(&self) -> Option<[u8; DHLEN]> {
        self.rs
    }

    /// The handshake hash `h` so far.
    pub fn handshake_hash(&self) -> [u8; HASHLEN] {
        self.ss.handshake_hash()
    }

    /// True once all three messages were written or read.
    pub fn is_finished(&self) -> bool {
        self.step == Step::Done
    }

    /// True when it is our turn to write the next message.
    pub fn is_my_turn(&self) -> bool {
        match self.step {
            Step::First | Step::Third => self.initiator,
            Step::Second => !self.initiator,
            Step::Done | Step::Failed => false,
        }
    }

    fn check_state(&self, writing: bool) -> Result<(), NoiseError> {
        match self.step {
            Step::Failed => Err(NoiseError::Poisoned),
            Step::Done => Err(NoiseError::OutOfOrder("handshake already finished")),
            _ if self.is_my_turn() != writing => Err(NoiseError::OutOfOrder(if writing {
                "expected to read a message, not write one"
            } else {
                "expected to write a message, not read one"
            })),
            _ => Ok(()),
        }
    }

    /// Fixed overhead of the message due next, excluding the payload.
    fn overhead(step: Step) -> usize {
        match step {
            Step::First => DHLEN,
            Step::Second => DHLEN + DHLEN + TAG_LEN + TAG_LEN,
            Step::Third => DHLEN + TAG_LEN + TAG_LEN,
            Step::Done | Step::Failed => 0,
        }
    }

    /// Writes the next handshake message carrying `payload`; returns its body (no length
    /// prefix). Fails when it is not our turn or the message would exceed 65535 bytes.
    pub fn write_message(&mut self, payload: &[u8]) -> Result<Vec<u8>, NoiseError> {
        self.check_state(true)?;
        let total = Self::overhead(self.step) + payload.len();
        if total > MAX_MESSAGE_LEN {
            return Err(NoiseError::TooLarge(total));
        }
        let result = self.write_inner(payload, total);
        if result.is_err() {
            self.step = Step::Failed;
        }
        result
    }

    fn write_inner(&mut self, payload: &[u8], total: usize) -> Result<Vec<u8>, NoiseError> {
        let mut out = Vec::with_capacity(total);
        match self.step {
            Step::First => {
                self.write_e(&mut out)?;
                self.ss.encrypt_and_hash(payload, &mut out)?;
                self.step = Step::Second;
            }
            Step::Second => {
                self.write_e(&mut out)?;
                self.mix_dh_ee()?;
                let s_pub = self.s.public;
                self.ss.encrypt_and_hash(&s_pub, &mut out)?;
                // es: responder uses its static with the initiator's ephemeral.
                let re = self
                    .re
                    .ok_or(NoiseError::OutOfOrder("no remote ephemeral"))?;
                self.mix_dh(&re, false)?;
                self.ss.encrypt_and_hash(payload, &mut out)?;
                self.step = Step::Third;
            }
            Step::Third => {
                let s_pub = self.s.public;
                self.ss.encrypt_and_hash(&s_pub, &mut out)?;
                // se: initiator uses its static with the responder's ephemeral.
                let re = self
                    .re
                    .ok_or(NoiseError::OutOfOrder("no remote ephemeral"))?;
                self.mix_dh(&re, false)?;
                self.ss.encrypt_and_hash(payload, &mut out)?;
                self.step = Step::Done;
            }
            Step::Done | Step::Failed => return Err(NoiseError::Poisoned),
        }
        Ok(out)
    }

    /// Reads the next handshake message body and returns its decrypted payload. Fails on
    /// truncation, a bad tag, an oversize message, or when it is our turn to write.
    pub fn read_message(&mut self, message: &[u8]) -> Result<Vec<u8>, NoiseError> {
        self.check_state(false)?;
        if message.len() > MAX_MESSAGE_LEN {
            self.step = Step::Failed;
            return Err(NoiseError::TooLarge(message.len()));
        }
        let need = Self::overhead(self.step);
        if message.len() < need {
            self.step = Step::Failed;
            return Err(NoiseError::Truncated {
                len: message.len(),
                need,
            });
        }
        let result = self.read_inner(message);
        if result.is_err() {
            self.step = Step::Failed;
        }
        result
    }

    fn read_inner(&mut self, message: &[u8]) -> Result<Vec<u8>, NoiseError> {
        match self.step {
            Step::First => {
                let rest = self.read_e(message);
                let payload = self.ss.decrypt_and_hash(rest)?;
                self.step = Step::Second;
                Ok(payload)
            }
            Step::Second => {
                let rest = self.read_e(message);
                self.mix_dh_ee()?;
                let (s_ct, rest) = rest.split_at(DHLEN + TAG_LEN);
                self.read_s(s_ct)?;
                // es: initiator uses its ephemeral with the responder's static.
                let rs = self.rs.ok_or(NoiseError::OutOfOrder("no remote static"))?;
                self.mix_dh(&rs, true)?;
                let payload = self.ss.decrypt_and_hash(rest)?;
                self.step = Step::Third;
                Ok(payload)
            }
            Step::Third => {
                let (s_ct, rest) = message.split_at(DHLEN + TAG_LEN);
                self.read_s(s_ct)?;
                // se: responder uses its ephemeral with the initiator's static.
                let rs = self.rs.ok_or(NoiseError::OutOfOrder("no remote static"))?;
                self.mix_dh(&rs, true)?;
                let payload = self.ss.decrypt_and_hash(rest)?;
                self.step = Step::Done;
                Ok(payload)
            }
            Step::Done | Step::Failed => Err(NoiseError::Poisoned),
        }
    }

    /// Token `e` (write): make an ephemeral, send its public key in clear, MixHash it.
    fn write_e(&mut self, out: &mut Vec<u8>) -> Result<(), NoiseError> {
        let e = match self.fixed_e.take() {
            Some(bytes) => KeyPair::from_secret(bytes),
            None => KeyPair::generate()?,
        };
        out.extend_from_slice(&e.public);
        self.ss.mix_hash(&e.public);
        self.e = Some(e);
        Ok(())
    }

    /// Token `e` (read): take the remote ephemeral, MixHash it; returns the rest.
    /// The caller checked the message is long enough.
    fn read_e<'m>(&mut self, message: &'m [u8]) -> &'m [u8] {
        let (re, rest) = message.split_at(DHLEN);
        let mut key = [0u8; DHLEN];
        key.copy_from_slice(re);
        self.ss.mix_hash(&key);
        self.re = Some(key);
        rest
    }

    /// Token `s` (read): decrypt the remote static key.
    fn read_s(&mut self, ciphertext: &[u8]) -> Result<(), NoiseError> {
        let plain = self.ss.decrypt_and_hash(ciphertext)?;
        let key: [u8; DHLEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| NoiseError::Truncated {
                len: plain.len(),
                need: DHLEN,
            })?;
        self.rs = Some(key);
        Ok(())
    }

    /// Token `ee`.
    fn mix_dh_ee(&mut self) -> Result<(), NoiseError> {
        let re = self
            .re
            .ok_or(NoiseError::OutOfOrder("no remote ephemeral"))?;
        self.mix_dh(&re, true)
    }

    /// MixKey(DH(local, remote)) with our ephemeral (`use_ephemeral`) or static key.
    fn mix_dh(&mut self, remote: &[u8; DHLEN], use_ephemeral: bool) -> Result<(), NoiseError> {
        let local = if use_ephemeral {
            self.e
                .as_ref()
                .ok_or(NoiseError::OutOfOrder("no local ephemeral"))?
        } else {
            &self.s
        };
        let mut shared = local.dh(remote)?;
        self.ss.mix_key(&shared);
        shared.zeroize();
        Ok(())
    }

    /// Splits the finished handshake into the transport cipher pair.
    pub fn into_transport(self) -> Result<Transport, NoiseError> {
        match self.step {
            Step::Done => {}
            Step::Failed => return Err(NoiseError::Poisoned),
            _ => return Err(NoiseError::NotFinished),
        }
        let rs = self.rs.ok_or(NoiseError::NotFinished)?;
        let (c1, c2) = self.ss.split();
        let (send, recv) = if self.initiator { (c1, c2) } else { (c2, c1) };
        Ok(Transport::new(
            send,
            recv,
            self.ss.handshake_hash(),
            rs,
            self.initiator,
        ))
    }
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("initiator", &self.initiator)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}
