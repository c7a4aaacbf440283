//! The listener endpoint without a network: demultiplexing, the handshake deadline, the spec's
//! Noise prologue test vector and the certhash form.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rapidp2p_webrtc::{
    certhash, certhash_fingerprint, generate_certificate, noise_prologue, CloseKind, Config,
    Endpoint, Event,
};

fn binding_request(username: &str) -> Vec<u8> {
    let mut attrs = Vec::new();
    attrs.extend_from_slice(&6u16.to_be_bytes());
    attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attrs.extend_from_slice(username.as_bytes());
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(&[9; 12]);
    m.extend_from_slice(&attrs);
    m
}

fn endpoint(config: Config) -> Endpoint {
    let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    Endpoint::new(
        local,
        generate_certificate().unwrap(),
        [7; 32],
        b"payload".to_vec(),
        config,
    )
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn prologue_matches_the_spec_test_vector() {
    let client: [u8; 32] = hex("3e79af40d6059617a0d83b83a52ce73b0c1f37a72c6043ad2969e2351bdca870")
        .try_into()
        .unwrap();
    let server: [u8; 32] = hex("30fc9f469c207419dfdd0aab5f27a86c973c94e40548db9375cca2e915973b99")
        .try_into()
        .unwrap();
    let want = hex(concat!(
        "6c69627032702d7765627274632d6e6f6973653a12203e79af40d6059617a0d83b83a52ce73b0c1f37a7",
        "2c6043ad2969e2351bdca870122030fc9f469c207419dfdd0aab5f27a86c973c94e40548db9375cca2e9",
        "15973b99"
    ));
    assert_eq!(noise_prologue(&client, &server), want);
}

#[test]
fn certhash_is_base64url_sha256_multihash() {
    let h = certhash(&[0xab; 32]);
    // multibase 'u' + base64url("\x12\x20" + 32 bytes), unpadded: 1 + 46 characters.
    assert!(h.starts_with("uEiC"), "{h}");
    assert_eq!(h.len(), 47);
    assert!(!h.contains('=') && !h.contains('+') && !h.contains('/'));
}

#[test]
fn unknown_address_must_open_with_a_libp2p_stun_request() {
    let mut ep = endpoint(Config::default());
    let now = Instant::now();
    let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    ep.handle_datagram(from, &[22u8; 60], now); // DTLS-looking
    ep.handle_datagram(from, &binding_request("someone:else"), now);
    ep.handle_datagram(from, &[], now);
    assert_eq!(ep.connection_count(), 0);
    assert_eq!(ep.dropped, 3);
    let u = "libp2p+webrtc+v1/0123456789abcdef";
    ep.handle_datagram(from, &binding_request(&format!("{u}:{u}")), now);
    assert_eq!(ep.connection_count(), 1);
}

#[test]
fn a_dialler_that_never_finishes_times_out_with_a_typed_close() {
    let mut ep = endpoint(Config {
        handshake_timeout: Duration::from_secs(10),
        ..Config::default()
    });
    let t0 = Instant::now();
    let from: SocketAddr = "127.0.0.1:5001".parse().unwrap();
    let u = "libp2p+webrtc+v1/silent";
    ep.handle_datagram(from, &binding_request(&format!("{u}:{u}")), t0);
    assert_eq!(ep.connection_count(), 1);
    let deadline = ep.next_timeout().expect("a timer is armed");
    assert!(deadline <= t0 + Duration::from_secs(10));
    // Drive the timers as the driver would, until the deadline passed.
    let mut now = t0;
    while now < t0 + Duration::from_secs(11) {
        now = ep
            .next_timeout()
            .unwrap_or(now + Duration::from_secs(1))
            .max(now);
        ep.handle_timeout(now);
        if ep.connection_count() == 0 {
            break;
        }
        now += Duration::from_millis(1);
    }
    assert_eq!(ep.connection_count(), 0);
    let mut closed = None;
    while let Some(ev) = ep.poll_event() {
        if let Event::Closed { kind, message, .. } = ev {
            closed = Some((kind, message));
        }
    }
    let (kind, message) = closed.expect("a Closed event");
    assert_eq!(kind, CloseKind::HandshakeTimeout, "{message}");
    // The address is free again: a new request makes a new connection.
    ep.handle_datagram(from, &binding_request(&format!("{u}:{u}")), now);
    assert_eq!(ep.connection_count(), 1);
}

#[test]
fn pending_handshakes_are_capped() {
    let mut ep = endpoint(Config {
        max_handshakes: 4,
        ..Config::default()
    });
    let now = Instant::now();
    for port in 6000..6010u16 {
        let u = format!("libp2p+webrtc+v1/{port}");
        let from: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        ep.handle_datagram(from, &binding_request(&format!("{u}:{u}")), now);
    }
    assert_eq!(ep.connection_count(), 4);
    assert_eq!(ep.dropped, 6);
}

#[test]
fn stopped_endpoint_accepts_nobody() {
    let mut ep = endpoint(Config::default());
    ep.stop_listening();
    let u = "libp2p+webrtc+v1/x";
    ep.handle_datagram(
        "127.0.0.1:7000".parse().unwrap(),
        &binding_request(&format!("{u}:{u}")),
        Instant::now(),
    );
    assert_eq!(ep.connection_count(), 0);
}

fn at(addr: &str, secret: u8, payload: &[u8]) -> Endpoint {
    Endpoint::new(
        addr.parse().unwrap(),
        generate_certificate().unwrap(),
        [secret; 32],
        payload.to_vec(),
        Config::default(),
    )
}

/// Moves datagrams between two endpoints and advances a virtual clock until `done` holds.
fn pump(
    a: &mut Endpoint,
    b: &mut Endpoint,
    now: &mut Instant,
    mut done: impl FnMut(&Event) -> bool,
) {
    for _ in 0..20_000 {
        let mut moved = false;
        while let Some((dst, data)) = a.poll_transmit() {
            moved = true;
            if dst == b.local_addr() {
                b.handle_datagram(a.local_addr(), &data, *now);
            }
        }
        while let Some((dst, data)) = b.poll_transmit() {
            moved = true;
            if dst == a.local_addr() {
                a.handle_datagram(b.local_addr(), &data, *now);
            }
        }
        let mut hit = false;
        while let Some(ev) = a.poll_event() {
            hit |= done(&ev);
        }
        while let Some(ev) = b.poll_event() {
            hit |= done(&ev);
        }
        if hit {
            return;
        }
        if !moved {
            let next = [a.next_timeout(), b.next_timeout()]
                .into_iter()
                .flatten()
                .min()
                .expect("a timer");
            *now = next.max(*now);
            a.handle_timeout(*now);
            b.handle_timeout(*now);
        }
    }
    panic!("never done");
}

#[test]
fn dialler_authenticates_both_ways_and_carries_a_stream() {
    let mut listener = at("127.0.0.1:5000", 1, b"listener-payload");
    let mut dialler = at("127.0.0.1:6000", 2, b"dialler-payload");
    let mut now = Instant::now();
    let fp = listener.fingerprint();
    let conn = dialler
        .dial(
            listener.local_addr(),
            fp,
            "libp2p+webrtc+v1/0123456789abcdef",
            now,
        )
        .unwrap();
    let mut authed = Vec::new();
    pump(&mut listener, &mut dialler, &mut now, |ev| {
        if let Event::Authenticated { payload, .. } = ev {
            authed.push(payload.clone());
        }
        authed.len() == 2
    });
    authed.sort();
    assert_eq!(
        authed,
        vec![b"dialler-payload".to_vec(), b"listener-payload".to_vec()]
    );
    let s = dialler.open_stream(conn).unwrap();
    let mut got = Vec::new();
    let mut sent = false;
    pump(&mut listener, &mut dialler, &mut now, |ev| {
        match ev {
            Event::Writable { .. } => sent = true,
            Event::Data { data, .. } => got.extend_from_slice(data),
            _ => {}
        }
        sent
    });
    assert_eq!(dialler.send(conn, s, b"hello").unwrap(), 5);
    // The write goes out at once, not at str0m's next timer (delayed-ack, 200 ms).
    let (dst, d) = dialler
        .poll_transmit()
        .expect("a datagram right after send");
    assert_eq!(dst, listener.local_addr());
    listener.handle_datagram(dialler.local_addr(), &d, now);
    pump(&mut listener, &mut dialler, &mut now, |ev| {
        if let Event::Data { data, .. } = ev {
            got.extend_from_slice(data);
        }
        !got.is_empty()
    });
    assert_eq!(got, b"hello");
}

#[test]
fn dialler_refuses_a_certificate_other_than_the_certhash() {
    let mut listener = at("127.0.0.1:5000", 1, b"l");
    let mut dialler = at("127.0.0.1:6000", 2, b"d");
    let mut now = Instant::now();
    let conn = dialler
        .dial(
            listener.local_addr(),
            [0xAB; 32],
            "libp2p+webrtc+v1/0123456789abcdef",
            now,
        )
        .unwrap();
    let mut closed = None;
    pump(&mut listener, &mut dialler, &mut now, |ev| {
        if let Event::Closed { conn: c, kind, .. } = ev {
            if *c == conn && closed.is_none() {
                closed = Some(*kind);
            }
        }
        matches!(ev, Event::Authenticated { .. }) || closed.is_some()
    });
    assert_eq!(closed, Some(CloseKind::Handshake));
}

#[test]
fn dial_refuses_a_ufrag_without_the_prefix() {
    let mut dialler = at("127.0.0.1:6000", 2, b"d");
    assert!(dialler
        .dial(
            "127.0.0.1:5000".parse().unwrap(),
            [1; 32],
            "nope",
            Instant::now()
        )
        .is_err());
}

#[test]
fn certhash_fingerprint_round_trips_and_refuses_other_hashes() {
    let fp = [5u8; 32];
    assert_eq!(certhash_fingerprint(&certhash(&fp)), Some(fp));
    assert_eq!(certhash_fingerprint("uEiA"), None);
    assert_eq!(certhash_fingerprint("not multibase!"), None);
}

// ---- `/webrtc`: connections set up by SDP offer and answer --------------------------------

/// Offer from `a`, answer from `b`, both full ICE agents with one host candidate each (in
/// their SDP): returns the two connection ids once both are up.
fn signalled_pair(a: &mut Endpoint, b: &mut Endpoint, now: &mut Instant) -> (u64, u64) {
    let (ca, offer) = a
        .offer("offerufrag", "offer-password-0123456789", *now)
        .unwrap();
    assert!(offer.contains("a=candidate:"), "{offer}");
    let (cb, answer) = b
        .accept_offer(&offer, "answerufrag", "answer-password-0123456789", *now)
        .unwrap();
    a.accept_answer(ca, &answer).unwrap();
    let mut up = Vec::new();
    pump(a, b, now, |ev| {
        if let Event::Authenticated { conn, payload, .. } = ev {
            assert!(payload.is_empty(), "no Noise on /webrtc");
            up.push(*conn);
        }
        up.len() == 2
    });
    (ca, cb)
}

/// Opens a stream from `src` on `conn`, sends `payload`; returns what `dst` received and how
/// many streams were announced on either side meanwhile.
fn send_over(
    src: &mut Endpoint,
    dst: &mut Endpoint,
    conn: u64,
    payload: &[u8],
    now: &mut Instant,
) -> (Vec<u8>, usize) {
    let s = src.open_stream(conn).unwrap();
    let mut opened = 0;
    let mut writable = false;
    pump(src, dst, now, |ev| {
        match ev {
            Event::Writable { stream, .. } if *stream == s => writable = true,
            Event::StreamOpened { .. } => opened += 1,
            _ => {}
        }
        writable
    });
    assert_eq!(src.send(conn, s, payload).unwrap(), payload.len());
    let mut got = Vec::new();
    pump(src, dst, now, |ev| {
        match ev {
            Event::StreamOpened { .. } => opened += 1,
            Event::Data { data, .. } => got.extend_from_slice(data),
            _ => {}
        }
        got.len() >= payload.len()
    });
    (got, opened)
}

#[test]
fn signalled_connection_comes_up_without_noise_and_carries_a_stream_both_ways() {
    let mut a = at("127.0.0.1:5100", 1, b"a");
    let mut b = at("127.0.0.1:6100", 2, b"b");
    a.stop_listening();
    b.stop_listening();
    let mut now = Instant::now();
    let (ca, cb) = signalled_pair(&mut a, &mut b, &mut now);
    // The offerer's `init` channel is no stream: only the one opened shows up, each way.
    let (got, opened) = send_over(&mut a, &mut b, ca, b"from the offerer", &mut now);
    assert_eq!(
        (got.as_slice(), opened),
        (b"from the offerer".as_slice(), 1)
    );
    let (got, opened) = send_over(&mut b, &mut a, cb, b"from the answerer", &mut now);
    assert_eq!(
        (got.as_slice(), opened),
        (b"from the answerer".as_slice(), 1)
    );
}

#[test]
fn a_malformed_offer_answer_or_candidate_is_a_typed_error() {
    let mut a = at("127.0.0.1:5200", 1, b"a");
    let mut b = at("127.0.0.1:6200", 2, b"b");
    let now = Instant::now();
    assert!(matches!(
        b.accept_offer(
            "v=0\r\nnot sdp",
            "answerufrag",
            "answer-password-0123456789",
            now
        ),
        Err(rapidp2p_webrtc::WebRtcError::Sdp(_))
    ));
    assert_eq!(b.connection_count(), 0);
    let big = "x".repeat(rapidp2p_webrtc::MAX_SDP + 1);
    assert!(b
        .accept_offer(&big, "answerufrag", "answer-password-0123456789", now)
        .is_err());
    let (ca, _offer) = a
        .offer("offerufrag", "offer-password-0123456789", now)
        .unwrap();
    assert!(matches!(
        a.accept_answer(ca, "garbage"),
        Err(rapidp2p_webrtc::WebRtcError::Sdp(_))
    ));
    assert!(matches!(
        a.add_remote_candidate(ca, "candidate:1 1 udp nope"),
        Err(rapidp2p_webrtc::WebRtcError::Candidate(_))
    ));
    // An mDNS name is skipped, not an error; a good host candidate is taken.
    assert!(!a
        .add_remote_candidate(ca, "candidate:1 1 udp 2122260223 abc.local 5000 typ host")
        .unwrap());
    assert!(a
        .add_remote_candidate(ca, "candidate:1 1 udp 2122260223 127.0.0.1 5001 typ host")
        .unwrap());
    // Short ICE credentials are refused (RFC 8839 minimums).
    assert!(a.offer("ab", "offer-password-0123456789", now).is_err());
    assert!(a.offer("offerufrag2", "short", now).is_err());
}

#[test]
fn a_signalled_connection_whose_peer_never_answers_times_out() {
    let mut a = at("127.0.0.1:5300", 1, b"a");
    let now = Instant::now();
    let (ca, _offer) = a
        .offer("offerufrag", "offer-password-0123456789", now)
        .unwrap();
    let later = now + Duration::from_secs(11);
    a.handle_timeout(later);
    let mut closed = None;
    while let Some(ev) = a.poll_event() {
        if let Event::Closed { conn, kind, .. } = ev {
            assert_eq!(conn, ca);
            closed = Some(kind);
        }
    }
    assert_eq!(closed, Some(CloseKind::HandshakeTimeout));
    assert_eq!(a.connection_count(), 0);
}

#[test]
fn a_dialler_close_reaches_the_listener() {
    let mut listener = at("127.0.0.1:5000", 1, b"listener-payload");
    let mut dialler = at("127.0.0.1:6000", 2, b"dialler-payload");
    let mut now = Instant::now();
    let fp = listener.fingerprint();
    let conn = dialler
        .dial(
            listener.local_addr(),
            fp,
            "libp2p+webrtc+v1/0123456789abcdef",
            now,
        )
        .unwrap();
    let mut authed = 0;
    pump(&mut listener, &mut dialler, &mut now, |ev| {
        if matches!(ev, Event::Authenticated { .. }) {
            authed += 1;
        }
        authed == 2
    });
    assert_eq!(listener.connection_count(), 1);
    let start = now;
    dialler.close(conn);
    // The close sends something (DTLS close_notify / SCTP shutdown) at once.
    let (dst, d) = dialler.poll_transmit().expect("a datagram on close");
    assert_eq!(dst, listener.local_addr());
    listener.handle_datagram(dialler.local_addr(), &d, now);
    let mut closed = false;
    pump(&mut listener, &mut dialler, &mut now, |ev| {
        if let Event::Closed { kind, .. } = ev {
            assert!(matches!(kind, CloseKind::Closed));
            closed = true;
        }
        closed
    });
    assert_eq!(listener.connection_count(), 0);
    // Noticed from the datagrams, not from a liveness timer.
    assert!(now - start < Duration::from_secs(1));
}
