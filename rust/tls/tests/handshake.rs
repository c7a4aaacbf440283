//! Two endpoints wired in memory: handshake, peer ids, early muxer, records both ways, and the
//! refusals (wrong peer id, no extension, bad signature, garbage and truncated records).

use rapidp2p_tls::{CertKey, Handshake, Identity, TlsError, Transport, SIGNING_PREFIX};
use rapidp2p_wire::{keyproto, peerid};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

/// Signs a message with a host identity key.
type Signer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// A host identity key: the protobuf of its public key and a signer.
struct HostKey {
    public_key: Vec<u8>,
    sign: Signer,
}

/// The wall-clock time the handshakes check certificates at (2026-12-01, Unix seconds).
const NOW: i64 = 1_796_083_200;

fn ed25519() -> HostKey {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let mut public_key = Vec::new();
    keyproto::encode(1, kp.public_key().as_ref(), &mut public_key).unwrap();
    HostKey {
        public_key,
        sign: Box::new(move |m| kp.sign(m).as_ref().to_vec()),
    }
}

fn ecdsa_p256() -> HostKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let kp =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // SubjectPublicKeyInfo of a P-256 key: fixed header + the uncompressed point.
    let mut spki = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    spki.extend_from_slice(kp.public_key().as_ref());
    let mut public_key = Vec::new();
    keyproto::encode(3, &spki, &mut public_key).unwrap();
    HostKey {
        public_key,
        sign: Box::new(move |m| kp.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec()),
    }
}

fn secp256k1() -> HostKey {
    use k256::ecdsa::signature::Signer;
    use k256::ecdsa::{Signature, SigningKey};
    let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let point = sk.verifying_key().to_encoded_point(true);
    let mut public_key = Vec::new();
    keyproto::encode(2, point.as_bytes(), &mut public_key).unwrap();
    HostKey {
        public_key,
        sign: Box::new(move |m| {
            let sig: Signature = sk.sign(m);
            sig.to_der().as_bytes().to_vec()
        }),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn identity(key: &HostKey) -> Identity {
    let ck = CertKey::generate().unwrap();
    let sig = (key.sign)(&ck.message_to_sign());
    ck.certify(&key.public_key, &sig).unwrap()
}

/// Moves bytes between the two handshakes until both finish or one fails.
fn run(client: &mut Handshake, server: &mut Handshake) -> Result<(), (bool, TlsError)> {
    for _ in 0..10 {
        let mut buf = Vec::new();
        client.write_output(&mut buf).unwrap();
        if !buf.is_empty() {
            server.receive(&buf).map_err(|e| (false, e))?;
        }
        let mut buf = Vec::new();
        server.write_output(&mut buf).unwrap();
        if !buf.is_empty() {
            client.receive(&buf).map_err(|e| (true, e))?;
        }
        if client.is_finished() && server.is_finished() && !client.wants_write() {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

fn pair(
    client_key: &HostKey,
    server_key: &HostKey,
    muxers: (&[&str], &[&str]),
) -> (Handshake, Handshake) {
    let (ci, si) = (identity(client_key), identity(server_key));
    let expected = si.peer_id().to_vec();
    let client = Handshake::client(&ci, Some(&expected), muxers.0, NOW).unwrap();
    let server = Handshake::server(&si, muxers.1, NOW).unwrap();
    (client, server)
}

fn peer_id(key: &HostKey) -> Vec<u8> {
    let mut out = Vec::new();
    peerid::from_public_key_protobuf(&key.public_key, &mut out).unwrap();
    out
}

#[test]
fn handshake_all_supported_key_types_and_early_muxer() {
    let yamux: &[&str] = &["/yamux/1.0.0"];
    for (a, b) in [
        (ed25519(), ecdsa_p256()),
        (secp256k1(), ed25519()),
        (ecdsa_p256(), secp256k1()),
    ] {
        let (mut c, mut s) = pair(&a, &b, (yamux, yamux));
        run(&mut c, &mut s).unwrap();
        let (rc, rs) = (c.remote().unwrap(), s.remote().unwrap());
        assert_eq!(rc.peer_id, peer_id(&b));
        assert_eq!(rs.peer_id, peer_id(&a));
        assert_eq!(rc.public_key, b.public_key);
        assert_eq!(rc.muxer.as_deref(), Some("/yamux/1.0.0"));
        assert_eq!(rs.muxer.as_deref(), Some("/yamux/1.0.0"));
    }
}

#[test]
fn muxer_negotiated_later_when_either_side_omits_it() {
    let (a, b) = (ed25519(), ed25519());
    for muxers in [
        (&["/yamux/1.0.0"][..], &[][..]),
        (&[][..], &["/yamux/1.0.0"][..]),
    ] {
        let (mut c, mut s) = pair(&a, &b, muxers);
        run(&mut c, &mut s).unwrap();
        assert_eq!(c.remote().unwrap().muxer, None);
        assert_eq!(s.remote().unwrap().muxer, None);
    }
}

fn transports() -> (Transport, Transport) {
    let (a, b) = (ed25519(), ed25519());
    let (mut c, mut s) = pair(&a, &b, (&[], &[]));
    run(&mut c, &mut s).unwrap();
    assert!(c.take_early_data().is_empty() && s.take_early_data().is_empty());
    (c.into_transport().unwrap(), s.into_transport().unwrap())
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn records_both_ways_exact_sizes_any_split() {
    let (mut c, mut s) = transports();
    for n in [1, 100, 16 * 1024, 16 * 1024 + 1, 200_000] {
        let data = pattern(n);
        let mut wire = Vec::new();
        c.encrypt(&data, &mut wire).unwrap();
        assert_eq!(wire.len(), n + n.div_ceil(16384) * 22);
        // Fed in 1000-byte pieces: only whole records are consumed each time.
        let mut got = Vec::new();
        let mut held = Vec::new();
        for piece in wire.chunks(1000) {
            held.extend_from_slice(piece);
            let used = s.decrypt(&held, &mut got).unwrap();
            held.drain(..used);
            assert!(held.len() < 16 * 1024 + 22);
        }
        assert!(held.is_empty());
        assert_eq!(got, data);
        // The other way, in place, from gathered segments.
        let (x, y) = data.split_at(n / 3);
        let mut out = vec![0; s.encrypted_len(n)];
        assert_eq!(
            s.encrypt_gather_to_slice(&[x, y], &mut out).unwrap(),
            out.len()
        );
        let mut ranges = Vec::new();
        let used = c.decrypt_in_place(&mut out, &mut ranges).unwrap();
        assert_eq!(used, out.len());
        let plain: Vec<u8> = ranges
            .iter()
            .flat_map(|r| out[r.clone()].to_vec())
            .collect();
        assert_eq!(plain, data);
    }
}

#[test]
fn key_update_keeps_sizes_exact_and_data_flowing() {
    let (mut c, mut s) = transports();
    c.update_keys().unwrap();
    for round in 0..3 {
        let data = pattern(5000 + round);
        let mut wire = Vec::new();
        let expect = c.encrypted_len(data.len());
        c.encrypt(&data, &mut wire).unwrap();
        assert_eq!(wire.len(), expect);
        let mut got = Vec::new();
        assert_eq!(s.decrypt(&wire, &mut got).unwrap(), wire.len());
        assert_eq!(got, data);
        // The server answers the update before its next records.
        let mut back = Vec::new();
        s.encrypt(&data, &mut back).unwrap();
        let mut got = Vec::new();
        c.decrypt(&back, &mut got).unwrap();
        assert_eq!(got, data);
    }
}

#[test]
fn tampered_garbage_and_oversized_records_are_refused() {
    let (mut c, mut s) = transports();
    let mut wire = Vec::new();
    c.encrypt(b"hello", &mut wire).unwrap();
    let mut bad = wire.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        s.decrypt(&bad, &mut Vec::new()),
        Err(TlsError::Record(_))
    ));
    let (_, mut s) = transports();
    let garbage = b"GET / HTTP/1.1\r\n\r\n";
    assert!(matches!(
        s.decrypt(garbage, &mut Vec::new()),
        Err(TlsError::Record(_))
    ));
    let huge = [23u8, 3, 3, 0xff, 0xff];
    assert!(matches!(
        s.decrypt(&huge, &mut Vec::new()),
        Err(TlsError::Record(_))
    ));
    // A truncated record is not consumed and yields nothing.
    let (mut c, mut s) = transports();
    let mut wire = Vec::new();
    c.encrypt(b"hello", &mut wire).unwrap();
    let mut got = Vec::new();
    assert_eq!(s.decrypt(&wire[..wire.len() - 1], &mut got).unwrap(), 0);
    assert!(got.is_empty());
}

#[test]
fn wrong_peer_id_fails_the_dialer() {
    let (a, b, other) = (ed25519(), ed25519(), ed25519());
    let (ci, si) = (identity(&a), identity(&b));
    let mut c = Handshake::client(&ci, Some(&peer_id(&other)), &[], NOW).unwrap();
    let mut s = Handshake::server(&si, &[], NOW).unwrap();
    let err = run(&mut c, &mut s).unwrap_err();
    assert!(err.0, "the dialer must be the one failing");
    assert!(
        matches!(err.1, TlsError::PeerIdMismatch { .. }),
        "{:?}",
        err.1
    );
}

fn hostile_client(cert: Identity) -> TlsError {
    let b = ed25519();
    let mut c = Handshake::client(&cert, Some(&peer_id(&b)), &[], NOW).unwrap();
    let mut s = Handshake::server(&identity(&b), &[], NOW).unwrap();
    let (server_failed, err) = run(&mut c, &mut s).unwrap_err();
    assert!(
        !server_failed,
        "the listener must refuse the client certificate"
    );
    // The listener's alert reaches the client as a typed alert error.
    let mut alert = Vec::new();
    s.write_output(&mut alert).unwrap();
    assert!(matches!(c.receive(&alert), Err(TlsError::Alert(_))));
    err
}

#[test]
fn certificate_without_extension_is_refused() {
    let cert = CertKey::generate()
        .unwrap()
        .certify_unchecked(None)
        .unwrap();
    assert_eq!(hostile_client(cert), TlsError::MissingExtension);
}

#[test]
fn bad_identity_signature_is_refused() {
    let a = ed25519();
    let ck = CertKey::generate().unwrap();
    // Signed over the wrong message.
    let sig = (a.sign)(b"libp2p-tls-handshake:not the key");
    let cert = ck.certify_unchecked(Some((&a.public_key, &sig))).unwrap();
    assert_eq!(hostile_client(cert), TlsError::BadSignature);
    // A malformed key protobuf.
    let cert = CertKey::generate()
        .unwrap()
        .certify_unchecked(Some((b"\x08\x09", b"sig")))
        .unwrap();
    assert!(matches!(hostile_client(cert), TlsError::BadExtension(_)));
}

#[test]
fn certify_checks_our_own_signature() {
    let a = ed25519();
    let ck = CertKey::generate().unwrap();
    let mut msg = SIGNING_PREFIX.to_vec();
    msg.extend_from_slice(b"something else");
    let sig = (a.sign)(&msg);
    assert!(matches!(
        ck.certify(&a.public_key, &sig),
        Err(TlsError::Local(_))
    ));
}

#[test]
fn truncated_handshake_never_finishes_and_garbage_fails() {
    let (a, b) = (ed25519(), ed25519());
    let (mut c, mut s) = pair(&a, &b, (&[], &[]));
    let mut hello = Vec::new();
    c.write_output(&mut hello).unwrap();
    s.receive(&hello[..hello.len() / 2]).unwrap();
    assert!(!s.is_finished());
    let mut out = Vec::new();
    s.write_output(&mut out).unwrap();
    assert!(out.is_empty(), "nothing answered to half a ClientHello");
    let (_, mut s) = pair(&a, &b, (&[], &[]));
    assert!(s.receive(b"\x16\x03\x01\x00\x05hello").is_err());
}

#[test]
fn certificates_are_checked_at_the_time_passed_in() {
    // Our certificates are valid from 1975 to 4096: before (Unix 0) or after (year ~4188)
    // the side whose clock says so refuses the other's certificate, whatever the system
    // clock says.
    let (a, b) = (ed25519(), ed25519());
    let (ci, si) = (identity(&a), identity(&b));
    let expected = peer_id(&b);
    for off in [0_i64, 70_000_000_000] {
        for client_off in [true, false] {
            let (cn, sn) = if client_off { (off, NOW) } else { (NOW, off) };
            let mut c = Handshake::client(&ci, Some(&expected), &[], cn).unwrap();
            let mut s = Handshake::server(&si, &[], sn).unwrap();
            let (client_failed, err) = run(&mut c, &mut s).unwrap_err();
            assert_eq!(client_failed, client_off, "at {off}: {err:?}");
            assert!(
                matches!(err, TlsError::BadCertificate(ref m) if m.contains("not valid now")),
                "at {off}: {err:?}"
            );
        }
    }
    // set_time moves a handshake's clock: the same pair at a valid time succeeds.
    let mut c = Handshake::client(&ci, Some(&expected), &[], 0).unwrap();
    let mut s = Handshake::server(&si, &[], 0).unwrap();
    c.set_time(NOW);
    s.set_time(NOW);
    run(&mut c, &mut s).unwrap();
    assert_eq!(c.remote().unwrap().peer_id, expected);
}
