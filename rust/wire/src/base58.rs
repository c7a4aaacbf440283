//! Base58btc (the Bitcoin alphabet), as peer IDs and multibase 'z' use it.
//!
//! Big-number conversion on machine words: the encoder works in limbs of 58^5 and takes 4 input
//! bytes per step; the decoder works in 32-bit limbs and takes 5 digits per step. Both stay in
//! u64 arithmetic (division by a constant compiles to a multiply), which is what makes peer-ID
//! text cheap. Callers bound the input length (the conversion is quadratic).

use crate::error::{Result, WireError};

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// 58^5: the encoder's limb base (below 2^30, so limb * 2^32 + carry fits in u64).
const LIMB: u64 = 656_356_768;

const INVALID: u8 = 0xff;
const DECODE: [u8; 128] = {
    let mut t = [INVALID; 128];
    let mut i = 0;
    while i < 58 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Appends the base58btc text of `data` to `out`.
pub fn encode_into(data: &[u8], out: &mut String) {
    let zeros = data.iter().take_while(|&&b| b == 0).count();
    let rest = &data[zeros..];
    // Little-endian limbs of 58^5; each input byte adds at most log(256)/log(58^5) limbs.
    let mut limbs: Vec<u64> = Vec::with_capacity(rest.len() / 3 + 1);
    let head = rest.len() % 4;
    let mut chunks = Vec::with_capacity(rest.len() / 4 + 1);
    if head > 0 {
        chunks.push((&rest[..head], 8 * head as u32));
    }
    for c in rest[head..].chunks_exact(4) {
        chunks.push((c, 32));
    }
    for (chunk, bits) in chunks {
        let mut carry = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        for limb in limbs.iter_mut() {
            let x = (*limb << bits) + carry;
            *limb = x % LIMB;
            carry = x / LIMB;
        }
        while carry > 0 {
            limbs.push(carry % LIMB);
            carry /= LIMB;
        }
    }
    out.reserve(zeros + limbs.len() * 5);
    out.extend(std::iter::repeat_n('1', zeros));
    let mut started = false;
    for &limb in limbs.iter().rev() {
        let mut digits = [0u8; 5];
        let mut v = limb;
        for d in digits.iter_mut().rev() {
            *d = (v % 58) as u8;
            v /= 58;
        }
        for d in digits {
            if started || d != 0 {
                started = true;
                out.push(ALPHABET[usize::from(d)] as char);
            }
        }
    }
}

/// Base58btc text of `data`.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::new();
    encode_into(data, &mut out);
    out
}

/// Decodes base58btc text.
pub fn decode(text: &str) -> Result<Vec<u8>> {
    let s = text.as_bytes();
    let zeros = s.iter().take_while(|&&c| c == b'1').count();
    let rest = &s[zeros..];
    // Little-endian 32-bit limbs.
    let mut limbs: Vec<u64> = Vec::with_capacity(rest.len() * 3 / 16 + 1);
    for (i, chunk) in rest.chunks(5).enumerate() {
        let mut value = 0u64;
        let mut mult = 1u64;
        for (j, &c) in chunk.iter().enumerate() {
            let d = DECODE.get(usize::from(c)).copied().unwrap_or(INVALID);
            if d == INVALID {
                let pos = zeros + i * 5 + j;
                return Err(WireError::Multibase(format!(
                    "base58btc: invalid character {:?} at position {pos}",
                    char::from(c)
                )));
            }
            value = value * 58 + u64::from(d);
            mult *= 58;
        }
        let mut carry = value;
        for limb in limbs.iter_mut() {
            let x = *limb * mult + carry;
            *limb = x & 0xffff_ffff;
            carry = x >> 32;
        }
        while carry > 0 {
            limbs.push(carry & 0xffff_ffff);
            carry >>= 32;
        }
    }
    let mut out = Vec::with_capacity(zeros + limbs.len() * 4);
    out.resize(zeros, 0);
    let mut started = false;
    for &limb in limbs.iter().rev() {
        for b in (limb as u32).to_be_bytes() {
            if started || b != 0 {
                started = true;
                out.push(b);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vectors() {
        // From the base58 draft (draft-msporny-base58) and the multibase test vectors.
        assert_eq!(encode(b"Hello World!"), "2NEpo7TZRRrLZSi2U");
        assert_eq!(
            encode(b"The quick brown fox jumps over the lazy dog."),
            "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z"
        );
        assert_eq!(encode(&[0, 0, 0x28, 0x7f, 0xb4, 0xcd]), "11233QC4");
        assert_eq!(encode(b""), "");
        assert_eq!(encode(&[0]), "1");
        assert_eq!(decode("11233QC4").unwrap(), [0, 0, 0x28, 0x7f, 0xb4, 0xcd]);
        assert_eq!(decode("").unwrap(), b"");
        assert!(decode("0").is_err());
        assert!(decode("abcO").is_err());
        assert!(decode("é").is_err());
    }

    proptest! {
        #[test]
        fn matches_bs58(data in proptest::collection::vec(any::<u8>(), 0..120), zeros in 0usize..4) {
            let mut data = data;
            data.splice(0..0, std::iter::repeat_n(0u8, zeros));
            let text = encode(&data);
            prop_assert_eq!(&text, &bs58::encode(&data).into_string());
            prop_assert_eq!(decode(&text).unwrap(), data);
        }

        #[test]
        fn decode_matches_bs58(text in "[1-9A-HJ-NP-Za-km-z]{0,80}") {
            prop_assert_eq!(decode(&text).unwrap(), bs58::decode(&text).into_vec().unwrap());
        }
    }
}
