//! In-memory initiator <-> responder handshakes, including every way a peer can misbehave.

use rapidp2p_noise::{Handshake, NoiseError, Transport, DHLEN, MAX_MESSAGE_LEN, TAG_LEN};

/// The three payloads as the receivers saw them.
type Payloads = (Vec<u8>, Vec<u8>, Vec<u8>);

fn run(i: &mut Handshake, r: &mut Handshake) -> Result<Payloads, NoiseError> {
    let m1 = i.write_message(b"")?;
    let p1 = r.read_message(&m1)?;
    let m2 = r.write_message(b"responder payload")?;
    let p2 = i.read_message(&m2)?;
    let m3 = i.write_message(b"initiator payload")?;
    let p3 = r.read_message(&m3)?;
    Ok((p1, p2, p3))
}

fn finished_pair() -> (Transport, Transport) {
    let mut i = Handshake::initiator().expect("init");
    let mut r = Handshake::responder().expect("resp");
    run(&mut i, &mut r).expect("handshake");
    (
        i.into_transport().expect("i"),
        r.into_transport().expect("r"),
    )
}

#[test]
fn handshake_delivers_payloads_and_static_keys() {
    let i_secret = [7u8; 32];
    let mut i = Handshake::new(true, Some(i_secret), b"").expect("init");
    let mut r = Handshake::responder().expect("resp");
    assert_eq!(
        i.local_static_public(),
        rapidp2p_noise::public_key_of(&i_secret)
    );
    assert_eq!(i.remote_static_public(), None);
    assert!(i.is_my_turn() && !r.is_my_turn());
    let (p1, p2, p3) = run(&mut i, &mut r).expect("handshake");
    assert!(p1.is_empty());
    assert_eq!(p2, b"responder payload");
    assert_eq!(p3, b"initiator payload");
    assert!(i.is_finished() && r.is_finished());
    assert_eq!(i.remote_static_public(), Some(r.local_static_public()));
    assert_eq!(r.remote_static_public(), Some(i.local_static_public()));
    assert_eq!(i.handshake_hash(), r.handshake_hash());
    let ti = i.into_transport().expect("i");
    let tr = r.into_transport().expect("r");
    assert_eq!(ti.handshake_hash(), tr.handshake_hash());
    assert!(ti.is_initiator() && !tr.is_initiator());
}

#[test]
fn message_sizes_match_the_pattern() {
    let mut i = Handshake::initiator().expect("init");
    let mut r = Handshake::responder().expect("resp");
    let m1 = i.write_message(b"").expect("m1");
    assert_eq!(m1.len(), DHLEN);
    r.read_message(&m1).expect("m1");
    let m2 = r.write_message(b"abc").expect("m2");
    assert_eq!(m2.len(), DHLEN + DHLEN + TAG_LEN + 3 + TAG_LEN);
    i.read_message(&m2).expect("m2");
    let m3 = i.write_message(b"abcd").expect("m3");
    assert_eq!(m3.len(), DHLEN + TAG_LEN + 4 + TAG_LEN);
}

#[test]
fn different_prologues_fail_at_the_first_tag() {
    let mut i = Handshake::new(true, None, b"one").expect("init");
    let mut r = Handshake::new(false, None, b"two").expect("resp");
    let m1 = i.write_message(b"").expect("m1");
    r.read_message(&m1).expect("message 1 has no tag");
    let m2 = r.write_message(b"").expect("m2");
    assert_eq!(i.read_message(&m2), Err(NoiseError::Decrypt));
}

#[test]
fn out_of_order_calls_are_errors() {
    let mut i = Handshake::initiator().expect("init");
    let mut r = Handshake::responder().expect("resp");
    assert!(matches!(
        r.write_message(b""),
        Err(NoiseError::OutOfOrder(_))
    ));
    assert!(matches!(
        i.read_message(&[0u8; 32]),
        Err(NoiseError::OutOfOrder(_))
    ));
    assert!(matches!(
        Handshake::initiator().expect("i").into_transport(),
        Err(NoiseError::NotFinished)
    ));
    run(&mut i, &mut Handshake::responder().expect("r")).expect("handshake");
    assert!(matches!(
        i.write_message(b""),
        Err(NoiseError::OutOfOrder(_))
    ));
    assert!(matches!(
        i.read_message(b""),
        Err(NoiseError::OutOfOrder(_))
    ));
}

#[test]
fn truncated_messages_fail_and_poison() {
    for cut in [0usize, 1, 31] {
        let mut i = Handshake::initiator().expect("init");
        let mut r = Handshake::responder().expect("resp");
        let m1 = i.write_message(b"").expect("m1");
        assert!(matches!(
            r.read_message(&m1[..cut]),
            Err(NoiseError::Truncated { .. })
        ));
        assert_eq!(r.read_message(&m1), Err(NoiseError::Poisoned));
        assert!(matches!(r.into_transport(), Err(NoiseError::Poisoned)));
    }
    // Message 2 and 3 cut anywhere: a length error or a tag error, never a panic.
    let mut i = Handshake::initiator().expect("init");
    let mut r = Handshake::responder().expect("resp");
    let m1 = i.write_message(b"").expect("m1");
    r.read_message(&m1).expect("m1");
    let m2 = r.write_message(b"payload").expect("m2");
    for cut in 0..m2.len() {
        let mut i2 = Handshake::new(true, None, b"").expect("init");
        i2.write_message(b"").expect("m1");
        assert!(i2.read_message(&m2[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn every_bit_flip_in_messages_two_and_three_is_detected() {
    let mut i = Handshake::new(true, Some([1u8; 32]), b"").expect("init");
    let mut r = Handshake::new(false, Some([2u8; 32]), b"").expect("resp");
    i.set_ephemeral_for_test([3u8; 32]);
    r.set_ephemeral_for_test([4u8; 32]);
    let m1 = i.write_message(b"").expect("m1");
    r.read_message(&m1).expect("m1");
    let m2 = r.write_message(b"p2").expect("m2");
    i.read_message(&m2).expect("m2");
    let m3 = i.write_message(b"p3").expect("m3");

    for bit in 0..m2.len() * 8 {
        let mut bad = m2.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let mut i2 = Handshake::new(true, Some([1u8; 32]), b"").expect("init");
        i2.set_ephemeral_for_test([3u8; 32]);
        i2.write_message(b"").expect("m1");
        assert!(i2.read_message(&bad).is_err(), "m2 bit {bit}");
    }
    for bit in 0..m3.len() * 8 {
        let mut bad = m3.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let mut r2 = Handshake::new(false, Some([2u8; 32]), b"").expect("resp");
        r2.set_ephemeral_for_test([4u8; 32]);
        r2.read_message(&m1).expect("m1");
        r2.write_message(b"p2").expect("m2");
        assert_eq!(
            r2.read_message(&bad),
            Err(NoiseError::Decrypt),
            "m3 bit {bit}"
        );
    }
    r.read_message(&m3).expect("untampered m3 still works");
}

#[test]
fn oversize_messages_are_refused() {
    let mut i = Handshake::initiator().expect("init");
    let too_big = vec![0u8; MAX_MESSAGE_LEN - DHLEN + 1];
    assert!(matches!(
        i.write_message(&too_big),
        Err(NoiseError::TooLarge(_))
    ));
    let mut i = Handshake::initiator().expect("init");
    let fits = vec![0u8; MAX_MESSAGE_LEN - DHLEN];
    assert_eq!(i.write_message(&fits).expect("max").len(), MAX_MESSAGE_LEN);
    let mut r = Handshake::responder().expect("resp");
    assert!(matches!(
        r.read_message(&vec![0u8; MAX_MESSAGE_LEN + 1]),
        Err(NoiseError::TooLarge(_))
    ));
}

#[test]
fn low_order_ephemeral_is_rejected() {
    let mut r = Handshake::responder().expect("resp");
    r.read_message(&[0u8; 32]).expect("e is only hashed");
    assert_eq!(r.write_message(b""), Err(NoiseError::LowOrderKey));
    assert_eq!(r.write_message(b""), Err(NoiseError::Poisoned));
}

#[test]
fn transports_talk_both_ways() {
    let (mut a, mut b) = finished_pair();
    let mut wire = Vec::new();
    a.encrypt(b"ping", &mut wire).expect("enc");
    let mut out = Vec::new();
    assert_eq!(b.decrypt(&wire, &mut out).expect("dec"), wire.len());
    assert_eq!(out, b"ping");
    wire.clear();
    b.encrypt(b"pong", &mut wire).expect("enc");
    out.clear();
    a.decrypt(&wire, &mut out).expect("dec");
    assert_eq!(out, b"pong");
}
