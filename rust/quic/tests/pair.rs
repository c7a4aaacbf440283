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

fn closed_reason(s: &Side, cid: u64) -> Option<rapidp2p_quic::CloseReason> {
    s.events.iter().find_map(|e| match e {
        Event::Closed { conn, reason } if *conn == cid => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn certificates_are_checked_at_the_callers_time() {
    // Our certificates are valid from 1975 to 4096: a clock before or after refuses them.
    for (now, what) in [(0_i64, "not yet valid"), (70_000_000_000, "expired")] {
        let (mut c, mut s) = pair();
        c.ep.set_unix_time(now);
        let at = Instant::now();
        let cid = c.ep.connect(at, s.addr, None).unwrap();
        settle(&mut c, &mut s, at, &mut |_| true);
        let reason = closed_reason(&c, cid).unwrap_or_else(|| panic!("{what}: no refusal"));
        assert_eq!(reason.kind, CloseKind::Certificate, "{what}: {reason:?}");
        assert!(
            reason.message.contains("not valid now"),
            "{what}: {reason:?}"
        );
        assert!(connected(&c).is_none() && connected(&s).is_none(), "{what}");
    }
    // The same endpoints at a time within the validity connect.
    let (mut c, mut s) = pair();
    let at = Instant::now();
    let cid = c.ep.connect(at, s.addr, None).unwrap();
    settle(&mut c, &mut s, at, &mut |_| true);
    assert_eq!(connected(&c).unwrap().0, cid);
}

#[test]
fn an_icmp_unreachable_ends_a_dial_as_refused_and_spares_live_connections() {
    let (mut c, mut s) = pair();
    let now = Instant::now();
    let live = c.ep.connect(now, s.addr, None).unwrap();
    settle(&mut c, &mut s, now, &mut |_| true);
    assert_eq!(connected(&c).unwrap().0, live);
    let nobody = SocketAddr::from(([127, 0, 0, 1], 3000));
    let dial = c.ep.connect(now, nobody, None).unwrap();
    c.events.extend(c.ep.process(now));
    c.ep.unreachable(now, nobody);
    c.ep.unreachable(now, s.addr); // established: QUIC recovers from a lost datagram
    c.events.extend(c.ep.process(now));
    let reason = closed_reason(&c, dial).expect("the dial ends at once");
    assert_eq!(reason.kind, CloseKind::Refused);
    assert!(reason.message.contains("refused"), "{reason:?}");
    assert!(closed_reason(&c, live).is_none());
    assert!(c.ep.rtt(live).is_some());
}

#[test]
fn the_receive_window_follows_the_callers_budget() {
    let config = QuicConfig {
        initial_connection_window: 256 << 10,
        connection_receive_window: 4 << 20,
        ..QuicConfig::default()
    };
    let (mut c, mut s) = pair_with(config);
    let now = Instant::now();
    let cid = c.ep.connect(now, s.addr, None).unwrap();
    settle(&mut c, &mut s, now, &mut |_| true);
    let (sconn, _) = connected(&s).unwrap();
    assert_eq!(s.ep.receive_window(sconn), 256 << 10);
    s.ep.set_receive_window(sconn, 1 << 20);
    assert_eq!(s.ep.receive_window(sconn), 1 << 20);
    s.ep.set_receive_window(sconn, 64 << 20); // never past the configured maximum
    assert_eq!(s.ep.receive_window(sconn), 4 << 20);
    s.ep.set_receive_window(sconn, 512 << 10);
    assert!(!s.ep.window_capped(sconn));
    // 2 MiB through a 512 KiB window: everything arrives, and the window asks for more.
    let sid = c.ep.open_stream(cid).unwrap().unwrap();
    let payload = vec![3u8; 2 << 20];
    let (mut off, mut got, mut fin) = (0, 0usize, false);
    for _ in 0..10_000 {
        if fin {
            break;
        }
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
                    got += n;
                    s.ep.ack(conn, stream, n as u64);
                }
                Event::Fin { .. } => fin = true,
                _ => {}
            }
        }
    }
    assert!(fin && got == payload.len());
    assert!(s.ep.window_capped(sconn));
    s.ep.set_receive_window(sconn, 4 << 20); // at the maximum: nothing more to ask for
    assert!(!s.ep.window_capped(sconn));
}

#[test]
fn a_forgotten_connection_is_ended_by_a_stateless_reset() {
    // The server closes a connection and forgets it; its CONNECTION_CLOSE is lost, so the
    // client still believes in it. The client's next packet draws a stateless reset (smaller
    // than the packet: no reset loops), which ends the connection on the client's side.
    let (mut c, mut s) = pair();
    let now = Instant::now();
    let cid = c.ep.connect(now, s.addr, None).unwrap();
    settle(&mut c, &mut s, now, &mut |_| true);
    let (sconn, _) = connected(&s).unwrap();
    s.ep.close(sconn, now, 0, "forget");
    let mut buf = Vec::new();
    let mut t = now;
    for _ in 0..100 {
        s.events.extend(s.ep.process(t));
        while s.ep.poll_transmit(t, 10, &mut buf).is_some() {} // lost on the way
        if s.ep.connection_count() == 0 {
            break;
        }
        t = s.ep.next_timeout().map_or(t, |at| at.max(t));
        s.ep.handle_timeout(t);
    }
    assert_eq!(
        s.ep.connection_count(),
        0,
        "the server forgot the connection"
    );
    c.ep.ping(cid, t).unwrap();
    c.events.extend(c.ep.process(t));
    let mut resets = 0;
    while let Some(tx) = c.ep.poll_transmit(t, 1, &mut buf) {
        let packet = buf[..tx.size].to_vec();
        s.ep.handle_datagram(t, c.addr, None, None, &packet, None);
        assert!(
            s.ep.process(t).is_empty(),
            "no event for an unknown connection"
        );
        let mut out = Vec::new();
        while let Some(reset) = s.ep.poll_transmit(t, 1, &mut out) {
            assert!(
                reset.size < packet.len() && reset.size >= 21,
                "{}",
                reset.size
            );
            resets += 1;
            c.ep.handle_datagram(t, s.addr, None, None, &out[..reset.size], None);
        }
    }
    c.events.extend(c.ep.process(t));
    assert!(resets >= 1, "the server answered with a stateless reset");
    let reason = closed_reason(&c, cid).expect("the reset ends the client's connection");
    assert_eq!(reason.kind, CloseKind::Closed, "{reason:?}");
    assert!(reason.message.contains("reset"), "{reason:?}");
}

#[test]
fn the_server_sends_at_most_three_times_what_an_unvalidated_client_sent() {
    // The client's first flight reaches the server, then the client goes silent: however
    // many loss timers fire, the server's bytes stay within 3x (RFC 9000 8.1).
    let (mut c, mut s) = pair();
    let now = Instant::now();
    c.ep.connect(now, s.addr, None).unwrap();
    c.events.extend(c.ep.process(now));
    let mut received = 0usize;
    let mut buf = Vec::new();
    while let Some(t) = c.ep.poll_transmit(now, 1, &mut buf) {
        received += t.size;
        s.ep.handle_datagram(now, c.addr, None, None, &buf[..t.size], t.segment_size);
    }
    assert!(received >= 1200);
    let mut sent = 0usize;
    let mut t = now;
    for _ in 0..50 {
        s.events.extend(s.ep.process(t));
        while let Some(tx) = s.ep.poll_transmit(t, 10, &mut buf) {
            sent += tx.size;
        }
        match s.ep.next_timeout() {
            Some(at) => t = at.max(t),
            None => break,
        }
        s.ep.handle_timeout(t);
    }
    assert!(sent > 0, "the server answered");
    assert!(sent <= 3 * received, "sent {sent} for {received} received");
}

#[test]
fn a_silent_connection_ends_at_the_idle_timeout_and_keep_alive_prevents_it() {
    for keep_alive in [None, Some(Duration::from_secs(2))] {
        let config = QuicConfig {
            max_idle_timeout: Duration::from_secs(5),
            keep_alive_interval: keep_alive,
            ..QuicConfig::default()
        };
        let (mut c, mut s) = pair_with(config);
        let start = Instant::now();
        let cid = c.ep.connect(start, s.addr, None).unwrap();
        settle(&mut c, &mut s, start, &mut |_| true);
        assert_eq!(connected(&c).unwrap().0, cid);
        // Time passes with every datagram delivered (none are lost): only silence ends it.
        let mut t = start;
        while t < start + Duration::from_secs(20) {
            let next = [c.ep.next_timeout(), s.ep.next_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(at) = next else { break };
            t = at.max(t);
            c.ep.handle_timeout(t);
            s.ep.handle_timeout(t);
            settle(&mut c, &mut s, t, &mut |_| true);
            if closed_reason(&c, cid).is_some() {
                break;
            }
        }
        let reason = closed_reason(&c, cid);
        match keep_alive {
            None => {
                let reason = reason.expect("idle timeout");
                assert_eq!(reason.kind, CloseKind::Closed, "{reason:?}");
                assert!(reason.message.contains("idle"), "{reason:?}");
                assert!(t - start <= Duration::from_secs(6), "{:?}", t - start);
            }
            Some(_) => assert!(reason.is_none(), "{reason:?}: keep-alive must hold it"),
        }
    }
}

fn side(identity: Identity, listen: bool, port: u16) -> Side {
    let mut ep = Endpoint::new(identity, QuicConfig::default(), listen, false).unwrap();
    ep.set_unix_time(1_800_000_000);
    Side {
        ep,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        events: Vec::new(),
    }
}

/// Certificates a hostile peer could present: no libp2p extension; an extension whose
/// identity signature does not verify.
fn hostile_identities() -> Vec<(&'static str, Identity)> {
    let no_ext = CertKey::generate()
        .unwrap()
        .certify_unchecked(None)
        .unwrap();
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let mut public = Vec::new();
    keyproto::encode(1, kp.public_key().as_ref(), &mut public).unwrap();
    let ck = CertKey::generate().unwrap();
    let bad_sig = kp.sign(b"not the certificate's key").as_ref().to_vec();
    let bad = ck.certify_unchecked(Some((&public, &bad_sig))).unwrap();
    vec![("no extension", no_ext), ("bad signature", bad)]
}

#[test]
fn hostile_certificates_are_refused_typed_both_ways() {
    for (what, bad) in hostile_identities() {
        // A hostile listener: the dialer refuses its certificate with a typed reason.
        let (mut c, mut s) = (side(identity(), false, 1000), side(bad.clone(), true, 2000));
        let now = Instant::now();
        let cid = c.ep.connect(now, s.addr, None).unwrap();
        settle(&mut c, &mut s, now, &mut |_| true);
        let reason = closed_reason(&c, cid).unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(reason.kind, CloseKind::Certificate, "{what}: {reason:?}");
        assert!(connected(&c).is_none(), "{what}");
        // A hostile dialer: the listener never reports it; the dialer's handshake fails.
        let (mut c, mut s) = (side(bad, false, 1000), side(identity(), true, 2000));
        let cid = c.ep.connect(now, s.addr, None).unwrap();
        settle(&mut c, &mut s, now, &mut |_| true);
        assert!(connected(&s).is_none(), "{what}: the listener accepted it");
        assert!(
            closed_reason(&c, cid).is_some(),
            "{what}: the hostile dialer was not refused"
        );
    }
}
