//! The cacophony vector for Noise_XX_25519_ChaChaPoly_SHA256 (vector data copied from the
//! public cacophony test-vector set): fixed keys, non-empty prologue, three handshake messages
//! and three transport messages that alternate direction after the handshake.

use rapidp2p_noise::{Handshake, Transport, TAG_LEN};

const PROLOGUE: &str = "4a6f686e2047616c74";
const INIT_STATIC: &str = "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1";
const INIT_EPHEMERAL: &str = "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
const RESP_STATIC: &str = "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893";
const RESP_EPHEMERAL: &str = "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";
const HANDSHAKE_HASH: &str = "c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e";
const MESSAGES: [(&str, &str); 6] = [
    (
        "4c756477696720766f6e204d69736573",
        "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573",
    ),
    (
        "4d757272617920526f746862617264",
        "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2b65285e08d6b68aaa3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f8a0db50f8814c7194e83f23dbd8d162c9326ad",
    ),
    (
        "462e20412e20486179656b",
        "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0865b57f58c9fea0d4ec82a286427402f113e4b6ae769a1d95941d49b25030",
    ),
    (
        "4361726c204d656e676572",
        "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df",
    ),
    (
        "4a65616e2d426170746973746520536179",
        "3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5",
    ),
    (
        "457567656e2042f6686d20766f6e2042617765726b",
        "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f",
    ),
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn key(s: &str) -> [u8; 32] {
    unhex(s).try_into().expect("32 bytes")
}

fn frame(ciphertext: &[u8]) -> Vec<u8> {
    let mut f = u16::try_from(ciphertext.len())
        .expect("fits")
        .to_be_bytes()
        .to_vec();
    f.extend_from_slice(ciphertext);
    f
}

#[test]
fn cacophony_xx_25519_chachapoly_sha256() {
    let prologue = unhex(PROLOGUE);
    let mut init = Handshake::new(true, Some(key(INIT_STATIC)), &prologue).expect("init");
    let mut resp = Handshake::new(false, Some(key(RESP_STATIC)), &prologue).expect("resp");
    init.set_ephemeral_for_test(key(INIT_EPHEMERAL));
    resp.set_ephemeral_for_test(key(RESP_EPHEMERAL));

    // Handshake: messages 0 and 2 from the initiator, 1 from the responder.
    for (i, (payload, ciphertext)) in MESSAGES[..3].iter().enumerate() {
        let (writer, reader) = if i % 2 == 0 {
            (&mut init, &mut resp)
        } else {
            (&mut resp, &mut init)
        };
        let msg = writer.write_message(&unhex(payload)).expect("write");
        assert_eq!(msg, unhex(ciphertext), "handshake message {i}");
        assert_eq!(reader.read_message(&msg).expect("read"), unhex(payload));
    }
    assert!(init.is_finished() && resp.is_finished());
    assert_eq!(init.handshake_hash().to_vec(), unhex(HANDSHAKE_HASH));
    assert_eq!(resp.handshake_hash().to_vec(), unhex(HANDSHAKE_HASH));
    assert_eq!(
        init.remote_static_public(),
        Some(resp.local_static_public())
    );
    assert_eq!(
        resp.remote_static_public(),
        Some(init.local_static_public())
    );

    let mut ti: Transport = init.into_transport().expect("split");
    let mut tr: Transport = resp.into_transport().expect("split");
    assert_eq!(ti.handshake_hash().to_vec(), unhex(HANDSHAKE_HASH));

    // Transport messages keep alternating: responder, initiator, responder.
    for (i, (payload, ciphertext)) in MESSAGES[3..].iter().enumerate() {
        let (writer, reader) = if i % 2 == 0 {
            (&mut tr, &mut ti)
        } else {
            (&mut ti, &mut tr)
        };
        let plain = unhex(payload);
        let mut wire = Vec::new();
        writer.encrypt(&plain, &mut wire).expect("encrypt");
        let want = unhex(ciphertext);
        assert_eq!(want.len(), plain.len() + TAG_LEN);
        assert_eq!(wire, frame(&want), "transport message {}", i + 3);
        let mut out = Vec::new();
        assert_eq!(
            reader.decrypt(&wire, &mut out).expect("decrypt"),
            wire.len()
        );
        assert_eq!(out, plain);
    }
}
