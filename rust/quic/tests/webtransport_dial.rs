//! A WebTransport dial between two of our endpoints, in memory: the client accepts the
//! server's self-signed certificate only by its hash, sends the extended CONNECT and reports
//! the session at once; streams flow both ways; a wrong hash is a typed refusal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use quinn_proto::crypto::rustls::QuicServerConfig;
use quinn_proto::{DatagramEvent, Dir, Endpoint as QEndpoint, ServerConfig, TransportConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

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

/// A bare HTTP/3 server (quinn-proto, ALPN `h3`) that answers every CONNECT with `status`.
struct Refuser {
    ep: QEndpoint,
    conn: Option<(quinn_proto::ConnectionHandle, quinn_proto::Connection)>,
    status: &'static str,
    answered: bool,
}

impl Refuser {
    fn new(cert: &Certificate, status: &'static str) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.private_key.clone()));
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert.der.clone())], key)
            .unwrap();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let mut cfg =
            ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(Arc::new(tls)).unwrap()));
        let mut transport = TransportConfig::default();
        transport.datagram_receive_buffer_size(Some(65536));
        cfg.transport_config(Arc::new(transport));
        let ep = QEndpoint::new(
            Arc::new(quinn_proto::EndpointConfig::default()),
            Some(Arc::new(cfg)),
            false,
            None,
        );
        Self {
            ep,
            conn: None,
            status,
            answered: false,
        }
    }

    /// Datagrams from the client in, the server's answers out (to `client`).
    fn exchange(&mut self, client: &mut Side, from: SocketAddr, now: Instant) -> bool {
        let mut moved = false;
        client.events.extend(client.ep.process(now));
        let mut buf = Vec::new();
        while let Some(t) = client.ep.poll_transmit(now, 1, &mut buf) {
            moved = true;
            let data = bytes::BytesMut::from(&buf[..t.size]);
            let mut resp = Vec::new();
            match self
                .ep
                .handle(now, client.addr, None, None, data, &mut resp)
            {
                Some(DatagramEvent::NewConnection(incoming)) => {
                    let (h, c) = self.ep.accept(incoming, now, &mut resp, None).unwrap();
                    self.conn = Some((h, c));
                }
                Some(DatagramEvent::ConnectionEvent(_, ev)) => {
                    if let Some((_, c)) = self.conn.as_mut() {
                        c.handle_event(ev);
                    }
                }
                _ => {}
            }
        }
        if let Some((h, c)) = self.conn.as_mut() {
            while let Some(ev) = c.poll_endpoint_events() {
                if let Some(back) = self.ep.handle_event(*h, ev) {
                    c.handle_event(back);
                }
            }
            while c.poll().is_some() {}
            let zero = quinn_proto::StreamId::from(quinn_proto::VarInt::from_u32(0));
            let mut opened = false;
            while let Some(sid) = c.streams().accept(Dir::Bi) {
                opened |= sid == zero; // the client's CONNECT stream: answered below, once
            }
            if !self.answered && opened {
                let block =
                    rapidp2p_webtransport::qpack::encode_field_section(&[(":status", self.status)]);
                let mut f = Vec::new();
                rapidp2p_webtransport::session::frame(1, &block, &mut f);
                if c.send_stream(zero).write(&f).is_ok() {
                    let _ = c.send_stream(zero).finish();
                    self.answered = true;
                }
            }
            let mut out = Vec::new();
            while let Some(t) = c.poll_transmit(now, 1, &mut out) {
                client
                    .ep
                    .handle_datagram(now, from, None, None, &out[..t.size], None);
                out.clear();
                moved = true;
            }
        }
        client.events.extend(client.ep.process(now));
        moved
    }
}

#[test]
fn a_refused_connect_closes_the_dial_typed() {
    let (mut client, server, cert) = sides();
    drop(server);
    let now = Instant::now();
    let mut refuser = Refuser::new(&cert, "404");
    let addr = SocketAddr::from(([127, 0, 0, 1], 2000));
    let digest = certhash_digest(&certhash_multihash(&cert.der)).unwrap();
    let cid = client
        .ep
        .connect_webtransport(now, addr, vec![digest])
        .unwrap();
    for _ in 0..200 {
        if !refuser.exchange(&mut client, addr, now) {
            break;
        }
    }
    assert!(
        refuser.answered,
        "the CONNECT reached the server: {:?}",
        client.events
    );
    // The session was reported at once (Noise may start without waiting), then the refusal
    // closed the connection with a handshake error naming the status.
    assert!(
        client
            .events
            .iter()
            .any(|e| matches!(e, Event::SessionReady { conn, .. } if *conn == cid)),
        "{:?}",
        client.events
    );
    let reason = client
        .events
        .iter()
        .find_map(|e| match e {
            Event::Closed { conn, reason } if *conn == cid => Some(reason.clone()),
            _ => None,
        })
        .expect("the refusal ends the connection");
    assert_eq!(reason.kind, CloseKind::Handshake, "{reason:?}");
    assert!(reason.message.contains("HTTP 404"), "{reason:?}");
}
