use proptest::prelude::*;
use rapidp2p_kad::proto::{
    decode_message, encode_message, message_type, Message, Peer, Record, MAX_ADDRS_PER_PEER,
};

fn peer(i: u8, addrs: usize) -> Peer {
    Peer {
        id: vec![i; 34],
        addrs: (0..addrs).map(|j| vec![4, 127, 0, 0, j as u8]).collect(),
        connection: 1,
    }
}

#[test]
fn roundtrip_and_caps() {
    let msg = Message {
        r#type: message_type::GET_PROVIDERS,
        key: b"key".to_vec(),
        record: Some(Record {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            time_received: "t".into(),
        }),
        closer_peers: (0..50).map(|i| peer(i, 2)).collect(),
        provider_peers: (0..3).map(|i| peer(i, 100)).collect(),
        cluster_level_raw: 0,
    };
    let enc = encode_message(&msg);
    let dec = decode_message(&enc, 1 << 20, 1000).unwrap();
    assert_eq!(dec.closer_peers.len(), 50);
    assert_eq!(dec.provider_peers[0].addrs.len(), MAX_ADDRS_PER_PEER);
    assert_eq!(dec.record, msg.record);
    let capped = decode_message(&enc, 1 << 20, 20).unwrap();
    assert_eq!(capped.closer_peers.len(), 20);
    assert_eq!(capped.closer_peers[..], msg.closer_peers[..20]);
    assert!(decode_message(&enc, 100, 20).is_err());
    // A PUT_VALUE (type 0) encodes no type field and still decodes.
    let put = Message {
        key: b"k".to_vec(),
        ..Default::default()
    };
    assert_eq!(decode_message(&encode_message(&put), 100, 20).unwrap(), put);
    // Unknown type.
    let bad = Message {
        r#type: 9,
        ..Default::default()
    };
    assert!(decode_message(&encode_message(&bad), 100, 20).is_err());
}

#[test]
fn known_bytes() {
    // FIND_NODE for key "ab": field 1 varint 4, field 2 bytes.
    let m = decode_message(&[0x08, 0x04, 0x12, 0x02, b'a', b'b'], 100, 20).unwrap();
    assert_eq!(m.r#type, message_type::FIND_NODE);
    assert_eq!(m.key, b"ab");
    let enc = encode_message(&m);
    assert_eq!(enc, vec![0x08, 0x04, 0x12, 0x02, b'a', b'b']);
}

proptest! {
    #[test]
    fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_message(&data, 1024, 20);
    }

    #[test]
    fn roundtrip(ty in 0i32..6, key in proptest::collection::vec(any::<u8>(), 0..40), n in 0usize..25) {
        let msg = Message { r#type: ty, key, closer_peers: (0..n).map(|i| peer(i as u8, 1)).collect(), ..Default::default() };
        prop_assert_eq!(decode_message(&encode_message(&msg), 1 << 16, 25).unwrap(), msg);
    }
}
