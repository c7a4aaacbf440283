//! One fuzz target per decoder a remote peer can reach. Each takes arbitrary bytes and must
//! return (an `Err` is fine) without panicking, looping or allocating beyond the input's caps;
//! where a decoder accepts the input, the target re-encodes what it can and checks the result
//! decodes again the same way.
//!
//! The same functions run under cargo-fuzz (`fuzz/`, libFuzzer, nightly) and under the stable
//! harness in `tests/stable.rs` (random and mutated inputs for a time budget), so CI needs no
//! nightly toolchain.

use rapidp2p_wire as wire;

/// A named target.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name (the cargo-fuzz binaries carry the same names).
pub const TARGETS: &[Target] = &[
    ("varint", varint),
    ("frames", frames),
    ("multiaddr", multiaddr),
    ("multiaddr_text", multiaddr_text),
    ("key_protobuf", key_protobuf),
    ("peer_id", peer_id),
    ("multihash_cid", multihash_cid),
    ("noise_payload", noise_payload),
    ("noise_handshake", noise_handshake),
    ("noise_frames", noise_frames),
    ("upgrade", upgrade),
    ("yamux_header", yamux_header),
    ("yamux_session", yamux_session),
    ("mplex_session", mplex_session),
    ("identify", identify),
    ("envelope", envelope),
    ("kad_message", kad_message),
    ("pubsub_rpc", pubsub_rpc),
    ("tls_certificate", tls_certificate),
    ("webrtc_message", webrtc_message),
    ("webrtc_stun", webrtc_stun),
    ("qpack_fields", qpack_fields),
    ("h3_session", h3_session),
];

/// Unsigned varints: minimal, at most 9 bytes; what decodes re-encodes to the same bytes.
pub fn varint(data: &[u8]) {
    if let Ok((value, n)) = wire::varint::decode(data) {
        assert!((1..=9).contains(&n) && n <= data.len());
        let mut out = Vec::new();
        wire::varint::encode(value, &mut out);
        assert_eq!(out, &data[..n]);
    }
}

/// Length-prefixed frames with a cap: frames lie inside the input, the tail offset too.
pub fn frames(data: &[u8]) {
    for cap in [0u64, 1, 64, 1 << 20] {
        if let Ok((frames, consumed)) = wire::frame::split(data, cap) {
            assert!(consumed <= data.len());
            let mut again = Vec::new();
            for f in &frames {
                assert!(f.len() as u64 <= cap);
                wire::frame::encode(f, &mut again);
            }
            assert_eq!(again, &data[..consumed]);
        }
    }
}

/// Binary multiaddrs: valid ones print, and the text parses back to the same bytes.
pub fn multiaddr(data: &[u8]) {
    if wire::multiaddr::validate(data).is_ok() {
        let text = wire::multiaddr::to_text(data).expect("valid multiaddr prints");
        let back = wire::multiaddr::from_text(&text).expect("printed multiaddr parses");
        assert_eq!(back, data, "{text}");
    }
    for c in wire::multiaddr::components(data) {
        if c.is_err() {
            break;
        }
    }
}

/// Text multiaddrs (a peer sends them in identify's observed address as bytes, users as text).
pub fn multiaddr_text(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(bytes) = wire::multiaddr::from_text(text) {
            wire::multiaddr::validate(&bytes).expect("parsed multiaddr validates");
        }
    }
}

/// Public key protobufs (deterministic encoding): what decodes re-encodes identically.
pub fn key_protobuf(data: &[u8]) {
    if let Ok((key_type, key)) = wire::keyproto::decode(data) {
        let mut out = Vec::new();
        wire::keyproto::encode(key_type, key, &mut out).expect("decoded key re-encodes");
        assert_eq!(out, data);
    }
    let mut id = Vec::new();
    let _ = wire::peerid::from_public_key_protobuf(data, &mut id);
}

/// Peer IDs as bytes and as text (base58 or CID).
pub fn peer_id(data: &[u8]) {
    if wire::peerid::validate(data).is_ok() {
        let text = wire::peerid::to_base58(data);
        assert_eq!(
            wire::peerid::from_text(&text).expect("printed id parses"),
            data
        );
        let _ = wire::peerid::inline_public_key(data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wire::peerid::from_text(text);
        let _ = wire::multibase::decode(text);
        let _ = wire::base58::decode(text);
    }
}

/// Multihashes and CIDs.
pub fn multihash_cid(data: &[u8]) {
    let _ = wire::multihash::decode(data);
    let _ = wire::cid::decode_v1(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wire::cid::decode_text(text);
    }
}

/// The libp2p Noise handshake payload (identity key, signature, extensions).
pub fn noise_payload(data: &[u8]) {
    let _ = rapidp2p_proto::decode_noise_payload(data);
}

/// A responder reading an attacker's first message, an initiator reading a second one.
pub fn noise_handshake(data: &[u8]) {
    if let Ok(mut hs) = rapidp2p_noise::Handshake::responder() {
        let _ = hs.read_message(data);
    }
    if let Ok(mut hs) = rapidp2p_noise::Handshake::initiator() {
        if hs.write_message(&[]).is_ok() {
            let _ = hs.read_message(data);
        }
    }
}

/// A listener's whole upgrade inside `rapidp2p-conn` (multistream-select of the security
/// protocol, the Noise or TLS handshake), fed the input in pieces whose sizes the first byte
/// picks; every signature check is answered (alternately good and bad).
pub fn upgrade(data: &[u8]) {
    use rapidp2p_conn::upgrade::{NoiseConfig, NOISE_ID};
    use rapidp2p_conn::{mplex, yamux, Connection, Upgrade, UpgradeConfig, UpgradeEvent};
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let up = Upgrade::new(UpgradeConfig {
        initiator: first & 0x80 != 0,
        protocols: vec![NOISE_ID.into()],
        expected_peer: None,
        early_muxers: vec!["/yamux/1.0.0".into()],
        noise: Some(NoiseConfig {
            static_secret: [7; 32],
            payload: b"payload".to_vec(),
        }),
        tls: None,
        unix_now: 0,
    });
    let Ok(up) = up else { return };
    let role = if first & 0x80 != 0 {
        yamux::Role::Client
    } else {
        yamux::Role::Server
    };
    let Ok(mut c) = Connection::<_, Vec<u8>>::upgrading(
        up,
        role,
        yamux::Config::default(),
        vec!["/yamux/1.0.0".into()],
        mplex::Config::default(),
    ) else {
        return;
    };
    let chunk = usize::from(first & 0x3f) + 1;
    let mut events = Vec::new();
    let mut good = first & 0x40 != 0;
    for piece in rest.chunks(chunk) {
        if c.receive_copy(piece, 0.0, &mut events).is_err() {
            return;
        }
        for e in c.take_upgrade_events() {
            if matches!(e, UpgradeEvent::Verify { .. }) {
                let verdict = if good { Ok(()) } else { Err("no".into()) };
                good = !good;
                if c.verified(verdict, 0.0, &mut events).is_err() {
                    return;
                }
            }
        }
        let _ = c.take_output();
    }
    let _ = c.receive_eof();
}

/// Noise transport framing (length prefixes scanned before decryption).
pub fn noise_frames(data: &[u8]) {
    let (consumed, plain) = rapidp2p_noise::scan_frames(data);
    assert!(consumed <= data.len() && plain <= consumed);
}

/// The 12-byte yamux header.
pub fn yamux_header(data: &[u8]) {
    if let Some(b) = data.get(..rapidp2p_yamux::frame::HEADER_LEN) {
        let b: [u8; rapidp2p_yamux::frame::HEADER_LEN] = b.try_into().expect("12 bytes");
        if let Ok(h) = rapidp2p_yamux::Header::decode(&b) {
            assert_eq!(h.to_bytes(), b);
        }
    }
}

/// A whole yamux session fed hostile bytes, in two pieces, as client and as server.
pub fn yamux_session(data: &[u8]) {
    use rapidp2p_yamux::{Config, Role, Session};
    for role in [Role::Client, Role::Server] {
        let Ok(mut s) = Session::new(role, Config::default()) else {
            continue;
        };
        let mut events = Vec::new();
        let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
        let _ = s.receive(&data[..cut], 0.0, &mut events);
        let _ = s.receive(&data[cut..], 1.0, &mut events);
        let _ = s.handle_timer(100.0);
    }
}

/// A whole mplex session fed hostile bytes in two pieces (with a small buffer cap, so the
/// overflow resets run too); what it queues in answer stays within the resets it may send.
pub fn mplex_session(data: &[u8]) {
    use rapidp2p_mplex::{Config, FrameHeader, Session};
    let cfg = Config {
        max_streams: 8,
        max_buffered: 64,
        ..Config::default()
    };
    let Ok(mut s) = Session::new(cfg) else {
        return;
    };
    let mut events = Vec::new();
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let _ = s.receive(&data[..cut], &mut events);
    let _ = s.receive(&data[cut..], &mut events);
    assert!(s.num_streams() <= 8);
    // Our answers are resets only, each a well-formed frame.
    let mut out = s.take_output();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let (h, n) = FrameHeader::decode(rest)
            .expect("our frames decode")
            .expect("our frames are whole");
        assert_eq!(h.length, 0);
        rest = &rest[n..];
    }
    out.clear();
}

/// Identify messages.
pub fn identify(data: &[u8]) {
    let _ = rapidp2p_proto::decode_identify(data);
}

/// Signed envelopes and the peer records inside them.
pub fn envelope(data: &[u8]) {
    if let Ok(env) = rapidp2p_proto::decode_envelope(data) {
        let _ = rapidp2p_proto::decode_peer_record(&env.payload);
    }
    let _ = rapidp2p_proto::decode_peer_record(data);
}

/// Kademlia messages, with the service's caps.
pub fn kad_message(data: &[u8]) {
    let _ = rapidp2p_kad::proto::decode_message(data, 16 * 1024, 20);
    let _ = rapidp2p_kad::proto::decode_message(data, usize::MAX, 2);
}

/// GossipSub RPC frames with the default limits, and with tight ones.
pub fn pubsub_rpc(data: &[u8]) {
    let _ = rapidp2p_pubsub::decode_rpc(data, &rapidp2p_pubsub::DecodeLimits::default());
}

/// A peer's TLS certificate (DER, with the libp2p public-key extension), as the verifier
/// parses it during the handshake.
pub fn tls_certificate(data: &[u8]) {
    let _ = rapidp2p_tls::verify_certificate(data, 1_700_000_000);
}

/// The WebRTC stream framing (varint-prefixed `Message{flag, message}`), fed whole and split
/// at every third byte: the same messages (or the same error) either way, nothing over the
/// 16 KiB cap held; what decodes re-encodes to a message that decodes the same.
pub fn webrtc_message(data: &[u8]) {
    use rapidp2p_webrtc::framing::{encode_one, Decoder, MAX_MESSAGE_SIZE, MAX_PAYLOAD};
    let mut whole = Vec::new();
    let r1 = Decoder::new().push(data, &mut whole);
    let mut split = Vec::new();
    let mut d = Decoder::new();
    let mut r2 = Ok(());
    for chunk in data.chunks(3) {
        r2 = d.push(chunk, &mut split);
        assert!(d.pending() <= MAX_MESSAGE_SIZE + 10);
        if r2.is_err() {
            break;
        }
    }
    assert_eq!(r1.is_ok(), r2.is_ok());
    if r1.is_ok() {
        assert_eq!(whole, split);
    }
    for m in whole {
        if m.data.len() <= MAX_PAYLOAD {
            let mut again = Vec::new();
            Decoder::new()
                .push(&encode_one(m.flag, &m.data), &mut again)
                .expect("re-encoded message decodes");
            assert_eq!(again, vec![m]);
        }
    }
}

/// The STUN USERNAME reader that admits a new WebRTC-direct dialler.
pub fn webrtc_stun(data: &[u8]) {
    if let Some(u) = rapidp2p_webrtc::stun::binding_ufrag(data) {
        assert!(u.starts_with(rapidp2p_webrtc::stun::UFRAG_PREFIX));
        assert!(u.len() <= rapidp2p_webrtc::stun::MAX_UFRAG);
    }
}

/// QPACK field sections: what decodes within the cap re-encodes and decodes the same.
pub fn qpack_fields(data: &[u8]) {
    use rapidp2p_webtransport::qpack::{decode_field_section, encode_field_section};
    if let Ok(fields) = decode_field_section(data, 4096) {
        let text: Vec<(String, String)> = fields
            .iter()
            .filter_map(|(n, v)| {
                Some((
                    String::from_utf8(n.clone()).ok()?,
                    String::from_utf8(v.clone()).ok()?,
                ))
            })
            .collect();
        if text.len() == fields.len() {
            let pairs: Vec<(&str, &str)> =
                text.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let again = decode_field_section(&encode_field_section(&pairs), 1 << 20).unwrap();
            assert_eq!(again, fields);
        }
    }
}

/// The HTTP/3 session (server and client sides) fed arbitrary bytes on a control stream and
/// request streams, split at the first byte's position: errors are fine, panics are not.
pub fn h3_session(data: &[u8]) {
    use rapidp2p_webtransport::{Limits, ServerSession};
    let mut s = ServerSession::new(Limits::default());
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (a, b) = data.split_at(cut);
    let _ = s.on_uni(2, a, false);
    let _ = s.on_uni(2, b, false);
    let _ = s.on_bidi(0, a, false);
    let _ = s.on_bidi(0, b, true);
    let _ = s.on_bidi(4, data, false);
    // The client's side: the answer to its CONNECT, and a stream the server opened.
    let mut c = ServerSession::client(Limits::default(), 0);
    let _ = c.on_bidi(0, a, false);
    let _ = c.on_bidi(0, b, true);
    let _ = c.on_bidi(1, data, false);
}
