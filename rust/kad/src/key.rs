//! 256-bit Kademlia keys and XOR distances.

use sha2::{Digest, Sha256};

/// Bits in a key: the SHA-256 output size, so 256 buckets.
pub const KEY_BITS: usize = 256;

/// A point in the Kademlia key space: SHA-256 of a preimage (peer ID bytes or a record key).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Key(pub [u8; 32]);

/// XOR of two keys; compared as a 256-bit big-endian unsigned integer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Distance(pub [u8; 32]);

impl Key {
    /// SHA-256 of `preimage`.
    pub fn from_preimage(preimage: &[u8]) -> Key {
        Key(Sha256::digest(preimage).into())
    }

    /// The XOR distance to `other`.
    pub fn distance(&self, other: &Key) -> Distance {
        let mut d = [0u8; 32];
        for (i, out) in d.iter_mut().enumerate() {
            *out = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }
}

impl Distance {
    /// Leading zero bits (256 for the zero distance): the common prefix length of the keys.
    pub fn leading_zeros(&self) -> u32 {
        let mut n = 0;
        for b in self.0 {
            if b == 0 {
                n += 8;
            } else {
                return n + b.leading_zeros();
            }
        }
        n
    }

    /// Index of the highest set bit (0..=255; bit 255 is the most significant), None for zero.
    pub fn bucket_index(&self) -> Option<usize> {
        let lz = self.leading_zeros() as usize;
        if lz >= KEY_BITS {
            None
        } else {
            Some(KEY_BITS - 1 - lz)
        }
    }

    /// Whether bit `i` (0 = least significant) is set.
    pub fn bit(&self, i: usize) -> bool {
        let byte = 31 - i / 8;
        self.0[byte] >> (i % 8) & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_properties() {
        let a = Key::from_preimage(b"a");
        let b = Key::from_preimage(b"b");
        assert_eq!(a.distance(&a), Distance::default());
        assert_eq!(a.distance(&b), b.distance(&a));
        assert_eq!(a.distance(&a).bucket_index(), None);
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(Distance(one).bucket_index(), Some(0));
        let mut top = [0u8; 32];
        top[0] = 0x80;
        assert_eq!(Distance(top).bucket_index(), Some(255));
        assert!(Distance(top).bit(255) && !Distance(top).bit(254));
    }

    #[test]
    fn sha256_vector() {
        let k = Key::from_preimage(b"abc");
        assert_eq!(k.0[..4], [0xba, 0x78, 0x16, 0xbf]);
    }
}
