//! A yamux connection over the TLS 1.3 record layer (`Cipher::Tls`), both receive paths.

use rapidp2p_conn::tls::{CertKey, Handshake, Identity};
use rapidp2p_conn::yamux::{Config, Event, Role};
use rapidp2p_conn::{Cipher, Connection, DataRange};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// The wall-clock time the handshakes check certificates at (2026-12-01, Unix seconds).
const NOW: i64 = 1_796_083_200;

fn identity() -> Identity {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let mut pb = vec![0x08, 0x01, 0x12, 0x20];
    pb.extend_from_slice(kp.public_key().as_ref());
    let ck = CertKey::generate().unwrap();
    let sig = kp.sign(&ck.message_to_sign());
    ck.certify(&pb, sig.as_ref()).unwrap()
}

fn connections() -> (Connection<Cipher>, Connection<Cipher>) {
    let (ci, si) = (identity(), identity());
    let mut c = Handshake::client(&ci, Some(si.peer_id()), &["/yamux/1.0.0"], NOW).unwrap();
    let mut s = Handshake::server(&si, &["/yamux/1.0.0"], NOW).unwrap();
    while !(c.is_finished() && s.is_finished()) {
        let mut buf = Vec::new();
        c.write_output(&mut buf).unwrap();
        s.receive(&buf).unwrap();
        let mut buf = Vec::new();
        s.write_output(&mut buf).unwrap();
        c.receive(&buf).unwrap();
    }
    let mut last = Vec::new();
    c.write_output(&mut last).unwrap();
    assert!(
        last.is_empty(),
        "the client's Finished went out before it finished"
    );
    let cfg = Config {
        keepalive_interval: None,
        ..Config::default()
    };
    let mk = |hs: Handshake, role| {
        let cipher = Cipher::Tls(hs.into_transport().unwrap());
        Connection::new(Some(cipher), role, cfg.clone(), None).unwrap()
    };
    (mk(c, Role::Client), mk(s, Role::Server))
}

#[test]
fn stream_round_trip_over_tls_in_place_and_copying() {
    let (mut c, mut s) = connections();
    let id = c.open_stream().unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.send(id, &payload, true).unwrap(), payload.len());
    let n = c.output_len();
    let mut wire = c.take_output().unwrap();
    assert_eq!(wire.len(), n, "output_len is exact over TLS");
    // In place, in 10,000-byte reads; the connection carries the partial record.
    let mut got = Vec::new();
    let mut saw_fin = false;
    for piece in wire.chunks_mut(10_000) {
        let (mut ev, mut ranges): (Vec<Event>, Vec<DataRange>) = (Vec::new(), Vec::new());
        s.receive(piece, 0.0, &mut ev, &mut ranges).unwrap();
        for (i, e) in ev.iter().enumerate() {
            match e {
                Event::Data(_, d) if d.is_empty() => {
                    for (_, r) in ranges.iter().filter(|(j, _)| *j == i) {
                        got.extend_from_slice(&piece[r.clone()]);
                    }
                }
                Event::Data(_, d) => got.extend_from_slice(d),
                _ => {}
            }
        }
        saw_fin |= ev.contains(&Event::Fin(id));
    }
    assert_eq!(s.carried(), 0);
    assert_eq!(got, payload);
    assert!(saw_fin);
    // Back with the copying path.
    s.send(id, b"pong", true).unwrap();
    let wire = s.take_output().unwrap();
    let mut ev = Vec::new();
    for piece in wire.chunks(3) {
        c.receive_copy(piece, 0.0, &mut ev).unwrap();
    }
    assert!(ev.contains(&Event::Data(id, b"pong".to_vec())));
}

#[test]
fn close_notify_ends_the_channel_in_order_both_ways() {
    for client_closes in [true, false] {
        let (mut c, mut s) = connections();
        let (closer, other) = if client_closes {
            (&mut c, &mut s)
        } else {
            (&mut s, &mut c)
        };
        let id = closer.open_stream().unwrap();
        closer.send(id, b"last words", true).unwrap();
        // The data queued before the close goes first, then the close_notify alert.
        let wire = closer.take_closing_output().unwrap();
        assert!(!other.peer_closed());
        let mut ev = Vec::new();
        other.receive_copy(&wire, 0.0, &mut ev).unwrap();
        assert!(
            ev.contains(&Event::Data(id, b"last words".to_vec())),
            "{ev:?}"
        );
        assert!(ev.contains(&Event::Fin(id)), "{ev:?}");
        assert!(
            other.peer_closed(),
            "close_notify is an orderly end, not an error"
        );
        assert!(!closer.peer_closed());
        // Bytes after the close_notify are ignored, not an error.
        let mut ev = Vec::new();
        other
            .receive_copy(&[23, 3, 3, 0, 5, 1, 2, 3, 4, 5], 0.0, &mut ev)
            .unwrap();
        assert!(ev.is_empty(), "{ev:?}");
        // The answer: the other side's own close_notify.
        let answer = other.take_closing_output().unwrap();
        let mut ev = Vec::new();
        closer.receive_copy(&answer, 0.0, &mut ev).unwrap();
        assert!(closer.peer_closed());
    }
}
