//! Two connections wired in memory, plaintext and over a toy framed cipher (the Noise transport
//! is exercised by the Python tests and the benches).

use std::ops::Range;

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

/// What a binding does with `receive_in_place`: a fixed buffer filled by reads of `read`
/// bytes, DATA resolved from the ranges, the partial tail moved to the front.
fn feed_in_place<T: SecureChannel>(to: &mut Connection<T>, wire: &[u8], read: usize) -> Vec<Event> {
    let mut buf = vec![0u8; 70_000 + read];
    let mut len = 0;
    let mut all = Vec::new();
    for chunk in wire.chunks(read.max(1)) {
        buf[len..len + chunk.len()].copy_from_slice(chunk);
        len += chunk.len();
        let mut ev = Vec::new();
        let mut ranges: Vec<DataRange> = Vec::new();
        let used = to
            .receive_in_place(&mut buf[..len], 0.0, &mut ev, &mut ranges)
            .unwrap();
        for (idx, r) in ranges {
            match &mut ev[idx] {
                Event::Data(_, d) => d.extend_from_slice(&buf[r]),
                other => panic!("range for {other:?}"),
            }
        }
        buf.copy_within(used..len, 0);
        len -= used;
        all.extend(ev);
    }
    assert_eq!(len, 0, "every frame consumed at the end");
    all
}

/// What a binding does on the send side: data frames queued by reference through
/// `send_with`, everything sealed at once by `seal_gather`.
fn send_gathered<T: SecureChannel>(
    c: &mut Connection<T>,
    id: u32,
    data: &[u8],
    fin: bool,
) -> Vec<u8> {
    let mut own: Vec<Vec<u8>> = Vec::new();
    c.drain_plaintext(&mut |p| own.push(p.to_vec()));
    let mut frames: Vec<(Vec<u8>, Range<usize>)> = Vec::new();
    let base = data.as_ptr() as usize;
    let n = c
        .session_mut()
        .send_with(id, data, fin, &mut |hdr, body| {
            let start = body.as_ptr() as usize - base;
            frames.push((hdr.to_vec(), start..start + body.len()));
        })
        .unwrap();
    assert_eq!(n, data.len());
    c.session_mut().ping(0.0).unwrap(); // queued after the data: must follow it on the wire
    let mut after: Vec<Vec<u8>> = Vec::new();
    c.drain_plaintext(&mut |p| after.push(p.to_vec()));
    let mut segs: Vec<&[u8]> = own.iter().map(Vec::as_slice).collect();
    for (h, r) in &frames {
        segs.push(h);
        segs.push(&data[r.clone()]);
    }
    segs.extend(after.iter().map(Vec::as_slice));
    let total: usize = segs.iter().map(|s| s.len()).sum();
    let mut out = vec![0u8; c.wire_len(total)];
    assert_eq!(c.seal_gather(&segs, &mut out).unwrap(), out.len());
    assert_eq!(c.plaintext_pending(), 0);
    out
}

fn gathered_then_in_place<T: SecureChannel>(mut c: Connection<T>, mut s: Connection<T>) {
    let id = c.session_mut().open_stream().unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let wire = send_gathered(&mut c, id, &payload, true);
    let ev = feed_in_place(&mut s, &wire, 4093);
    assert_eq!(ev.first(), Some(&Event::StreamOpened(id)));
    assert_eq!(data_of(&ev, id), payload);
    assert!(ev.contains(&Event::Fin(id)));
    // The ping queued after the data was answered: its pong is pending on the server.
    assert!(s.plaintext_pending() > 0);
}

#[test]
fn gathered_send_and_in_place_receive_plaintext() {
    let (c, s) = pair::<NoCipher>(None, None);
    gathered_then_in_place(c, s);
}

#[test]
fn gathered_send_and_in_place_receive_ciphered_any_read_size() {
    for read in [1, 2, 999, 1003, 4096, 65_536] {
        let (mut c, mut s) = pair(Some(Toy::default()), Some(Toy::default()));
        let id = c.session_mut().open_stream().unwrap();
        let payload: Vec<u8> = (0..50_000u32).map(|i| (i % 249) as u8).collect();
        let wire = send_gathered(&mut c, id, &payload, false);
        let ev = feed_in_place(&mut s, &wire, read);
        assert_eq!(data_of(&ev, id), payload, "read size {read}");
        // DATA is coalesced per stream per call: never more DATA events than calls.
        let datas = ev.iter().filter(|e| matches!(e, Event::Data(..))).count();
        assert!(datas <= wire.len().div_ceil(read));
    }
    let (c, s) = pair(Some(Toy::default()), Some(Toy::default()));
    gathered_then_in_place(c, s);
}

#[test]
fn in_place_refuses_a_kept_tail_until_taken() {
    let (mut c, mut s) = pair(Some(Toy::default()), Some(Toy::default()));
    let id = c.session_mut().open_stream().unwrap();
    c.session_mut().send(id, b"hello", false).unwrap();
    let wire = c.take_output().unwrap();
    let mut ev = Vec::new();
    s.receive(&wire[..3], 0.0, &mut ev).unwrap();
    let mut buf = wire[3..].to_vec();
    let mut ranges = Vec::new();
    assert!(s
        .receive_in_place(&mut buf, 0.0, &mut ev, &mut ranges)
        .is_err());
    let mut whole = s.take_tail();
    whole.extend_from_slice(&wire[3..]);
    let ev = feed_in_place(&mut s, &whole, whole.len());
    assert_eq!(data_of(&ev, id), b"hello");
}

#[test]
fn in_place_tampering_fails_and_queues_goaway() {
    let (mut c, mut s) = pair(Some(Toy::default()), Some(Toy::default()));
    let id = c.session_mut().open_stream().unwrap();
    c.session_mut().send(id, b"hello", false).unwrap();
    let mut wire = c.take_output().unwrap();
    let last = wire.len() - 1;
    wire[last] ^= 0xff;
    let (mut ev, mut ranges) = (Vec::new(), Vec::new());
    assert!(matches!(
        s.receive_in_place(&mut wire, 0.0, &mut ev, &mut ranges),
        Err(ConnError::Crypto(_))
    ));
    assert!(s.is_closed());
    assert!(s.plaintext_pending() > 0, "GoAway queued");
}
