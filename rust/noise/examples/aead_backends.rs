//! Races the ChaCha20-Poly1305 backends in one process: seal, then open, of 64 KiB and 1 KiB
//! messages, in GB/s of plaintext (1 GB = 10^9 bytes), best of 5 rounds of ~0.4 s each.
//! The rate is per second of this thread's CPU time (Linux `/proc/thread-self/schedstat`), not
//! wall time, so neighbours on a shared machine change it little; wall-clock GB/s is printed
//! beside it.
//!
//! `cargo run --release -p rapidp2p-noise --example aead_backends --features aws-lc,openssl`

use std::hint::black_box;
use std::time::{Duration, Instant};

use rapidp2p_noise::aead::{noise_nonce, AwsLc, ChaChaPoly, OpenSsl, Ring};

/// Nanoseconds this thread has run on a CPU (None off Linux).
fn cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// (GB per CPU second, GB per wall second), each the best of 5 rounds.
fn rate<F: FnMut(u64)>(size: usize, mut op: F) -> (f64, f64) {
    let mut best = 0.0f64;
    let mut best_wall = 0.0f64;
    let mut n = 0u64;
    for _ in 0..5 {
        let start = Instant::now();
        let cpu0 = cpu_ns();
        let mut bytes = 0u64;
        while start.elapsed() < Duration::from_millis(400) {
            for _ in 0..16 {
                op(n);
                n += 1;
                bytes += size as u64;
            }
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = match (cpu0, cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
            _ => wall,
        };
        best = best.max(bytes as f64 / cpu / 1e9);
        best_wall = best_wall.max(bytes as f64 / wall / 1e9);
    }
    (best, best_wall)
}

fn race<A: ChaChaPoly>(size: usize) -> ((f64, f64), (f64, f64)) {
    let key = [7u8; 32];
    let mut a = A::new(&key);
    let mut buf = vec![0x5au8; size];
    let seal = rate(size, |n| {
        black_box(
            a.seal(noise_nonce(n), &[], black_box(&mut buf))
                .expect("seal"),
        );
    });
    // Open needs a valid tag: seal once per nonce with a second key object, then open.
    let mut s = A::new(&key);
    let mut o = A::new(&key);
    let both = rate(size, |n| {
        let tag = s.seal(noise_nonce(n), &[], &mut buf).expect("seal");
        o.open(noise_nonce(n), &[], black_box(&mut buf), &tag)
            .expect("open");
    });
    (seal, both)
}

fn main() {
    println!(
        "GB per CPU second (wall-clock GB/s in brackets); seal+open: bytes sealed, then opened"
    );
    println!("backend       size     seal GB/s        seal+open GB/s");
    for size in [64 * 1024, 1024] {
        for (name, (seal, both)) in [
            (Ring::NAME, race::<Ring>(size)),
            (AwsLc::NAME, race::<AwsLc>(size)),
            (OpenSsl::NAME, race::<OpenSsl>(size)),
        ] {
            println!(
                "{name:<10} {size:>7} {:>8.2} ({:.2}) {:>12.2} ({:.2})",
                seal.0, seal.1, both.0, both.1
            );
        }
    }
}
