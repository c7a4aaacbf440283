//! yamux encode + decode throughput between two in-memory sessions (no crypto): 1 MiB per
//! round on one stream, and 64 small frames per receive call.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rapidp2p_yamux::{Config, Event, Role, Session};

fn pair() -> (Session, Session, u32) {
    let cfg = Config {
        keepalive_interval: None,
        initial_window: 4 << 20,
        ..Config::default()
    };
    let mut c = Session::new(Role::Client, cfg.clone()).unwrap();
    let mut s = Session::new(Role::Server, cfg).unwrap();
    let id = c.open_stream().unwrap();
    let mut ev = Vec::new();
    s.receive(&c.take_output(), 0.0, &mut ev).unwrap();
    c.receive(&s.take_output(), 0.0, &mut ev).unwrap();
    (c, s, id)
}

fn bulk(cr: &mut Criterion) {
    let (mut c, mut s, id) = pair();
    let payload = vec![0xabu8; 1 << 20];
    let mut g = cr.benchmark_group("yamux");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("1MiB round (send, encode, decode, ack)", |b| {
        b.iter(|| {
            assert_eq!(c.send(id, &payload, false).unwrap(), payload.len());
            let wire = c.take_output();
            let mut ev = Vec::with_capacity(4);
            s.receive(&wire, 0.0, &mut ev).unwrap();
            let got: usize = ev
                .iter()
                .map(|e| match e {
                    Event::Data(_, d) => d.len(),
                    _ => 0,
                })
                .sum();
            s.ack(id, got as u32, None).unwrap();
            ev.clear();
            c.receive(&s.take_output(), 0.0, &mut ev).unwrap();
        })
    });
    g.finish();
}

fn small_frames(cr: &mut Criterion) {
    let (mut c, mut s, id) = pair();
    let mut g = cr.benchmark_group("yamux");
    g.throughput(Throughput::Elements(64));
    g.bench_function("64 x 100-byte frames per receive", |b| {
        b.iter(|| {
            for _ in 0..64 {
                c.send(id, &[7u8; 100], false).unwrap();
            }
            let wire = c.take_output();
            let mut ev = Vec::with_capacity(2);
            s.receive(&wire, 0.0, &mut ev).unwrap();
            s.ack(id, 6400, None).unwrap();
            ev.clear();
            c.receive(&s.take_output(), 0.0, &mut ev).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bulk, small_frames);
criterion_main!(benches);
