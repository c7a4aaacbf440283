//! Transport throughput: encrypt + decrypt of one write (64 KiB and 1 KiB), reported in bytes
//! of plaintext per second. Run with `cargo bench -p rapidp2p-noise`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rapidp2p_noise::{Handshake, Transport};

fn pair() -> (Transport, Transport) {
    let mut i = Handshake::initiator().expect("init");
    let mut r = Handshake::responder().expect("resp");
    let m1 = i.write_message(&[]).expect("m1");
    r.read_message(&m1).expect("m1");
    let m2 = r.write_message(&[]).expect("m2");
    i.read_message(&m2).expect("m2");
    let m3 = i.write_message(&[]).expect("m3");
    r.read_message(&m3).expect("m3");
    (
        i.into_transport().expect("i"),
        r.into_transport().expect("r"),
    )
}

fn transport(c: &mut Criterion) {
    let mut group = c.benchmark_group("noise_transport");
    for size in [64 * 1024, 1024] {
        let data = vec![0x5au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        let (mut a, _) = pair();
        let mut wire = Vec::with_capacity(size + 64);
        let mut plain = Vec::with_capacity(size);
        group.bench_with_input(BenchmarkId::new("encrypt", size), &data, |bench, data| {
            bench.iter(|| {
                wire.clear();
                a.encrypt(black_box(data), &mut wire).expect("enc");
            })
        });
        let (mut a, mut b) = pair();
        group.bench_with_input(
            BenchmarkId::new("encrypt+decrypt", size),
            &data,
            |bench, data| {
                bench.iter(|| {
                    wire.clear();
                    plain.clear();
                    a.encrypt(black_box(data), &mut wire).expect("enc");
                    b.decrypt(&wire, &mut plain).expect("dec");
                })
            },
        );
    }
    group.finish();
}

fn handshake(c: &mut Criterion) {
    c.bench_function("noise_xx_handshake", |bench| bench.iter(pair));
}

criterion_group!(benches, transport, handshake);
criterion_main!(benches);
