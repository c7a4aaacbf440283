//! Two connections wired in memory, plaintext and over a toy framed cipher (Noise and TLS in
//! their own files): reads of any size, the muxer negotiation, sends by reference, pnet.

use std::ops::Range;

use rapidp2p_conn::pnet::{PreSharedKey, Protector};
use rapidp2p_conn::yamux::{Config, Event, Role};
use rapidp2p_conn::{ConnError, Connection, DataRange, NoCipher, SecureChannel};

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

    fn encrypt_gather_to_slice(&mut self, segs: &[&[u8]], out: &mut [u8]) -> Result<usize, String> {
        self.encrypt_to_slice(&segs.concat(), out)
    }

    fn decrypt_in_place(
        &mut self,
        buf: &mut [u8],
        plain: &mut Vec<Range<usize>>,
    ) -> Result<usize, String> {
        let mut pos = 0;
        while buf.len() >= pos + 2 {
            let len = u16::from_be_bytes([buf[pos], buf[pos + 1]]) as usize;
            if buf.len() < pos + 2 + len {
                break;
            }
            if len == 0 {
                return Err("short frame".into());
            }
            let body = pos + 2..pos + 1 + len;
            for b in &mut buf[body.clone()] {
                *b ^= self.recv_nonce;
            }
            if sum(&buf[body.clone()], self.recv_nonce) != buf[pos + 1 + len] {
                return Err("bad tag".into());
            }
            self.recv_nonce = self.recv_nonce.wrapping_add(1);
            plain.push(body);
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
        Connection::new(a, Role::Client, cfg(), None).unwrap(),
        Connection::new(b, Role::Server, cfg(), None).unwrap(),
    )
}

fn yamux_ids(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

/// What a binding does: each read lands in a fresh buffer (as a shared read buffer would),
/// DATA is resolved from the ranges right after the call.
fn feed<T: SecureChannel>(
    to: &mut Connection<T>,
    wire: &[u8],
    read: usize,
) -> Result<Vec<Event>, ConnError> {
    let mut all = Vec::new();
    for chunk in wire.chunks(read.max(1)) {
        let mut buf = chunk.to_vec();
        let (mut ev, mut ranges): (Vec<Event>, Vec<DataRange>) = (Vec::new(), Vec::new());
        to.receive(&mut buf, 0.0, &mut ev, &mut ranges)?;
        for (idx, r) in ranges {
            match &mut ev[idx] {
                // Bytes it owns (from a carried frame) come first, then its ranges.
                Event::Data(_, d) => d.extend_from_slice(&buf[r]),
                other => panic!("range for {other:?}"),
            }
        }
        all.extend(ev);
    }
    Ok(all)
}

fn transfer<T: SecureChannel>(
    from: &mut Connection<T>,
    to: &mut Connection<T>,
    read: usize,
) -> Result<Vec<Event>, ConnError> {
    let wire = from.take_output()?;
    feed(to, &wire, read)
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

fn round_trip<T: SecureChannel>(mut c: Connection<T>, mut s: Connection<T>, read: usize) {
    let id = c.open_stream().unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(c.send(id, &payload, true).unwrap(), payload.len());
    let ev = transfer(&mut c, &mut s, read).unwrap();
    assert_eq!(ev.first(), Some(&Event::StreamOpened(id)));
    assert_eq!(data_of(&ev, id), payload);
    assert_eq!(ev.last(), Some(&Event::Fin(id)));
    assert_eq!(s.carried(), 0, "nothing carried once every frame arrived");
    s.send(id, b"pong", true).unwrap();
    let ev = transfer(&mut s, &mut c, read).unwrap();
    assert_eq!(data_of(&ev, id), b"pong");
    assert_eq!(c.num_streams(), 0);
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
    for read in [1, 2, 3, 999, 1000, 1003, 4096, 65_536, 1 << 20] {
        let (c, s) = pair(Some(Toy::default()), Some(Toy::default()));
        assert!(c.is_encrypted());
        round_trip(c, s, read);
    }
}

#[test]
fn data_is_coalesced_per_stream_per_read() {
    let (mut c, mut s) = pair(Some(Toy::default()), Some(Toy::default()));
    let id = c.open_stream().unwrap();
    let payload = vec![7u8; 50_000];
    c.send(id, &payload, false).unwrap();
    let wire = c.take_output().unwrap();
    let read = 4093;
    let ev = feed(&mut s, &wire, read).unwrap();
    assert_eq!(data_of(&ev, id), payload);
    let datas = ev.iter().filter(|e| matches!(e, Event::Data(..))).count();
    // At most one event from the carried frame and one from the rest, per read.
    assert!(datas <= 2 * wire.len().div_ceil(read));
}

#[test]
fn output_len_is_exact() {
    let (mut c, _s) = pair(Some(Toy::default()), Some(Toy::default()));
    let id = c.open_stream().unwrap();
    c.send(id, &vec![1u8; 5000], false).unwrap();
    let n = c.output_len();
    assert_eq!(c.pending_output(), n);
    let mut buf = vec![0u8; n];
    assert_eq!(c.flush_into(&mut buf).unwrap(), n);
    assert_eq!(c.output_len(), 0);
    assert_eq!(c.take_output().unwrap(), Vec::<u8>::new());
}

#[test]
fn large_bodies_are_queued_by_reference() {
    let (mut c, mut s) = pair(Some(Toy::default()), Some(Toy::default()));
    let id = c.open_stream().unwrap();
    let payload: Vec<u8> = (0..20_000u32).map(|i| (i % 241) as u8).collect();
    let mut shared = Vec::new();
    let n = c
        .send_ref(id, &payload, false, |r| {
            shared.push(r.clone());
            Some(payload[r].to_vec())
        })
        .unwrap();
    assert_eq!(n, payload.len());
    assert!(!shared.is_empty(), "bodies of REF_MIN and more are shared");
    c.ping(0.0).unwrap(); // queued after the data: must follow it on the wire
    let ev = transfer(&mut c, &mut s, 4096).unwrap();
    assert_eq!(data_of(&ev, id), payload);
    assert!(s.pending_output() > 0, "the pong is queued");
}

#[test]
fn tampered_frame_fails_and_queues_goaway() {
    for split in [false, true] {
        let (mut c, mut s) = pair(Some(Toy::default()), Some(Toy::default()));
        let id = c.open_stream().unwrap();
        c.send(id, b"hello", false).unwrap();
        let mut wire = c.take_output().unwrap();
        let last = wire.len() - 2;
        wire[last] ^= 0x40;
        // Split: the bad frame is completed from the carried bytes.
        let read = if split { 3 } else { wire.len() };
        assert!(matches!(
            feed(&mut s, &wire, read),
            Err(ConnError::Crypto(_))
        ));
        assert!(s.is_closed());
        assert!(s.output_len() > 0, "GoAway queued");
        // Input after the failure is ignored.
        assert!(feed(&mut s, &wire, wire.len()).is_ok());
    }
}

#[test]
fn yamux_violation_surfaces_as_mux_error() {
    let (_c, mut s) = pair::<NoCipher>(None, None);
    let bad = [1u8, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    assert!(matches!(feed(&mut s, &bad, 12), Err(ConnError::Mux(_))));
    assert!(s.is_closed());
    assert_eq!(s.output_len(), 12, "GoAway(protocol error) queued");
}

#[test]
fn muxer_negotiated_inside_the_channel_then_pipelined_frames() {
    for read in [1, 5, 4096] {
        let ids = yamux_ids(&["/yamux/1.0.0"]);
        let mut c =
            Connection::new(Some(Toy::default()), Role::Client, cfg(), ids.clone()).unwrap();
        let mut s = Connection::new(Some(Toy::default()), Role::Server, cfg(), ids).unwrap();
        assert_eq!(c.muxer(), None);
        assert!(
            c.open_stream().is_err(),
            "no streams before the muxer is agreed"
        );
        // Listener: header; dialer: header + proposal, each side's in one flush.
        let ev = transfer(&mut c, &mut s, read).unwrap();
        assert!(ev.is_empty());
        assert_eq!(s.take_muxer_selected().as_deref(), Some("/yamux/1.0.0"));
        assert_eq!(s.take_muxer_selected(), None, "reported once");
        // The listener opens a stream at once: its frames follow its answer in one read.
        let id = s.open_stream().unwrap();
        s.send(id, b"early", false).unwrap();
        let ev = transfer(&mut s, &mut c, read).unwrap();
        assert_eq!(c.muxer(), Some("/yamux/1.0.0"));
        assert_eq!(c.take_muxer_selected().as_deref(), Some("/yamux/1.0.0"));
        assert_eq!(data_of(&ev, id), b"early");
        // Plaintext negotiation works the same.
        let ids = yamux_ids(&["/yamux/1.0.0"]);
        let mut c = Connection::<NoCipher>::new(None, Role::Client, cfg(), ids.clone()).unwrap();
        let mut s = Connection::<NoCipher>::new(None, Role::Server, cfg(), ids).unwrap();
        let wire = c.take_output().unwrap();
        assert!(wire.starts_with(b"\x13/multistream/1.0.0\n"));
        feed(&mut s, &wire, read).unwrap();
        assert_eq!(s.muxer(), Some("/yamux/1.0.0"));
    }
}

#[test]
fn muxer_negotiation_failure_is_typed() {
    let mut c =
        Connection::<NoCipher>::new(None, Role::Client, cfg(), yamux_ids(&["/yamux/1.0.0"]))
            .unwrap();
    let mut s =
        Connection::<NoCipher>::new(None, Role::Server, cfg(), yamux_ids(&["/mplex/6.7.0"]))
            .unwrap();
    let wire = c.take_output().unwrap();
    feed(&mut s, &wire, wire.len()).unwrap();
    let wire = s.take_output().unwrap();
    assert!(matches!(
        feed(&mut c, &wire, wire.len()),
        Err(ConnError::Negotiation(_))
    ));
}

#[test]
fn private_network_layer_under_the_cipher() {
    let psk = PreSharedKey::new([9; 32]);
    let (mut c, mut s) = pair(Some(Toy::default()), Some(Toy::default()));
    let mut pc = Protector::new(&psk, [1; 24]);
    let mut ps = Protector::new(&psk, [2; 24]);
    // The nonces cross first (the driver does this before the connection exists).
    let mut n = *ps.local_nonce();
    assert_eq!(pc.decrypt(&mut n), 24);
    let mut n = *pc.local_nonce();
    assert_eq!(ps.decrypt(&mut n), 24);
    c.set_protector(pc);
    s.set_protector(ps);
    assert!(c.is_protected());
    round_trip(c, s, 1001);
}

#[test]
fn mplex_is_negotiated_when_the_listener_lacks_yamux() {
    // Any read size, ciphered: the negotiation, then mplex frames split across Toy frames.
    for read in [1, 7, 100, 5000] {
        let ids = yamux_ids(&["/yamux/1.0.0", "/mplex/6.7.0"]);
        let mut c =
            Connection::new(Some(Toy::default()), Role::Client, cfg(), ids.clone()).unwrap();
        let mut s = Connection::new(
            Some(Toy::default()),
            Role::Server,
            cfg(),
            yamux_ids(&["/mplex/6.7.0"]),
        )
        .unwrap();
        c.set_mplex_config(rapidp2p_conn::mplex::Config::default())
            .unwrap();
        for _ in 0..4 {
            transfer(&mut c, &mut s, read).unwrap();
            transfer(&mut s, &mut c, read).unwrap();
        }
        assert_eq!(c.muxer(), Some("/mplex/6.7.0"));
        assert_eq!(s.muxer(), Some("/mplex/6.7.0"));
        assert!(c.mplex().is_some() && c.yamux().is_none());
        let id = c.open_stream().unwrap();
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
        c.send(id, &big, false).unwrap();
        c.send(id, b"tail", true).unwrap();
        let ev = transfer(&mut c, &mut s, read).unwrap();
        assert_eq!(ev.first(), Some(&Event::StreamOpened(2)));
        let mut want = big.clone();
        want.extend_from_slice(b"tail");
        assert_eq!(data_of(&ev, 2), want);
        assert_eq!(ev.last(), Some(&Event::Fin(2)));
        if read >= 5000 {
            // One DATA event per stream per read, across cipher frames.
            let n = ev.iter().filter(|e| matches!(e, Event::Data(..))).count();
            assert!(n <= 70_004 / read + 2, "{n} data events");
        }
        s.ack(2, want.len() as u32, None).unwrap();
        s.send(2, b"back", true).unwrap();
        let ev = transfer(&mut s, &mut c, read).unwrap();
        assert_eq!(data_of(&ev, id), b"back");
        assert_eq!(c.num_streams(), 0);
        // mplex has no ping, windows or timers.
        assert!(matches!(c.ping(0.0), Err(ConnError::Mplex(_))));
        assert_eq!(c.next_timer(), None);
    }
}

#[test]
fn mplex_agreed_early_and_its_violations_are_typed() {
    let cfg_m = rapidp2p_conn::mplex::Config::default();
    let mut c = Connection::<NoCipher>::new_mplex(None, cfg_m.clone()).unwrap();
    let mut s = Connection::<NoCipher>::new_mplex(None, cfg_m).unwrap();
    assert_eq!(c.muxer(), Some("/mplex/6.7.0"));
    let id = c.open_stream().unwrap();
    c.send(id, b"hi", false).unwrap();
    let ev = transfer(&mut c, &mut s, 3).unwrap();
    assert_eq!(data_of(&ev, 2), b"hi");
    // Flag 7 is no mplex frame: the connection fails with a typed error.
    assert!(matches!(
        feed(&mut s, &[0x0f, 0], 2),
        Err(ConnError::Mplex(rapidp2p_conn::mplex::Error::Protocol(_)))
    ));
    assert!(s.is_closed());
}
