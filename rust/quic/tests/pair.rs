//! Two endpoints wired in memory: datagrams move by hand, time is simulated.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rapidp2p_quic::{CloseKind, Endpoint, Event, QuicConfig};
use rapidp2p_tls::{CertKey, Identity};
use rapidp2p_wire::keyproto;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

fn identity() -> Identity {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let mut public = Vec::new();
    keyproto::encode(1, kp.public_key().as_ref(), &mut public).unwrap();
    let ck = CertKey::generate().unwrap();
    let sig = kp.sign(&ck.message_to_sign());
    ck.certify(&public, sig.as_ref()).unwrap()
}

struct Side {
    ep: Endpoint,
    addr: SocketAddr,
    events: Vec<Event>,
}

/// Moves every datagram both ways until quiet; `drop_if` may lose or mangle datagrams.
fn settle(a: &mut Side, b: &mut Side, now: Instant, mangle: &mut dyn FnMut(&mut Vec<u8>) -> bool) {
    for _ in 0..1000 {
        let moved = pump(a, b, now, mangle) | pump(b, a, now, mangle);
        if !moved {
            return;
        }
    }
}

fn pump(
    from: &mut Side,
    to: &mut Side,
    now: Instant,
    mangle: &mut dyn FnMut(&mut Vec<u8>) -> bool,
) -> bool {
    let mut moved = false;
    from.events.extend(from.ep.process(now));
    let mut buf = Vec::new();
    while let Some(t) = from.ep.poll_transmit(now, 10, &mut buf) {
        let mut data = buf[..t.size].to_vec();
        if mangle(&mut data) {
            to.ep
                .handle_datagram(now, from.addr, None, None, &data, t.segment_size);
        }
        moved = true;
    }
    from.events.extend(from.ep.process(now));
    to.events.extend(to.ep.process(now));
    moved
}

fn pair() -> (Side, Side) {
    pair_with(QuicConfig::default())
}

fn pair_with(config: QuicConfig) -> (Side, Side) {
    let mk = |listen, port| {
        let mut ep = Endpoint::new(identity(), config.clone(), listen, false).unwrap();
        ep.set_unix_time(1_800_000_000);
        Side {
            ep,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            events: Vec::new(),
        }
    };
    (mk(false, 1000), mk(true, 2000))
}

fn connected(s: &Side) -> Option<(u64, Vec<u8>)> {
    s.events.iter().find_map(|e| match e {
        Event::Connected { conn, peer, .. } => Some((*conn, peer.peer_id.clone())),
        _ => None,
    })
}

#[test]
fn handshake_stream_echo_and_fin() {
    let (mut c, mut s) = pair();
    let now = Instant::now();
    let server_peer = {
        let id = identity();
        let _ = id;
        None::<&[u8]>
    };
    let cid = c.ep.connect(now, s.addr, server_peer).unwrap();
    settle(&mut c, &mut s, now, &mut |_| true);
    assert_eq!(connected(&c).unwrap().0, cid);
    let (sconn, _) = connected(&s).unwrap();
    let sid = c.ep.open_stream(cid).unwrap().unwrap();
    let payload = vec![7u8; 3 << 20];
    let mut off = 0;
    let mut got = Vec::new();
    let mut fin = false;
    while !fin {
        if off < payload.len() {
            off += c.ep.send(cid, sid, &payload[off..]).unwrap();
            if off == payload.len() {
                c.ep.finish(cid, sid).unwrap();
            }
        }
        settle(&mut c, &mut s, now, &mut |_| true);
        for e in s.events.drain(..) {
            match e {
                Event::Data {
                    conn,
                    stream,
                    chunks,
                } => {
                    let n: usize = chunks.iter().map(|b| b.len()).sum();
                    chunks.iter().for_each(|b| got.extend_from_slice(b));
                    s.ep.ack(conn, stream, n as u64);
                }
                Event::Fin { .. } => fin = true,
                _ => {}
            }
        }
        let _ = sconn;
    }
    assert_eq!(got, payload);
}

#[test]
fn wrong_peer_id_is_a_typed_refusal() {
    let (mut c, mut s) = pair();
    let now = Instant::now();
    let other = identity();
    let cid = c.ep.connect(now, s.addr, Some(other.peer_id())).unwrap();
    settle(&mut c, &mut s, now, &mut |_| true);
    let reason = c.events.iter().find_map(|e| match e {
        Event::Closed { conn, reason } if *conn == cid => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason.unwrap().kind, CloseKind::PeerIdMismatch);
    assert!(connected(&s).is_none());
}

#[test]
fn garbage_and_truncated_datagrams_make_no_events() {
    let (mut c, mut s) = pair();
    let now = Instant::now();
    for junk in [
        &b""[..],
        b"\x00",
        b"\xc0\x00\x00\x00\x01",
        &[0xffu8; 1200][..],
    ] {
        s.ep.handle_datagram(now, c.addr, None, None, junk, None);
    }
    assert!(s.ep.process(now).is_empty());
    // Truncate every datagram of a handshake: nothing connects, nothing is reported.
    let _cid = c.ep.connect(now, s.addr, None).unwrap();
    settle(&mut c, &mut s, now, &mut |d| {
        d.truncate(d.len() / 2);
        true
    });
    assert!(s.events.is_empty(), "{:?}", s.events);
    assert_eq!(s.ep.connection_count(), 0);
}

#[test]
fn handshake_timeout_when_nobody_answers() {
    let (mut c, mut s) = pair();
    let now = Instant::now();
    let cid = c.ep.connect(now, s.addr, None).unwrap();
    settle(&mut c, &mut s, now, &mut |_| false);
    let mut t = now;
    for _ in 0..100 {
        match c.ep.next_timeout() {
            Some(at) => t = at.max(t),
            None => break,
        }
        c.ep.handle_timeout(t);
        c.events.extend(c.ep.process(t));
        if c.events.iter().any(|e| matches!(e, Event::Closed { .. })) {
            break;
        }
    }
    let reason = c.events.iter().find_map(|e| match e {
        Event::Closed { conn, reason } if *conn == cid => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason.unwrap().kind, CloseKind::HandshakeTimeout);
    assert!(t - now <= Duration::from_secs(11));
}

#[test]
fn streams_beyond_the_cap_wait() {
    let (mut c, mut s) = pair();
    let now = Instant::now();
    let cid = c.ep.connect(now, s.addr, None).unwrap();
    settle(&mut c, &mut s, now, &mut |_| true);
    let cap = QuicConfig::default().max_streams_per_connection;
    for _ in 0..cap {
        let sid = c.ep.open_stream(cid).unwrap().unwrap();
        c.ep.send(cid, sid, b"x").unwrap();
    }
    assert_eq!(c.ep.open_stream(cid).unwrap(), None);
    settle(&mut c, &mut s, now, &mut |_| true);
    let opened = s
        .events
        .iter()
        .filter(|e| matches!(e, Event::StreamOpened { .. }))
        .count();
    assert_eq!(opened as u32, cap);
}

/// A sender that writes again only when told `Writable` (as the Python driver does) still
/// delivers a payload many windows long: a write cut short by the connection's window (here
/// smaller than the stream's, as with go-libp2p) leaves the stream registered as blocked
/// with quinn-proto, so `Writable` follows.
#[test]
fn writes_resume_on_writable_alone() {
    let (mut c, mut s) = pair_with(QuicConfig {
        connection_receive_window: 3 << 20,
        ..QuicConfig::default()
    });
    let mut now = Instant::now();
    let cid = c.ep.connect(now, s.addr, None).unwrap();
    settle(&mut c, &mut s, now, &mut |_| true);
    let sid = c.ep.open_stream(cid).unwrap().unwrap();
    let payload = vec![5u8; 40 << 20];
    let mut off = c.ep.send(cid, sid, &payload).unwrap();
    assert!(off < payload.len(), "one write cannot take 40 MiB");
    let mut got = 0usize;
    let mut fin = false;
    for _ in 0..20_000 {
        settle(&mut c, &mut s, now, &mut |_| true);
        for e in s.events.drain(..) {
            match e {
                Event::Data {
                    conn,
                    stream,
                    chunks,
                } => {
                    let n: usize = chunks.iter().map(|b| b.len()).sum();
                    got += n;
                    s.ep.ack(conn, stream, n as u64);
                }
                Event::Fin { .. } => fin = true,
                _ => {}
            }
        }
        let writable = c
            .events
            .drain(..)
            .any(|e| matches!(e, Event::Writable { .. }));
        if writable && off < payload.len() {
            off += c.ep.send(cid, sid, &payload[off..]).unwrap();
            if off == payload.len() {
                assert!(c.ep.finish(cid, sid).unwrap());
            }
        }
        if fin {
            break;
        }
        // Time moves on (pacing, delayed ACKs); due timers run.
        now += Duration::from_millis(1);
        for side in [&mut c, &mut s] {
            side.ep.handle_timeout(now);
        }
    }
    assert!(fin, "stalled after {got} of {} bytes", payload.len());
    assert_eq!(got, payload.len());
}
