//! A WebTransport endpoint against a bare quinn-proto HTTP/3 client, in memory: the extended
//! CONNECT on the right path opens the session (`SessionReady`), a WebTransport stream
//! becomes the caller's stream with its header stripped; another path gets a 404 and no
//! session; an oversized header block closes only that connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{ClientConfig, ConnectionHandle, DatagramEvent, Dir, Endpoint as QEndpoint};
use rapidp2p_quic::{CloseKind, Endpoint, Event, QuicConfig};
use rapidp2p_tls::{CertKey, Identity};
use rapidp2p_webtransport::{new_certificate, ClientSession, Limits};
use rapidp2p_wire::keyproto;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

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

/// Trusts any certificate (the browser checks the hash; not what this test is about).
#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

struct Client {
    ep: QEndpoint,
    handle: ConnectionHandle,
    conn: quinn_proto::Connection,
    addr: SocketAddr,
}

const SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 2000);

fn setup() -> (Endpoint, Client, Instant) {
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let cfg = ClientConfig::new(Arc::new(QuicClientConfig::try_from(Arc::new(tls)).unwrap()));
    let mut ep = QEndpoint::new(
        Arc::new(quinn_proto::EndpointConfig::default()),
        None,
        false,
        None,
    );
    let now = Instant::now();
    let (handle, conn) = ep.connect(now, cfg, SERVER, "localhost").unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], 1000));
    (
        server,
        Client {
            ep,
            handle,
            conn,
            addr,
        },
        now,
    )
}

/// Moves datagrams both ways until quiet; returns the server's events.
fn settle(server: &mut Endpoint, c: &mut Client, now: Instant) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..200 {
        let mut moved = false;
        let mut buf = Vec::new();
        while let Some(t) = c.conn.poll_transmit(now, 1, &mut buf) {
            server.handle_datagram(now, c.addr, None, None, &buf[..t.size], None);
            moved = true;
            buf.clear();
        }
        events.extend(server.process(now));
        let mut out = Vec::new();
        while let Some(t) = server.poll_transmit(now, 1, &mut out) {
            let mut scratch = Vec::new();
            let data = bytes::BytesMut::from(&out[..t.size]);
            if let Some(DatagramEvent::ConnectionEvent(_, ev)) =
                c.ep.handle(now, SERVER, None, None, data, &mut scratch)
            {
                c.conn.handle_event(ev);
            }
            moved = true;
        }
        events.extend(server.process(now));
        while let Some(ev) = c.conn.poll_endpoint_events() {
            if let Some(back) = c.ep.handle_event(c.handle, ev) {
                c.conn.handle_event(back);
            }
        }
        while c.conn.poll().is_some() {}
        if !moved {
            break;
        }
    }
    events
}

fn read_all(c: &mut Client, sid: quinn_proto::StreamId) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rs = c.conn.recv_stream(sid);
    if let Ok(mut chunks) = rs.read(true) {
        while let Ok(Some(ch)) = chunks.next(usize::MAX) {
            out.extend_from_slice(&ch.bytes);
        }
        let _ = chunks.finalize();
    }
    out
}

fn request(c: &mut Client, path_ok: bool) -> quinn_proto::StreamId {
    let sid = c.conn.streams().open(Dir::Bi).unwrap();
    let mut req = ClientSession::request("localhost:2000");
    if !path_ok {
        req = {
            let block = rapidp2p_webtransport::qpack::encode_field_section(&[
                (":method", "CONNECT"),
                (":protocol", "webtransport"),
                (":scheme", "https"),
                (":authority", "localhost:2000"),
                (":path", "/elsewhere"),
            ]);
            let mut f = Vec::new();
            rapidp2p_webtransport::session::frame(1, &block, &mut f);
            f
        };
    }
    c.conn.send_stream(sid).write(&req).unwrap();
    sid
}

#[test]
fn session_and_webtransport_stream() {
    let (mut server, mut c, now) = setup();
    settle(&mut server, &mut c, now);
    let sid = request(&mut c, true);
    let events = settle(&mut server, &mut c, now);
    let conn = events
        .iter()
        .find_map(|e| match e {
            Event::SessionReady { conn, inbound, .. } => {
                assert!(*inbound);
                Some(*conn)
            }
            _ => None,
        })
        .expect("session ready");
    let mut client = ClientSession::default();
    let status = client
        .on_response(&read_all(&mut c, sid), &Limits::default())
        .unwrap();
    assert_eq!(status, Some(200));
    // A WebTransport stream: its header is ours to strip, the rest is the caller's.
    let ws = c.conn.streams().open(Dir::Bi).unwrap();
    let mut bytes = ClientSession::stream_header(u64::from(sid));
    bytes.extend_from_slice(b"/multistream/1.0.0\n");
    c.conn.send_stream(ws).write(&bytes).unwrap();
    let events = settle(&mut server, &mut c, now);
    let stream = events
        .iter()
        .find_map(|e| match e {
            Event::StreamOpened { conn: k, stream } if *k == conn => Some(*stream),
            _ => None,
        })
        .expect("stream opened");
    let data: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            Event::Data {
                stream: s, chunks, ..
            } if *s == stream => Some(chunks.concat()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(data, b"/multistream/1.0.0\n");
    // Our own stream starts with the header too.
    let ours = server.open_stream(conn).unwrap().unwrap();
    server.send(conn, ours, b"hi").unwrap();
    settle(&mut server, &mut c, now);
    let got = c.conn.streams().accept(Dir::Bi).expect("server stream");
    let mut want = ClientSession::stream_header(u64::from(sid));
    want.extend_from_slice(b"hi");
    assert_eq!(read_all(&mut c, got), want);
}

#[test]
fn other_path_gets_404_and_no_session() {
    let (mut server, mut c, now) = setup();
    settle(&mut server, &mut c, now);
    let sid = request(&mut c, false);
    let events = settle(&mut server, &mut c, now);
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::SessionReady { .. })));
    let mut client = ClientSession::default();
    let status = client
        .on_response(&read_all(&mut c, sid), &Limits::default())
        .unwrap();
    assert_eq!(status, Some(404));
    assert_eq!(server.connection_count(), 1);
}

#[test]
fn oversized_headers_close_the_connection() {
    let (mut server, mut c, now) = setup();
    settle(&mut server, &mut c, now);
    let sid = c.conn.streams().open(Dir::Bi).unwrap();
    // A HEADERS frame declaring 1 MiB.
    c.conn
        .send_stream(sid)
        .write(&[0x01, 0x80, 0x10, 0x00, 0x00])
        .unwrap();
    let events = settle(&mut server, &mut c, now);
    let closed = events.iter().find_map(|e| match e {
        Event::Closed { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    let reason = closed.expect("closed");
    assert_eq!(reason.kind, CloseKind::Protocol);
    assert!(
        reason.message.contains("over the limit"),
        "{}",
        reason.message
    );
}

#[test]
fn no_connect_ends_at_the_handshake_deadline() {
    let (mut server, mut c, now) = setup();
    settle(&mut server, &mut c, now);
    assert_eq!(server.connection_count(), 1);
    // QUIC is up but no CONNECT comes: the session deadline (the handshake timeout) ends it.
    let later = now + QuicConfig::default().handshake_timeout + std::time::Duration::from_secs(1);
    server.handle_timeout(later);
    let events = server.process(later);
    let reason = events
        .iter()
        .find_map(|e| match e {
            Event::Closed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .expect("closed at the deadline");
    assert_eq!(reason.kind, CloseKind::HandshakeTimeout);
}
