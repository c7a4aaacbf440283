//! Two connections wired in memory, plaintext and over a toy framed cipher (the Noise transport
//! is exercised by the Python tests and the benches).

use rapidp2p_conn::yamux::{Config, Event, Role};
use rapidp2p_conn::{ConnError, Connection, NoCipher, SecureChannel};

/// Frames of `[u16 len][body xor nonce][1-byte sum]`, at most 1000 plaintext bytes each; a
/// wrong sum (tampering, reordering) fails. Enough to exercise tails and frame splits.
#[derive(Debug, Default)]
struct Toy {
    send_nonce: u8,
    recv_nonce: u8,
}

const TOY_MAX: usize = 1000;

fn sum(b: &[u8], nonce: u8) -> u8 {
    b.iter().fold(nonce, |a, x| a.wrapping_add(*x))
}

impl SecureChannel for Toy {
    type Error = String;

    fn encrypted_len(&self, n: usize) -> usize {
        n + n.div_ceil(TOY_MAX) * 3
    }

    fn encrypt_to_slice(&mut self, p: &[u8], out: &mut [u8]) -> Result<usize, String> {
        let mut v = Vec::new();
        self.encrypt(p, &mut v)?;
        out[..v.len()].copy_from_slice(&v);
        Ok(v.len())
    }

    fn encrypt(&mut self, p: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        for c in p.chunks(TOY_MAX) {
            out.extend_from_slice(&((c.len() + 1) as u16).to_be_bytes());
            out.extend(c.iter().map(|b| b ^ self.send_nonce));
            out.push(sum(c, self.send_nonce));
            self.send_nonce = self.send_nonce.wrapping_add(1);
        }
        Ok(())
    }

    fn decrypt(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
        let mut pos = 0;
        while input.len() >= pos + 2 {
            let len = u16::from_be_bytes([input[pos], input[pos + 1]]) as usize;
            if input.len() < pos + 2 + len {
                break;
            }
            if len == 0 {
                return Err("short frame".into());
            }
            let body = &input[pos + 2..pos + 1 + len];
            let plain: Vec<u8> = body.iter().map(|b| b ^ self.recv_nonce).collect();
            if sum(&plain, self.recv_nonce) != input[pos + 1 + len] {
                return Err("bad tag".into());
            }
            out.extend_from_slice(&plain);
            self.recv_nonce = self.recv_nonce.wrapping_add(1);
            pos += 2 + len;
        }
        Ok(pos)
    }
}

fn cfg() -> Config {
    Config {
        keepalive_interval: None,
        ..Config::default()
    }
}

fn pair<T: SecureChannel>(a: Option<T>, b: Option<T>) -> (Connection<T>, Connection<T>) {
    (
        Connection::new(a, Role::Client, cfg()).unwrap(),
        Connection::new(b, Role::Server, cfg()).unwrap(),
    )
}

fn transfer<T: SecureChannel>(
    from: &mut Connection<T>,
    to: &mut Connection<T>,
    chunk: usize,
) -> Result<Vec<Event>, ConnError> {
    let wire = from.take_output()?;
    let mut ev = Vec::new();
    for c in wire.chunks(chunk.max(1)) {
        to.receive(c, 0.0, &mut ev)?;
    }
    Ok(ev)
}

fn data_of(events: &[Event], id: u32) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data(s, d) if *s == id => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn round_trip<T: SecureChannel>(mut c: Connection<T>, mut s: Connection<T>, chunk: usize) {
    let id = c.session_mut().open_stream().unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(
        c.session_mut().send(id, &payload, true).unwrap(),
        payload.len()
    );
    let ev = transfer(&mut c, &mut s, chunk).unwrap();
    assert_eq!(ev.first(), Some(&Event::StreamOpened(id)));
    assert_eq!(data_of(&ev, id), payload);
    assert_eq!(ev.last(), Some(&Event::Fin(id)));
    s.session_mut().send(id, b"pong", true).unwrap();
    let ev = transfer(&mut s, &mut c, chunk).unwrap();
    assert_eq!(data_of(&ev, id), b"pong");
    assert_eq!(c.session().num_streams(), 0);
}

#[test]
fn plaintext_round_trip() {
    let (c, s) = pair::<NoCipher>(None, None);
    assert!(!c.is_encrypted());
    round_trip(c, s, 1 << 20);
    let (c, s) = pair::<NoCipher>(None, None);
    round_trip(c, s, 7);
}

#[test]
fn ciphered_round_trip_any_read_size() {
    for chunk in [1, 2, 3, 1000, 1003, 4096, 1 << 20] {
        let (c, s) = pair(Some(Toy::default()), Some(Toy::default()));
        assert!(c.is_encrypted());
        round_trip(c, s, chunk);
    }
}

#[test]
fn output_len_is_exact() {
    let (mut c, _s) = pair(Some(Toy::default()), Some(Toy::default()));
    let id = c.session_mut().open_stream().unwrap();
    c.session_mut().send(id, &vec![1u8; 5000], false).unwrap();
    let n = c.output_len();
    let mut buf = vec![0u8; n];
    assert_eq!(c.write_output_to_slice(&mut buf).unwrap(), n);
    assert_eq!(c.output_len(), 0);
    assert_eq!(c.take_output().unwrap(), Vec::<u8>::new());
}

#[test]
fn tampered_frame_fails_and_queues_goaway() {
    let (mut c, mut s) = pair(Some(Toy::default()), Some(Toy::default()));
    let id = c.session_mut().open_stream().unwrap();
    c.session_mut().send(id, b"hello", false).unwrap();
    let mut wire = c.take_output().unwrap();
    let last = wire.len() - 2;
    wire[last] ^= 0x40;
    let mut ev = Vec::new();
    assert!(matches!(
        s.receive(&wire, 0.0, &mut ev),
        Err(ConnError::Crypto(_))
    ));
    assert!(s.is_closed());
    assert!(s.output_len() > 0, "GoAway queued");
    // Input after the failure is ignored.
    assert_eq!(s.receive(&wire, 0.0, &mut ev), Ok(()));
}

#[test]
fn yamux_violation_surfaces_as_mux_error() {
    let (_c, mut s) = pair::<NoCipher>(None, None);
    let mut ev = Vec::new();
    let bad = [1u8, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    assert!(matches!(
        s.receive(&bad, 0.0, &mut ev),
        Err(ConnError::Mux(_))
    ));
    assert!(s.is_closed());
    assert_eq!(s.output_len(), 12, "GoAway(protocol error) queued");
}

#[test]
fn preamble_then_muxer_with_pipelined_frames() {
    let (mut c, mut s) = pair(Some(Toy::default()), Some(Toy::default()));
    // Client: negotiation line, then (pipelined) opens a stream before the answer arrived.
    c.send_preamble(b"/multistream/1.0.0\n").unwrap();
    let id = c.session_mut().open_stream().unwrap();
    let mut wire = c.take_output().unwrap();
    assert_eq!(
        wire.len(),
        3 + 19,
        "muxer output is held while the preamble runs"
    );
    let mut ev = Vec::new();
    c.start_muxer(b"", 0.0, &mut ev).unwrap();
    c.session_mut().send(id, b"after", false).unwrap();
    wire.extend(c.take_output().unwrap());
    // Server: the preamble arrives in pieces, then yamux frames follow in the same read.
    assert!(
        s.receive_preamble(&wire[..10]).unwrap().is_empty(),
        "no complete frame yet"
    );
    assert_eq!(
        s.receive_preamble(&wire[10..22]).unwrap(),
        b"/multistream/1.0.0\n"
    );
    let mut ev = Vec::new();
    s.receive(&wire[22..], 0.0, &mut ev).unwrap();
    assert_eq!(data_of(&ev, id), b"after");
    assert!(
        s.send_preamble(b"x").is_err(),
        "no preamble once the muxer started"
    );
}

#[test]
fn preamble_leftover_goes_to_start_muxer() {
    let (mut c, mut s) = pair(Some(Toy::default()), Some(Toy::default()));
    c.send_preamble(b"hello\n").unwrap();
    let mut ev = Vec::new();
    c.start_muxer(b"", 0.0, &mut ev).unwrap();
    let id = c.session_mut().open_stream().unwrap();
    c.session_mut().send(id, b"data", false).unwrap();
    let wire = c.take_output().unwrap();
    let plain = s.receive_preamble(&wire).unwrap();
    assert_eq!(&plain[..6], b"hello\n");
    s.start_muxer(&plain[6..], 0.0, &mut ev).unwrap();
    assert_eq!(data_of(&ev, id), b"data");
}
