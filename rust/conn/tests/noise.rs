//! Two connections over real Noise transports (after an in-memory XX handshake).

use rapidp2p_conn::noise::{Handshake, Transport};
use rapidp2p_conn::yamux::{Config, Event, Role};
use rapidp2p_conn::{ConnError, NoiseConnection};

fn transports() -> (Transport, Transport) {
    let mut i = Handshake::initiator().unwrap();
    let mut r = Handshake::responder().unwrap();
    let m1 = i.write_message(b"").unwrap();
    r.read_message(&m1).unwrap();
    let m2 = r.write_message(b"").unwrap();
    i.read_message(&m2).unwrap();
    let m3 = i.write_message(b"").unwrap();
    r.read_message(&m3).unwrap();
    (i.into_transport().unwrap(), r.into_transport().unwrap())
}

fn pair() -> (NoiseConnection, NoiseConnection) {
    let (ti, tr) = transports();
    let cfg = Config {
        keepalive_interval: None,
        ..Config::default()
    };
    (
        NoiseConnection::new(Some(ti), Role::Client, cfg.clone(), None).unwrap(),
        NoiseConnection::new(Some(tr), Role::Server, cfg, None).unwrap(),
    )
}

#[test]
fn noise_round_trip_in_odd_chunks() {
    let (mut c, mut s) = pair();
    let id = c.open_stream().unwrap();
    let payload: Vec<u8> = (0..250_000u32).map(|i| (i % 241) as u8).collect();
    assert_eq!(c.send(id, &payload, true).unwrap(), payload.len());
    let n = c.output_len();
    let mut wire = vec![0u8; n];
    assert_eq!(c.flush_into(&mut wire).unwrap(), n);
    // Every Noise frame is at most 65535 bytes.
    let mut pos = 0;
    while pos < wire.len() {
        let len = u16::from_be_bytes([wire[pos], wire[pos + 1]]) as usize;
        pos += 2 + len;
    }
    assert_eq!(pos, wire.len());
    let mut ev = Vec::new();
    for chunk in wire.chunks(9_999) {
        s.receive_copy(chunk, 0.0, &mut ev).unwrap();
    }
    let got: Vec<u8> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Data(_, d) => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(got, payload);
    assert_eq!(ev.last(), Some(&Event::Fin(id)));
}

#[test]
fn noise_bit_flip_is_crypto_error() {
    let (mut c, mut s) = pair();
    c.open_stream().unwrap();
    let mut wire = c.take_output().unwrap();
    wire[5] ^= 1;
    let mut ev = Vec::new();
    assert!(matches!(
        s.receive_copy(&wire, 0.0, &mut ev),
        Err(ConnError::Crypto(_))
    ));
    assert!(s.is_closed());
}
