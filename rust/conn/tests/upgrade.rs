//! Whole connections from their first byte: multistream-select of the security protocol, the
//! Noise or TLS handshake (signature checks answered as the Python side answers them), the
//! early or negotiated muxer, then streams; and every typed way an upgrade fails.

use rapidp2p_conn::mplex;
use rapidp2p_conn::multistream::{encode_message, HEADER, NA};
use rapidp2p_conn::tls::{CertKey, Identity};
use rapidp2p_conn::upgrade::{
    encode_noise_payload, NoiseConfig, NOISE_ID, NOISE_SIGNATURE_PREFIX, REASON_WAIT, TLS_ID,
};
use rapidp2p_conn::yamux::{Config, Event, Role};
use rapidp2p_conn::{
    noise, Cipher, ConnError, Connection, Upgrade, UpgradeConfig, UpgradeError, UpgradeEvent,
    YAMUX_ID,
};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

/// The wall-clock time the handshakes check certificates at (2026-12-01, Unix seconds).
const NOW: i64 = 1_796_083_200;
const MPLEX: &str = "/mplex/6.7.0";

struct Key {
    kp: Ed25519KeyPair,
    pb: Vec<u8>,
}

impl Key {
    fn new() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let mut pb = vec![0x08, 0x01, 0x12, 0x20];
        pb.extend_from_slice(kp.public_key().as_ref());
        Self { kp, pb }
    }

    /// Identity multihash of the key protobuf (36 bytes: inlined).
    fn peer_id(&self) -> Vec<u8> {
        let mut out = vec![0x00, self.pb.len() as u8];
        out.extend_from_slice(&self.pb);
        out
    }

    fn noise(&self, muxers: &[&str]) -> NoiseConfig {
        let secret = noise::generate_static_secret().unwrap();
        let mut msg = NOISE_SIGNATURE_PREFIX.to_vec();
        msg.extend_from_slice(&noise::public_key_of(&secret));
        let sig = self.kp.sign(&msg);
        let muxers: Vec<String> = muxers.iter().map(|m| m.to_string()).collect();
        NoiseConfig {
            static_secret: secret,
            payload: encode_noise_payload(&self.pb, sig.as_ref(), &muxers),
        }
    }

    fn tls(&self) -> Identity {
        let ck = CertKey::generate().unwrap();
        let sig = self.kp.sign(&ck.message_to_sign());
        ck.certify(&self.pb, sig.as_ref()).unwrap()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

struct Opts<'a> {
    protocols: &'a [&'a str],
    early: &'a [&'a str],
    muxers: &'a [&'a str],
    expected: Option<Vec<u8>>,
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Self {
            protocols: &[NOISE_ID],
            early: &[YAMUX_ID, MPLEX],
            muxers: &[YAMUX_ID, MPLEX],
            expected: None,
        }
    }
}

fn side(key: &Key, initiator: bool, o: Opts<'_>) -> Connection<Cipher> {
    let up = Upgrade::new(UpgradeConfig {
        initiator,
        protocols: strings(o.protocols),
        expected_peer: o.expected,
        early_muxers: strings(o.early),
        noise: Some(key.noise(o.early)),
        tls: Some(key.tls()),
        unix_now: NOW,
    })
    .unwrap();
    let role = if initiator {
        Role::Client
    } else {
        Role::Server
    };
    let cfg = Config {
        keepalive_interval: None,
        ..Config::default()
    };
    Connection::upgrading(up, role, cfg, strings(o.muxers), mplex::Config::default()).unwrap()
}

/// What one side saw.
#[derive(Default)]
struct Seen {
    upgrade: Vec<UpgradeEvent>,
    events: Vec<Event>,
    /// Answers given to Verify events: the verdict of a real Ed25519 check, or forced.
    force_bad: bool,
}

/// Answers every Verify the way the Python side does (signature over prefix + static key).
fn answer(c: &mut Connection<Cipher>, seen: &mut Seen) -> Result<(), ConnError> {
    loop {
        let evs = c.take_upgrade_events();
        if evs.is_empty() {
            return Ok(());
        }
        for e in evs {
            if let UpgradeEvent::Verify {
                key,
                signature,
                static_key,
            } = &e
            {
                assert_eq!(&key[..4], &[0x08, 0x01, 0x12, 0x20]);
                let mut msg = NOISE_SIGNATURE_PREFIX.to_vec();
                msg.extend_from_slice(static_key);
                let ok = UnparsedPublicKey::new(&ED25519, &key[4..])
                    .verify(&msg, signature)
                    .is_ok();
                seen.upgrade.push(e.clone());
                let verdict = if ok && !seen.force_bad {
                    Ok(())
                } else {
                    Err("bad Noise identity signature".to_string())
                };
                c.verified(verdict, 0.0, &mut seen.events)?;
            } else {
                seen.upgrade.push(e);
            }
        }
    }
}

/// Moves bytes both ways (in `chunk`-byte reads) until nothing moves; the first error.
fn pump(
    a: &mut Connection<Cipher>,
    sa: &mut Seen,
    b: &mut Connection<Cipher>,
    sb: &mut Seen,
    chunk: usize,
) -> Result<(), (bool, ConnError)> {
    answer(a, sa).map_err(|e| (true, e))?;
    answer(b, sb).map_err(|e| (false, e))?;
    for _ in 0..100 {
        let mut moved = false;
        for dir in [true, false] {
            let (from, to, seen) = if dir {
                (&mut *a, &mut *b, &mut *sb)
            } else {
                (&mut *b, &mut *a, &mut *sa)
            };
            let wire = from.take_output().map_err(|e| (dir, e))?;
            if wire.is_empty() {
                continue;
            }
            moved = true;
            for piece in wire.chunks(chunk) {
                to.receive_copy(piece, 0.0, &mut seen.events)
                    .map_err(|e| (!dir, e))?;
                answer(to, seen).map_err(|e| (!dir, e))?;
            }
        }
        if !moved {
            return Ok(());
        }
    }
    panic!("the connections never went quiet");
}

fn secured(seen: &Seen) -> (String, Vec<u8>, Option<String>) {
    seen.upgrade
        .iter()
        .find_map(|e| match e {
            UpgradeEvent::Secured {
                protocol,
                peer,
                muxer,
                ..
            } => Some((protocol.clone(), peer.clone(), muxer.clone())),
            _ => None,
        })
        .expect("secured")
}

fn round_trip(
    d: &mut Connection<Cipher>,
    sd: &mut Seen,
    l: &mut Connection<Cipher>,
    sl: &mut Seen,
) {
    let id = d.open_stream().unwrap();
    d.send(id, b"ping over the upgraded connection", true)
        .unwrap();
    pump(d, sd, l, sl, 65536).unwrap();
    let got: Vec<u8> = sl
        .events
        .iter()
        .filter_map(|e| match e {
            // (mplex numbers a stream differently on each side)
            Event::Data(_, b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(got, b"ping over the upgraded connection");
}

#[test]
fn noise_with_early_yamux_in_any_split() {
    for chunk in [1, 7, 65536] {
        let (kd, kl) = (Key::new(), Key::new());
        let mut d = side(
            &kd,
            true,
            Opts {
                expected: Some(kl.peer_id()),
                ..Opts::default()
            },
        );
        let mut l = side(&kl, false, Opts::default());
        assert!(d.is_upgrading() && d.open_stream().is_err());
        let (mut sd, mut sl) = (Seen::default(), Seen::default());
        pump(&mut d, &mut sd, &mut l, &mut sl, chunk).unwrap();
        assert_eq!(
            secured(&sd),
            (NOISE_ID.into(), kl.peer_id(), Some(YAMUX_ID.into()))
        );
        assert_eq!(
            secured(&sl),
            (NOISE_ID.into(), kd.peer_id(), Some(YAMUX_ID.into()))
        );
        assert!(!d.is_upgrading() && d.is_encrypted());
        assert_eq!(d.muxer(), Some(YAMUX_ID));
        assert_eq!(d.take_muxer_selected().as_deref(), Some(YAMUX_ID));
        // The lazy dialer never saw a separate answer round: Selected comes with message 2.
        assert!(sl
            .upgrade
            .contains(&UpgradeEvent::Selected(NOISE_ID.into())));
        round_trip(&mut d, &mut sd, &mut l, &mut sl);
    }
}

#[test]
fn first_flights_are_one_write_each() {
    let (kd, kl) = (Key::new(), Key::new());
    let mut d = side(&kd, true, Opts::default());
    let mut l = side(&kl, false, Opts::default());
    let flight1 = d.take_output().unwrap();
    // header + "/noise" + Noise message 1 (2-byte length, 32-byte ephemeral key)
    let mut expect = Vec::new();
    encode_message(HEADER, &mut expect).unwrap();
    encode_message(NOISE_ID, &mut expect).unwrap();
    assert_eq!(&flight1[..expect.len()], &expect[..]);
    assert_eq!(flight1.len(), expect.len() + 2 + 32);
    l.receive_copy(&flight1, 0.0, &mut Vec::new()).unwrap();
    let flight2 = l.take_output().unwrap();
    assert_eq!(
        &flight2[..expect.len()],
        &expect[..],
        "header, /noise, then message 2"
    );
    assert!(flight2.len() > expect.len() + 2 + 96);
}

#[test]
fn negotiated_muxer_when_no_early_list_and_mplex_early() {
    // Noise without early muxers: multistream-select of the muxer inside the channel.
    let (kd, kl) = (Key::new(), Key::new());
    let none = Opts {
        early: &[],
        ..Opts::default()
    };
    let mut d = side(&kd, true, none);
    let mut l = side(
        &kl,
        false,
        Opts {
            early: &[],
            ..Opts::default()
        },
    );
    let (mut sd, mut sl) = (Seen::default(), Seen::default());
    pump(&mut d, &mut sd, &mut l, &mut sl, 65536).unwrap();
    assert_eq!(secured(&sd).2, None);
    assert_eq!(d.muxer(), Some(YAMUX_ID));
    assert_eq!(l.muxer(), Some(YAMUX_ID));
    round_trip(&mut d, &mut sd, &mut l, &mut sl);

    // Both list only mplex early: the session is mplex without a negotiation.
    let (kd, kl) = (Key::new(), Key::new());
    let only = Opts {
        early: &[MPLEX],
        ..Opts::default()
    };
    let mut d = side(&kd, true, only);
    let mut l = side(
        &kl,
        false,
        Opts {
            early: &[MPLEX],
            ..Opts::default()
        },
    );
    let (mut sd, mut sl) = (Seen::default(), Seen::default());
    pump(&mut d, &mut sd, &mut l, &mut sl, 65536).unwrap();
    assert_eq!(d.muxer(), Some(MPLEX));
    assert!(d.mplex().is_some() && l.mplex().is_some());
    round_trip(&mut d, &mut sd, &mut l, &mut sl);
}

#[test]
fn tls_with_alpn_yamux_and_a_second_proposal() {
    let (kd, kl) = (Key::new(), Key::new());
    let mut d = side(
        &kd,
        true,
        Opts {
            protocols: &[TLS_ID],
            expected: Some(kl.peer_id()),
            ..Opts::default()
        },
    );
    let mut l = side(
        &kl,
        false,
        Opts {
            protocols: &[NOISE_ID, TLS_ID],
            ..Opts::default()
        },
    );
    let (mut sd, mut sl) = (Seen::default(), Seen::default());
    pump(&mut d, &mut sd, &mut l, &mut sl, 65536).unwrap();
    assert_eq!(
        secured(&sd),
        (TLS_ID.into(), kl.peer_id(), Some(YAMUX_ID.into()))
    );
    assert_eq!(secured(&sl).1, kd.peer_id());
    round_trip(&mut d, &mut sd, &mut l, &mut sl);

    // The dialer proposes TLS first, the listener speaks only Noise: `na`, then Noise.
    let (kd, kl) = (Key::new(), Key::new());
    let mut d = side(
        &kd,
        true,
        Opts {
            protocols: &[TLS_ID, NOISE_ID],
            ..Opts::default()
        },
    );
    let mut l = side(&kl, false, Opts::default());
    let (mut sd, mut sl) = (Seen::default(), Seen::default());
    pump(&mut d, &mut sd, &mut l, &mut sl, 3).unwrap();
    assert_eq!(secured(&sd).0, NOISE_ID);
    assert!(sd
        .upgrade
        .contains(&UpgradeEvent::Selected(NOISE_ID.into())));
    round_trip(&mut d, &mut sd, &mut l, &mut sl);
}

fn upgrade_err(r: Result<(), (bool, ConnError)>) -> (bool, UpgradeError) {
    match r {
        Err((who, ConnError::Upgrade(e))) => (who, e),
        other => panic!("expected an upgrade error, got {other:?}"),
    }
}

#[test]
fn wrong_peer_and_bad_signature_are_typed() {
    let (kd, kl, other) = (Key::new(), Key::new(), Key::new());
    let mut d = side(
        &kd,
        true,
        Opts {
            expected: Some(other.peer_id()),
            ..Opts::default()
        },
    );
    let mut l = side(&kl, false, Opts::default());
    let (mut sd, mut sl) = (Seen::default(), Seen::default());
    let (dialer, e) = upgrade_err(pump(&mut d, &mut sd, &mut l, &mut sl, 65536));
    assert!(dialer);
    let UpgradeError::PeerIdMismatch(msg) = e else {
        panic!("{e:?}")
    };
    assert!(msg.starts_with("dialed "), "{msg}");
    assert!(d.is_closed());

    // The listener's check of the dialer's signature fails (message 3).
    let (kd, kl) = (Key::new(), Key::new());
    let mut d = side(&kd, true, Opts::default());
    let mut l = side(&kl, false, Opts::default());
    let (mut sd, mut sl) = (Seen::default(), Seen::default());
    sl.force_bad = true;
    let (dialer, e) = upgrade_err(pump(&mut d, &mut sd, &mut l, &mut sl, 65536));
    assert!(!dialer);
    assert_eq!(
        e,
        UpgradeError::BadSignature("bad Noise identity signature".into())
    );
    assert!(!sl
        .upgrade
        .iter()
        .any(|e| matches!(e, UpgradeEvent::Secured { .. })));

    // A payload signed by one key but carrying another: the real check refuses it.
    let (kd, kl) = (Key::new(), Key::new());
    let mut up_cfg = kl.noise(&[YAMUX_ID]);
    let forged = kd.noise(&[YAMUX_ID]); // signature over another static key
    up_cfg.payload = forged.payload;
    let up = Upgrade::new(UpgradeConfig {
        initiator: false,
        protocols: strings(&[NOISE_ID]),
        expected_peer: None,
        early_muxers: strings(&[YAMUX_ID]),
        noise: Some(up_cfg),
        tls: None,
        unix_now: NOW,
    })
    .unwrap();
    let mut l = Connection::upgrading(
        up,
        Role::Server,
        Config::default(),
        strings(&[YAMUX_ID]),
        mplex::Config::default(),
    )
    .unwrap();
    let mut d = side(&kd, true, Opts::default());
    let (mut sd, mut sl) = (Seen::default(), Seen::default());
    let (dialer, e) = upgrade_err(pump(&mut d, &mut sd, &mut l, &mut sl, 65536));
    assert!(dialer);
    assert!(matches!(e, UpgradeError::BadSignature(_)), "{e:?}");
}

#[test]
fn malformed_truncated_and_cut_messages_are_typed() {
    let kl = Key::new();
    let mut prefix = Vec::new();
    encode_message(HEADER, &mut prefix).unwrap();
    encode_message(NOISE_ID, &mut prefix).unwrap();
    // A 5-byte "message 1": shorter than the ephemeral key.
    let mut l = side(&kl, false, Opts::default());
    let mut junk = prefix.clone();
    junk.extend_from_slice(&[0, 5]);
    junk.extend_from_slice(b"hello");
    let e = l.receive_copy(&junk, 0.0, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(
            e,
            ConnError::Upgrade(UpgradeError::Noise(noise::NoiseError::Truncated { .. }))
        ),
        "{e:?}"
    );
    assert!(l.is_closed());
    // Cut in the middle of message 1, then EOF.
    let mut l = side(&kl, false, Opts::default());
    let mut cut = prefix.clone();
    cut.extend_from_slice(&[0, 32, 1, 2, 3]);
    l.receive_copy(&cut, 0.0, &mut Vec::new()).unwrap();
    let e = l.receive_eof().unwrap();
    assert_eq!(
        e.to_string(),
        "connection closed during the Noise handshake"
    );
    // Not multistream at all.
    let mut l = side(&kl, false, Opts::default());
    let mut bad = Vec::new();
    encode_message("/not-multistream", &mut bad).unwrap();
    assert!(matches!(
        l.receive_copy(&bad, 0.0, &mut Vec::new()),
        Err(ConnError::Upgrade(UpgradeError::Negotiation(_)))
    ));
    // A TLS record header announcing more than a record may hold.
    let mut l = side(
        &kl,
        false,
        Opts {
            protocols: &[TLS_ID],
            ..Opts::default()
        },
    );
    let mut big = Vec::new();
    encode_message(HEADER, &mut big).unwrap();
    encode_message(TLS_ID, &mut big).unwrap();
    big.extend_from_slice(&[22, 3, 1, 0xff, 0xff]);
    let e = l.receive_copy(&big, 0.0, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("TLS record of 65535 bytes"), "{e}");
    // A message with an oversized varint length in multistream.
    let mut l = side(&kl, false, Opts::default());
    assert!(l
        .receive_copy(&[0xff, 0xff, 0xff, 0x0f], 0.0, &mut Vec::new())
        .is_err());
}

#[test]
fn refused_dialer_reads_the_reason() {
    let kd = Key::new();
    let mut answer = Vec::new();
    encode_message(HEADER, &mut answer).unwrap();
    encode_message(NA, &mut answer).unwrap();
    let mut with_reason = answer.clone();
    encode_message("refused: too many connections", &mut with_reason).unwrap();
    let refused = ConnError::Upgrade(UpgradeError::Refused("too many connections".into()));
    // In one read.
    let mut d = side(&kd, true, Opts::default());
    let e = d.receive_copy(&with_reason, 0.0, &mut Vec::new());
    assert_eq!(e, Err(refused.clone()));
    // Split before the reason: the dialer waits for it.
    let mut d = side(&kd, true, Opts::default());
    d.receive_copy(&answer, 0.0, &mut Vec::new()).unwrap();
    assert_eq!(d.next_timer(), Some(REASON_WAIT));
    let e = d.receive_copy(&with_reason[answer.len()..], 0.5, &mut Vec::new());
    assert_eq!(e, Err(refused));
    // No reason within the wait: the plain refusal.
    let mut d = side(&kd, true, Opts::default());
    d.receive_copy(&answer, 0.0, &mut Vec::new()).unwrap();
    d.handle_timer(0.5).unwrap();
    let e = d.handle_timer(REASON_WAIT).unwrap_err();
    assert!(
        matches!(e, ConnError::Upgrade(UpgradeError::Negotiation(_))),
        "{e:?}"
    );
    assert!(e.to_string().contains("supports none of"), "{e}");
}

#[test]
fn handshake_bytes_go_out_unsealed_before_the_muxer() {
    // The dialer's message 3 and its first yamux frames leave in one flush: message 3 in
    // the clear (a Noise handshake message), the frames sealed after it.
    let (kd, kl) = (Key::new(), Key::new());
    let mut d = side(&kd, true, Opts::default());
    let mut l = side(&kl, false, Opts::default());
    let (mut sd, mut sl) = (Seen::default(), Seen::default());
    let f1 = d.take_output().unwrap();
    l.receive_copy(&f1, 0.0, &mut sl.events).unwrap();
    let f2 = l.take_output().unwrap();
    d.receive_copy(&f2, 0.0, &mut sd.events).unwrap();
    answer(&mut d, &mut sd).unwrap();
    assert!(!d.is_upgrading());
    let id = d.open_stream().unwrap();
    d.send(id, b"early", false).unwrap();
    let f3 = d.take_output().unwrap();
    let len3 = usize::from(u16::from_be_bytes([f3[0], f3[1]]));
    assert!(f3.len() > 2 + len3, "sealed frames follow message 3");
    // The listener takes message 3 and the frames in one read, verifies, then sees the data.
    l.receive_copy(&f3, 0.0, &mut sl.events).unwrap();
    assert!(l.is_upgrading(), "nothing after message 3 before the check");
    answer(&mut l, &mut sl).unwrap();
    assert!(!l.is_upgrading());
    assert!(sl.events.contains(&Event::StreamOpened(id)));
    assert!(sl.events.contains(&Event::Data(id, b"early".to_vec())));
}

#[test]
fn bytes_past_the_upgrade_buffer_cap_are_refused() {
    use rapidp2p_conn::upgrade::MAX_UPGRADE_BUFFER;
    let kl = Key::new();
    let mut l = side(&kl, false, Opts::default());
    let flood = vec![0u8; MAX_UPGRADE_BUFFER + 1];
    let e = l.receive_copy(&flood, 0.0, &mut Vec::new()).unwrap_err();
    assert_eq!(
        e,
        ConnError::Upgrade(UpgradeError::Handshake(
            "too many bytes before the handshake ended".into()
        ))
    );
    assert!(l.is_closed());
}
