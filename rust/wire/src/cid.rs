//! CIDs as libp2p uses them: CIDv1 = varint version 1, varint codec, multihash; written as
//! multibase text (base32 'b' by default). CIDv0 (bare base58 sha2-256, "Qm...") is read too.

use crate::error::{Result, WireError};
use crate::multibase::{self, Base};
use crate::multihash::{self, SHA2_256};
use crate::varint;

/// Multicodec of a libp2p public key (peer IDs as CIDs).
pub const LIBP2P_KEY: u64 = 0x72;
/// Multicodec of dag-pb, the implicit codec of CIDv0.
pub const DAG_PB: u64 = 0x70;

/// Longest CID text decoded; bounds base58's quadratic decoder on untrusted input.
pub const MAX_TEXT_LEN: usize = 2048;

fn err(msg: String) -> WireError {
    WireError::Cid(format!("cid: {msg}"))
}

/// A decoded CID; `multihash` is the validated multihash bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cid {
    pub version: u64,
    pub codec: u64,
    pub multihash: Vec<u8>,
}

/// Appends the binary CIDv1 of `multihash` (validated) under `codec`.
pub fn encode_v1(codec: u64, mh: &[u8], out: &mut Vec<u8>) -> Result<()> {
    multihash::decode(mh)?;
    varint::encode(1, out);
    varint::encode(codec, out);
    out.extend_from_slice(mh);
    Ok(())
}

/// Text form of a CIDv1 in `base`.
pub fn encode_v1_text(codec: u64, mh: &[u8], base: Base) -> Result<String> {
    let mut bin = Vec::with_capacity(4 + mh.len());
    encode_v1(codec, mh, &mut bin)?;
    Ok(multibase::encode(base, &bin))
}

/// Decodes a binary CIDv1; returns the codec and the multihash bytes.
pub fn decode_v1(buf: &[u8]) -> Result<(u64, &[u8])> {
    let (version, n) = varint::decode(buf).map_err(|e| err(format!("bad version varint: {e}")))?;
    if version != 1 {
        return Err(err(format!("unsupported version {version}")));
    }
    let rest = &buf[n..];
    let (codec, n) = varint::decode(rest).map_err(|e| err(format!("bad codec varint: {e}")))?;
    let mh = &rest[n..];
    multihash::decode(mh)?;
    Ok((codec, mh))
}

/// Decodes CID text: CIDv0 ("Qm..." base58) or multibase CIDv1.
pub fn decode_text(text: &str) -> Result<Cid> {
    if text.len() > MAX_TEXT_LEN {
        return Err(err(format!("text of {} chars is too long", text.len())));
    }
    if text.len() == 46 && text.starts_with("Qm") {
        let mh = Base::Base58Btc.decode_body(text)?;
        let decoded = multihash::decode(&mh)?;
        if decoded.code != SHA2_256 {
            return Err(err("CIDv0 must be a sha2-256 multihash".into()));
        }
        return Ok(Cid {
            version: 0,
            codec: DAG_PB,
            multihash: mh,
        });
    }
    let (_, bin) = multibase::decode(text)?;
    let (codec, mh) = decode_v1(&bin)?;
    Ok(Cid {
        version: 1,
        codec,
        multihash: mh.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_cid_vector() {
        // From the libp2p peer-id spec: a sha256 peer ID written as a CID.
        let text = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe";
        let cid = decode_text(text).unwrap();
        assert_eq!(cid.version, 1);
        assert_eq!(cid.codec, LIBP2P_KEY);
        assert_eq!(cid.multihash[..2], [0x12, 0x20]);
        assert_eq!(
            encode_v1_text(cid.codec, &cid.multihash, Base::Base32Lower).unwrap(),
            text
        );
        // The same peer ID as the spec's legacy base58 example.
        let legacy = Base::Base58Btc
            .decode_body("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
            .unwrap();
        assert_eq!(cid.multihash, legacy);
    }

    #[test]
    fn rejects() {
        assert!(decode_text("").is_err());
        assert!(decode_text("b").is_err());
        assert!(decode_text("bciqa").is_err()); // version 2
        let long = "b".repeat(MAX_TEXT_LEN + 1);
        assert!(decode_text(&long).is_err());
        assert!(decode_v1(&[0x02, 0x72, 0x00, 0x00]).is_err());
        assert!(decode_v1(&[0x01, 0x72, 0x12, 0x01, 0x00]).is_err());
    }
}
