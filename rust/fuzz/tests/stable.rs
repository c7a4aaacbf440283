//! The stable-toolchain fuzz harness: each target gets random inputs and mutations of valid
//! encodings (bit flips, boundary bytes, insertions, deletions, truncation, splices) for a
//! time budget: `RAPIDP2P_FUZZ_SECONDS` per target (default 2; `nox -s fuzz` runs longer).
//! A panic fails the test and prints the input in hex. The seed is printed too
//! (`RAPIDP2P_FUZZ_SEED` replays a run).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rapidp2p_fuzz::TARGETS;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: plenty for picking mutations.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn seeds(name: &str) -> Vec<Vec<u8>> {
    use rapidp2p_wire as wire;
    let mut out: Vec<Vec<u8>> = vec![vec![], vec![0], vec![0xff; 16]];
    let mut v = Vec::new();
    for x in [0u64, 1, 127, 128, 300, u32::MAX as u64, (1 << 63) - 1] {
        v.clear();
        wire::varint::encode(x, &mut v);
        out.push(v.clone());
    }
    for text in [
        "/ip4/127.0.0.1/tcp/4001",
        "/ip6/::1/udp/4001/quic-v1",
        "/dns4/example.com/tcp/443/wss",
        "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
        "/ip6zone/eth0/ip6/fe80::1/tcp/1",
    ] {
        if let Ok(b) = wire::multiaddr::from_text(text) {
            out.push(b);
        }
        out.push(text.as_bytes().to_vec());
    }
    v.clear();
    let _ = wire::keyproto::encode(1, &[7u8; 32], &mut v);
    out.push(v.clone());
    let mut id = Vec::new();
    if wire::peerid::from_public_key_protobuf(&v, &mut id).is_ok() {
        out.push(id.clone());
        out.push(wire::peerid::to_base58(&id).into_bytes());
    }
    let mut framed = Vec::new();
    wire::frame::encode(b"/multistream/1.0.0\n", &mut framed);
    wire::frame::encode(b"/noise\n", &mut framed);
    out.push(framed);
    // yamux: a SYN, DATA, a window update, a ping and a GoAway.
    for (t, flags, sid, len) in [
        (1u8, 1u16, 1u32, 262_144u32),
        (0, 0, 1, 4),
        (2, 1, 0, 7),
        (3, 0, 0, 0),
    ] {
        let mut h = vec![0u8, t];
        h.extend_from_slice(&flags.to_be_bytes());
        h.extend_from_slice(&sid.to_be_bytes());
        h.extend_from_slice(&len.to_be_bytes());
        if t == 0 {
            h.extend_from_slice(b"abcd");
        }
        out.push(h);
    }
    if let Ok(mut hs) = rapidp2p_noise::Handshake::initiator() {
        if let Ok(m) = hs.write_message(&[]) {
            out.push(m);
        }
    }
    match name {
        "kad_message" => {
            let m = rapidp2p_kad::proto::Message {
                r#type: 4,
                key: b"some key".to_vec(),
                ..Default::default()
            };
            out.push(rapidp2p_kad::proto::encode_message(&m));
        }
        "pubsub_rpc" => {
            let rpc = rapidp2p_pubsub::Rpc::default();
            out.push(rapidp2p_pubsub::encode_rpc(&rpc));
        }
        "mplex_session" => {
            // A length byte (the cut), then NewStream, messages both ways, Close and Reset.
            let mut v = vec![3u8];
            for (id, flag, body) in [
                (0u64, 0u64, &b"0"[..]),
                (0, 2, b"hello"),
                (0, 1, b"ours?"),
                (0, 2, &[7u8; 80][..]),
                (0, 4, b""),
                (1, 6, b""),
            ] {
                wire::varint::encode((id << 3) | flag, &mut v);
                wire::varint::encode(body.len() as u64, &mut v);
                v.extend_from_slice(body);
            }
            out.push(v);
        }
        "qpack_fields" => {
            out.push(rapidp2p_webtransport::qpack::encode_field_section(&[
                (":method", "CONNECT"),
                (":path", "/.well-known/libp2p-webtransport?type=noise"),
                ("sec-webtransport-http3-draft02", "1"),
            ]));
        }
        "h3_session" => {
            // The cut byte, then our control stream; and a CONNECT request.
            let control = rapidp2p_webtransport::session::control_stream(16384);
            let mut v = vec![control.len() as u8];
            v.extend_from_slice(&control);
            v.extend_from_slice(&rapidp2p_webtransport::ClientSession::request("h:1"));
            out.push(v);
        }
        _ => {}
    }
    out
}

fn mutate(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut d = pool[rng.below(pool.len())].clone();
    for _ in 0..=rng.below(4) {
        match rng.below(9) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = [0u8, 0xff, 0x7f, 0x80, 0x01, 0x0a][rng.below(6)];
            }
            2 => {
                let i = rng.below(d.len() + 1);
                d.insert(i, rng.next() as u8);
            }
            3 if !d.is_empty() => {
                let i = rng.below(d.len());
                d.remove(i);
            }
            4 => d.truncate(rng.below(d.len() + 1)),
            5 => {
                let other = &pool[rng.below(pool.len())];
                let at = rng.below(d.len() + 1);
                let from = rng.below(other.len() + 1);
                d.splice(at..at, other[from..].iter().copied());
            }
            6 if !d.is_empty() => {
                let a = rng.below(d.len());
                let b = (a + rng.below(16)).min(d.len());
                let chunk = d[a..b].to_vec();
                d.extend_from_slice(&chunk);
            }
            7 => {
                let n = rng.below(64);
                d.extend((0..n).map(|_| rng.next() as u8));
            }
            _ => {
                let n = rng.below(256);
                d = (0..n).map(|_| rng.next() as u8).collect();
            }
        }
    }
    d
}

fn run(name: &str) {
    let (_, target) = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("known target");
    let secs: f64 = std::env::var("RAPIDP2P_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let seed: u64 = std::env::var("RAPIDP2P_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            t | 1
        });
    let mut rng = Rng(seed ^ name.len() as u64 | 1);
    let pool = seeds(name);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut runs = 0u64;
    for s in &pool {
        check(name, *target, s, seed);
    }
    while Instant::now() < end {
        for _ in 0..256 {
            let input = mutate(&mut rng, &pool);
            check(name, *target, &input, seed);
            runs += 1;
        }
    }
    eprintln!("fuzz {name}: {runs} inputs in {secs} s (RAPIDP2P_FUZZ_SEED={seed})");
    assert!(runs > 0);
}

fn check(name: &str, target: fn(&[u8]), input: &[u8], seed: u64) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(input))) {
        let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
        eprintln!("fuzz {name} panicked (RAPIDP2P_FUZZ_SEED={seed}) on input {hex}");
        std::panic::resume_unwind(panic);
    }
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { run(stringify!($name)); } )*

        #[test]
        fn every_target_has_a_test() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in TARGETS {
                assert!(tested.contains(name), "{name} has no stable fuzz test");
            }
        }
    };
}

targets!(
    varint,
    frames,
    multiaddr,
    multiaddr_text,
    key_protobuf,
    peer_id,
    multihash_cid,
    noise_payload,
    noise_handshake,
    noise_frames,
    upgrade,
    yamux_header,
    yamux_session,
    mplex_session,
    identify,
    envelope,
    kad_message,
    pubsub_rpc,
    tls_certificate,
    webrtc_message,
    webrtc_stun,
    qpack_fields,
    h3_session,
);
