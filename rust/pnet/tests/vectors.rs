//! Known answers from an independent XSalsa20 (Go's golang.org/x/crypto/salsa20; the first
//! is also the vector of its test suite), and the two-protector round trip.

use rapidp2p_pnet::{PreSharedKey, Protector, NONCE_LEN};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// XSalsa20("this is 32-byte key for xsalsa20", "24-byte nonce for xsalsa") ^ "Hello world!".
#[test]
fn xsalsa20_hello_world() {
    let psk = PreSharedKey::new(*b"this is 32-byte key for xsalsa20");
    let mut p = Protector::new(&psk, *b"24-byte nonce for xsalsa");
    let mut buf = *b"Hello world!";
    p.encrypt(&mut buf);
    assert_eq!(buf.to_vec(), hex("002d4513843fc240c401e541"));
}

/// 200 bytes of keystream for key 00..1f, nonce 80..97 (Go's x/crypto/salsa20).
const KS: &str = "ee08d05b23f943b2857c7ecd10759bff94d2fe14bc4d0e7d3e6e36d5c2fcd9652493b740e0b9090cdca88ee3a193de1d3d46e04ea8adccef066b22a27788ac3b1bbdf5f49150f041c4f94ea993c0b5c63d1865e594cb8624ca0d9092b68b111ad0b6dc40f69e2b1e9979e07841889e37191d2c0f68249901e2cbf3dc68d604c56d1469e81e8589aec058507c58f84a668e636469bc26ae17cbdfcf6a6818b9999c974282450d511f7c1682bbcd6a27a4197310156ecaa97ac58a7355a123dcf5a271183fcb0ef6d8";

fn key() -> PreSharedKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    PreSharedKey::new(k)
}

fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    for (i, b) in n.iter_mut().enumerate() {
        *b = 0x80 + i as u8;
    }
    n
}

#[test]
fn keystream_continues_across_uneven_writes() {
    let want = hex(KS);
    for split in [[1usize, 63, 64, 72], [7, 57, 100, 36], [200, 0, 0, 0]] {
        let mut p = Protector::new(&key(), nonce());
        let mut got = Vec::new();
        for n in split {
            let mut chunk = vec![0u8; n];
            p.encrypt(&mut chunk);
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, want, "split {split:?}");
    }
}

#[test]
fn decrypt_takes_the_nonce_from_the_stream_in_any_split() {
    let want = hex(KS);
    // The remote sends its nonce then 200 bytes of ciphertext of zeros (= the keystream).
    let mut wire = nonce().to_vec();
    wire.extend_from_slice(&want);
    for cut in [1usize, 5, 23, 24, 25, 90, wire.len()] {
        let mut p = Protector::new(&key(), [0; NONCE_LEN]);
        let mut plain = Vec::new();
        for piece in wire.chunks(cut) {
            let mut piece = piece.to_vec();
            let skip = p.decrypt(&mut piece);
            plain.extend_from_slice(&piece[skip..]);
        }
        assert_eq!(p.remote_nonce(), Some(&nonce()));
        assert_eq!(plain, want.iter().map(|b| b ^ b).collect::<Vec<u8>>());
    }
}

#[test]
fn two_protectors_talk_and_a_wrong_key_yields_garbage() {
    let psk = key();
    let mut a = Protector::with_random_nonce(&psk).unwrap();
    let mut b = Protector::with_random_nonce(&psk).unwrap();
    assert_ne!(a.local_nonce(), b.local_nonce());
    let msg = b"\x13/multistream/1.0.0\n".to_vec();
    let mut wire = a.local_nonce().to_vec();
    let mut body = msg.clone();
    a.encrypt(&mut body);
    wire.extend_from_slice(&body);
    let mut rx = wire.clone();
    let skip = b.decrypt(&mut rx);
    assert_eq!(&rx[skip..], &msg[..]);

    let mut other = Protector::new(&PreSharedKey::new([9; 32]), [1; NONCE_LEN]);
    let mut rx = wire;
    let skip = other.decrypt(&mut rx);
    assert_ne!(&rx[skip..], &msg[..]);
}

#[test]
fn a_truncated_nonce_is_reported_as_partial() {
    let mut p = Protector::new(&key(), nonce());
    let mut part = [1u8; 10];
    assert_eq!(p.decrypt(&mut part), 10);
    assert_eq!(p.remote_nonce_received(), 10);
    assert_eq!(p.remote_nonce(), None);
}
