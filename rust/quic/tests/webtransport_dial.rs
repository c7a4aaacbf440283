//! A WebTransport dial between two of our endpoints, in memory: the client accepts the
//! server's self-signed certificate only by its hash, sends the extended CONNECT and reports
//! the session at once; streams flow both ways; a wrong hash is a typed refusal.

use std::net::SocketAddr;
use std::time::Instant;

use rapidp2p_quic::{CloseKind, Endpoint, Event, QuicConfig};
use rapidp2p_tls::{CertKey, Identity};
use rapidp2p_webtransport::cert::certhash_multihash;
use rapidp2p_webtransport::{certhash_digest, new_certificate, Certificate};
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

fn pump(from: &mut Side, to: &mut Side, now: Instant) -> bool {
    let mut moved = false;
    from.events.extend(from.ep.process(now));
    let mut buf = Vec::new();
    while let Some(t) = from.ep.poll_transmit(now, 10, &mut buf) {
        to.ep
            .handle_datagram(now, from.addr, None, None, &buf[..t.size], t.segment_size);
        moved = true;
    }
    from.events.extend(from.ep.process(now));
    to.events.extend(to.ep.process(now));
    moved
}

fn settle(a: &mut Side, b: &mut Side, now: Instant) {
    for _ in 0..1000 {
        if !(pump(a, b, now) | pump(b, a, now)) {
            return;
        }
    }
}

fn sides() -> (Side, Side, Certificate) {
    let cert = new_certificate(1_799_990_000, 14 * 24 * 3600).unwrap();
    let mut server = Endpoint::new_webtransport(
        identity(),
        QuicConfig::default(),
        &cert.der,
        &cert.private_key,
        false,
    )
    .unwrap();
    server.set_unix_time(1_800_000_000);
    let mut client = Endpoint::new(identity(), QuicConfig::default(), false, false).unwrap();
    client.set_unix_time(1_800_000_000);
    let side = |ep, port| Side {
        ep,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        events: Vec::new(),
    };
    (side(client, 1000), side(server, 2000), cert)
}

fn data(s: &Side, conn: u64, stream: u64) -> Vec<u8> {
    s.events
        .iter()
        .filter_map(|e| match e {
            Event::Data {
                conn: c,
                stream: st,
                chunks,
            } if *c == conn && *st == stream => Some(chunks.concat()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat()
}

#[test]
fn dial_by_certhash_then_streams_both_ways() {
    let (mut client, mut server, cert) = sides();
    let now = Instant::now();
    let digest = certhash_digest(&certhash_multihash(&cert.der)).unwrap();
    let other = [7u8; 32];
    let cid = client
        .ep
        .connect_webtransport(now, server.addr, vec![other, digest])
        .unwrap();
    settle(&mut client, &mut server, now);

    // The client's session, with the hash of the certificate the server presented.
    let ready = client.events.iter().find_map(|e| match e {
        Event::SessionReady {
            conn,
            inbound,
            certhash,
            ..
        } if *conn == cid => Some((*inbound, certhash.clone())),
        _ => None,
    });
    assert_eq!(ready, Some((false, Some(certhash_multihash(&cert.der)))));
    // The server accepted the CONNECT.
    let sid = server.events.iter().find_map(|e| match e {
        Event::SessionReady {
            conn,
            inbound: true,
            certhash: None,
            ..
        } => Some(*conn),
        _ => None,
    });
    let sconn = sid.expect("server session");

    // A client stream: the server sees a WebTransport stream carrying our bytes.
    let st = client.ep.open_stream(cid).unwrap().unwrap();
    assert_ne!(st, 0, "stream 0 is the CONNECT");
    assert_eq!(client.ep.send(cid, st, b"hello server").unwrap(), 12);
    client.ep.finish(cid, st).unwrap();
    settle(&mut client, &mut server, now);
    assert!(server.events.iter().any(
        |e| matches!(e, Event::StreamOpened { conn, stream } if *conn == sconn && *stream == st)
    ));
    assert_eq!(data(&server, sconn, st), b"hello server");

    // A server stream: the client takes it as the session's.
    let back = server.ep.open_stream(sconn).unwrap().unwrap();
    server.ep.send(sconn, back, b"hello client").unwrap();
    settle(&mut client, &mut server, now);
    assert!(client.events.iter().any(
        |e| matches!(e, Event::StreamOpened { conn, stream } if *conn == cid && *stream == back)
    ));
    assert_eq!(data(&client, cid, back), b"hello client");
    assert!(!client
        .events
        .iter()
        .any(|e| matches!(e, Event::Closed { .. })));
}

#[test]
fn a_wrong_certhash_is_a_certificate_refusal() {
    let (mut client, mut server, _cert) = sides();
    let now = Instant::now();
    let cid = client
        .ep
        .connect_webtransport(now, server.addr, vec![[1u8; 32]])
        .unwrap();
    settle(&mut client, &mut server, now);
    let closed = client.events.iter().find_map(|e| match e {
        Event::Closed { conn, reason } if *conn == cid => Some(reason.clone()),
        _ => None,
    });
    let reason = closed.expect("the dial ends");
    assert_eq!(reason.kind, CloseKind::Certificate, "{reason:?}");
    assert!(reason.message.contains("/certhash"), "{reason:?}");
    assert!(!client
        .events
        .iter()
        .any(|e| matches!(e, Event::SessionReady { .. })));
    assert!(!server
        .events
        .iter()
        .any(|e| matches!(e, Event::SessionReady { .. })));
    // No hash at all: refused before any packet.
    assert!(client
        .ep
        .connect_webtransport(now, server.addr, Vec::new())
        .is_err());
}
