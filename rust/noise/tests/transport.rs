//! Transport framing and AEAD: splitting, partial input, tampering, replay, reordering.

use proptest::prelude::*;
use rapidp2p_noise::{
    encrypted_len, scan_frames, Handshake, NoiseError, Transport, FRAME_OVERHEAD, LEN_PREFIX,
    MAX_FRAME_PLAINTEXT, MAX_MESSAGE_LEN, TAG_LEN,
};

fn pair() -> (Transport, Transport) {
    let mut i = Handshake::initiator().expect("init");
    let mut r = Handshake::responder().expect("resp");
    let m1 = i.write_message(b"").expect("m1");
    r.read_message(&m1).expect("m1");
    let m2 = r.write_message(b"").expect("m2");
    i.read_message(&m2).expect("m2");
    let m3 = i.write_message(b"").expect("m3");
    r.read_message(&m3).expect("m3");
    (
        i.into_transport().expect("i"),
        r.into_transport().expect("r"),
    )
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn large_writes_split_at_65519() {
    let (mut a, mut b) = pair();
    let data = pattern(3 * MAX_FRAME_PLAINTEXT + 5);
    let mut wire = Vec::new();
    a.encrypt(&data, &mut wire).expect("enc");
    assert_eq!(wire.len(), encrypted_len(data.len()));
    assert_eq!(wire.len(), data.len() + 4 * FRAME_OVERHEAD);
    assert_eq!(&wire[..2], &(MAX_MESSAGE_LEN as u16).to_be_bytes());
    assert_eq!(a.send_nonce(), 4);
    let mut out = Vec::new();
    assert_eq!(b.decrypt(&wire, &mut out).expect("dec"), wire.len());
    assert_eq!(out, data);
    assert_eq!(b.recv_nonce(), 4);
}

#[test]
fn empty_write_produces_nothing() {
    let (mut a, _) = pair();
    let mut wire = Vec::new();
    a.encrypt(b"", &mut wire).expect("enc");
    assert!(wire.is_empty());
    assert_eq!(a.send_nonce(), 0);
}

#[test]
fn partial_frames_are_left_for_later() {
    let (mut a, mut b) = pair();
    let mut wire = Vec::new();
    a.encrypt(b"first", &mut wire).expect("enc");
    let first_len = wire.len();
    a.encrypt(b"second", &mut wire).expect("enc");
    let mut out = Vec::new();
    for cut in [0, 1, LEN_PREFIX, first_len - 1] {
        assert_eq!(b.decrypt(&wire[..cut], &mut out).expect("partial"), 0);
        assert!(out.is_empty());
    }
    assert_eq!(
        b.decrypt(&wire[..wire.len() - 1], &mut out).expect("one"),
        first_len
    );
    assert_eq!(out, b"first");
    assert_eq!(
        b.decrypt(&wire[first_len..], &mut out).expect("two"),
        wire.len() - first_len
    );
    assert_eq!(out, b"firstsecond");
}

#[test]
fn bit_flips_fail_and_do_not_advance_the_nonce() {
    let (mut a, mut b) = pair();
    let mut wire = Vec::new();
    a.encrypt(b"attack at dawn", &mut wire).expect("enc");
    for bit in (LEN_PREFIX * 8)..wire.len() * 8 {
        let mut bad = wire.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let mut out = Vec::new();
        assert_eq!(
            b.decrypt(&bad, &mut out),
            Err(NoiseError::Decrypt),
            "bit {bit}"
        );
        assert!(out.is_empty());
        assert_eq!(b.recv_nonce(), 0);
    }
    let mut out = Vec::new();
    b.decrypt(&wire, &mut out)
        .expect("the genuine frame still opens");
    assert_eq!(out, b"attack at dawn");
}

#[test]
fn replay_and_reorder_are_detected() {
    let (mut a, mut b) = pair();
    let mut f1 = Vec::new();
    a.encrypt(b"one", &mut f1).expect("enc");
    let mut f2 = Vec::new();
    a.encrypt(b"two", &mut f2).expect("enc");
    let mut out = Vec::new();
    assert_eq!(
        b.decrypt(&f2, &mut out),
        Err(NoiseError::Decrypt),
        "reordered"
    );
    assert_eq!(b.recv_nonce(), 0);
    b.decrypt(&f1, &mut out).expect("in order");
    assert_eq!(
        b.decrypt(&f1, &mut out),
        Err(NoiseError::Decrypt),
        "replayed"
    );
    assert_eq!(b.recv_nonce(), 1);
    b.decrypt(&f2, &mut out).expect("in order");
    assert_eq!(out, b"onetwo");
}

#[test]
fn a_bad_frame_keeps_the_good_ones_before_it() {
    let (mut a, mut b) = pair();
    let mut wire = Vec::new();
    a.encrypt(b"good", &mut wire).expect("enc");
    let good_len = wire.len();
    a.encrypt(b"evil", &mut wire).expect("enc");
    let last = wire.len() - 1;
    wire[last] ^= 0x80;
    let mut out = Vec::new();
    assert_eq!(b.decrypt(&wire, &mut out), Err(NoiseError::Decrypt));
    assert_eq!(out, b"good");
    assert_eq!(b.recv_nonce(), 1);
    assert_eq!(
        b.decrypt(&wire[good_len..], &mut out),
        Err(NoiseError::Decrypt)
    );
}

#[test]
fn frames_shorter_than_a_tag_are_refused() {
    let (_, mut b) = pair();
    for len in 0..TAG_LEN {
        let mut frame = (len as u16).to_be_bytes().to_vec();
        frame.extend(std::iter::repeat_n(0u8, len));
        let mut out = Vec::new();
        assert_eq!(
            b.decrypt(&frame, &mut out),
            Err(NoiseError::ShortFrame(len))
        );
        assert_eq!(b.recv_nonce(), 0);
    }
}

#[test]
fn decrypt_never_grows_output_beyond_input() {
    let (mut a, mut b) = pair();
    let mut wire = Vec::new();
    a.encrypt(&pattern(100_000), &mut wire).expect("enc");
    // Garbage claiming a 65535-byte frame with only a few bytes present allocates nothing.
    let mut out = Vec::new();
    assert_eq!(
        b.decrypt(&[0xff, 0xff, 1, 2, 3], &mut out)
            .expect("partial"),
        0
    );
    assert_eq!(out.capacity(), 0);
    b.decrypt(&wire, &mut out).expect("dec");
    assert!(out.capacity() <= wire.len());
}

#[test]
fn slice_apis_match_the_vec_apis() {
    let (mut a, mut b) = pair();
    let data = pattern(2 * MAX_FRAME_PLAINTEXT + 10);
    let mut via_slice = vec![0u8; encrypted_len(data.len())];
    assert_eq!(
        a.encrypt_to_slice(&data, &mut via_slice).expect("enc"),
        via_slice.len()
    );
    let (consumed, plain) = scan_frames(&via_slice);
    assert_eq!((consumed, plain), (via_slice.len(), data.len()));
    let mut out = vec![0u8; plain];
    assert_eq!(
        b.decrypt_to_slice(&via_slice, &mut out).expect("dec"),
        (consumed, plain)
    );
    assert_eq!(out, data);
    let mut small = vec![0u8; 3];
    assert!(a.encrypt_to_slice(&data, &mut small).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_any_writes_any_chunking(
        writes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..70_000), 1..4),
        cut in 1usize..70_000,
    ) {
        let (mut a, mut b) = pair();
        let mut wire = Vec::new();
        for w in &writes {
            a.encrypt(w, &mut wire).expect("enc");
        }
        // Deliver the wire in pieces of `cut` bytes, keeping the unconsumed tail like a caller.
        let mut pending = Vec::new();
        let mut out = Vec::new();
        for piece in wire.chunks(cut) {
            pending.extend_from_slice(piece);
            let used = b.decrypt(&pending, &mut out).expect("dec");
            pending.drain(..used);
        }
        prop_assert!(pending.is_empty());
        prop_assert_eq!(out, writes.concat());
    }

    #[test]
    fn random_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (_, mut b) = pair();
        let mut out = Vec::new();
        let before = b.recv_nonce();
        match b.decrypt(&input, &mut out) {
            Ok(used) => { prop_assert!(used <= input.len()); prop_assert!(out.is_empty()); }
            Err(_) => prop_assert_eq!(b.recv_nonce(), before),
        }
        let mut r = Handshake::responder().expect("resp");
        let _ = r.read_message(&input);
        let mut i = Handshake::initiator().expect("init");
        i.write_message(b"").expect("m1");
        let _ = i.read_message(&input);
    }
}
