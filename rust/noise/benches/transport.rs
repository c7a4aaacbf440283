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
    // The connection's data path: 1 MiB gathered from 16 pieces and sealed into full frames,
    // then opened in place (no staging copies either way).
    let data = vec![0x5au8; 1 << 20];
    let pieces: Vec<&[u8]> = data.chunks(1 << 16).collect();
    group.throughput(Throughput::Bytes(data.len() as u64));
    let (mut a, mut b) = pair();
    let mut wire = vec![0u8; rapidp2p_noise::encrypted_len(data.len())];
    let mut ranges = Vec::new();
    group.bench_function("gather+decrypt_in_place/1MiB", |bench| {
        bench.iter(|| {
            let n = a
                .encrypt_gather_to_slice(black_box(&pieces), &mut wire)
                .expect("enc");
            ranges.clear();
            b.decrypt_in_place(&mut wire[..n], &mut ranges)
                .expect("dec");
        })
    });
    group.finish();
}

fn handshake(c: &mut Criterion) {
    c.bench_function("noise_xx_handshake", |bench| bench.iter(pair));
}

criterion_group!(benches, transport, handshake);
criterion_main!(benches);
