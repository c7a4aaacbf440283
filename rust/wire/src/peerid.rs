//! Peer IDs: the multihash of a public-key protobuf (identity when the protobuf is at most 42
//! bytes, sha2-256 otherwise). Text is base58btc of the multihash, or a libp2p-key CIDv1.

use crate::base58;
use crate::cid::{self, LIBP2P_KEY};
use crate::error::{Result, WireError};
use crate::keyproto;
use crate::multibase::Base;
use crate::multihash::{self, IDENTITY, SHA2_256};

/// Longest key protobuf inlined with the identity multihash (the peer-id spec's limit).
pub const MAX_INLINE_KEY_LEN: usize = 42;
/// Longest peer-ID text accepted; real ones are at most ~80 characters.
pub const MAX_TEXT_LEN: usize = 256;

fn err(msg: String) -> WireError {
    WireError::PeerId(format!("peer id: {msg}"))
}

/// Appends the peer-ID bytes of a public-key protobuf (validated strictly first).
pub fn from_public_key_protobuf(pb: &[u8], out: &mut Vec<u8>) -> Result<()> {
    keyproto::decode(pb)?;
    if pb.len() <= MAX_INLINE_KEY_LEN {
        // Two one-byte varints: code 0 and a length of at most 42.
        out.reserve(2 + pb.len());
        out.push(IDENTITY as u8);
        out.push(pb.len() as u8);
        out.extend_from_slice(pb);
    } else {
        multihash::sha256(pb, out);
    }
    Ok(())
}

/// Checks peer-ID bytes: an identity multihash of at most 42 bytes or a sha2-256 multihash.
pub fn validate(bytes: &[u8]) -> Result<()> {
    let mh = multihash::decode(bytes).map_err(|e| err(e.to_string()))?;
    match mh.code {
        IDENTITY if mh.digest.len() > MAX_INLINE_KEY_LEN => Err(err(format!(
            "identity digest of {} bytes exceeds {MAX_INLINE_KEY_LEN}",
            mh.digest.len()
        ))),
        IDENTITY | SHA2_256 => Ok(()),
        code => Err(err(format!(
            "multihash {} (0x{code:x}) is not a peer id hash",
            multihash::code_name(code)
        ))),
    }
}

/// The public-key protobuf inlined in an identity peer ID, if any (bytes must be valid).
pub fn inline_public_key(bytes: &[u8]) -> Option<&[u8]> {
    match multihash::decode(bytes) {
        Ok(mh) if mh.code == IDENTITY => Some(mh.digest),
        _ => None,
    }
}

/// Legacy text form: base58btc of the multihash, no multibase prefix.
pub fn to_base58(bytes: &[u8]) -> String {
    base58::encode(bytes)
}

/// Decodes the legacy base58btc text form and validates the result.
pub fn from_base58(text: &str) -> Result<Vec<u8>> {
    if text.len() > MAX_TEXT_LEN {
        return Err(err(format!("text of {} chars is too long", text.len())));
    }
    let bytes = base58::decode(text).map_err(|e| err(format!("bad {e}")))?;
    validate(&bytes)?;
    Ok(bytes)
}

/// Parses either text form: "1..."/"Qm..." is base58, anything else a libp2p-key CIDv1.
pub fn from_text(text: &str) -> Result<Vec<u8>> {
    if text.starts_with('1') || text.starts_with("Qm") {
        return from_base58(text);
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(err(format!("text of {} chars is too long", text.len())));
    }
    let cid = cid::decode_text(text)?;
    if cid.codec != LIBP2P_KEY {
        return Err(WireError::Cid(format!(
            "cid: codec 0x{:x} is not libp2p-key (0x72)",
            cid.codec
        )));
    }
    validate(&cid.multihash)?;
    Ok(cid.multihash)
}

/// CIDv1 text of a peer ID (libp2p-key codec) in `base`.
pub fn to_cid(bytes: &[u8], base: Base) -> Result<String> {
    validate(bytes)?;
    cid::encode_v1_text(LIBP2P_KEY, bytes, base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn spec_ed25519_identity() {
        // Ed25519 public key from the peer-id spec test vectors (36 bytes: identity hash).
        let pb = unhex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e");
        let mut id = Vec::new();
        from_public_key_protobuf(&pb, &mut id).unwrap();
        assert_eq!(id[..2], [0x00, 0x24]);
        assert_eq!(inline_public_key(&id), Some(&pb[..]));
        let text = to_base58(&id);
        assert!(text.starts_with("12D3KooW"));
        assert_eq!(from_text(&text).unwrap(), id);
        let cid_text = to_cid(&id, Base::Base32Lower).unwrap();
        assert!(cid_text.starts_with("bafz"));
        assert_eq!(from_text(&cid_text).unwrap(), id);
    }

    #[test]
    fn spec_ecdsa_sha256() {
        // ECDSA public key from the spec (91 bytes > 42: sha2-256).
        let pb = unhex("0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83abab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c409e62");
        let mut id = Vec::new();
        from_public_key_protobuf(&pb, &mut id).unwrap();
        assert_eq!(id.len(), 34);
        assert_eq!(id[..2], [0x12, 0x20]);
        assert_eq!(inline_public_key(&id), None);
        assert!(to_base58(&id).starts_with("Qm"));
    }

    #[test]
    fn rejects() {
        let mut big = vec![0x00, 43];
        big.extend_from_slice(&[7u8; 43]);
        assert!(validate(&big).is_err()); // identity over 42 bytes
        let mut short = vec![0x12, 31];
        short.extend_from_slice(&[7u8; 31]);
        assert!(validate(&short).is_err()); // sha256 of 31 bytes
        assert!(from_text("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5O").is_err()); // 'O' not base58
                                                                                       // A valid CID whose codec is dag-pb (0x70), not libp2p-key.
        let mh = from_text("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N").unwrap();
        let dag_pb = cid::encode_v1_text(0x70, &mh, Base::Base32Lower).unwrap();
        assert!(matches!(from_text(&dag_pb), Err(WireError::Cid(_))));
        assert!(from_text("").is_err());
        assert!(from_text(&"1".repeat(300)).is_err());
    }

    proptest! {
        #[test]
        fn text_never_panics(text in ".{0,80}") {
            let _ = from_text(&text);
        }

        #[test]
        fn identity_round_trip(data in proptest::collection::vec(any::<u8>(), 0..38), t in 0u64..4) {
            let mut pb = Vec::new();
            keyproto::encode(t, &data, &mut pb).unwrap();
            let mut id = Vec::new();
            from_public_key_protobuf(&pb, &mut id).unwrap();
            prop_assert_eq!(from_text(&to_base58(&id)).unwrap(), id.clone());
            prop_assert_eq!(from_text(&to_cid(&id, Base::Base32Lower).unwrap()).unwrap(), id);
        }
    }
}
