//! A Bloom filter over blob keys (id and kind) for one index table, so a
//! lookup reads only the tables that may hold the blob. Blob ids are keyed
//! MACs, uniformly distributed, so their bytes serve as the hashes.

use bincode::{Decode, Encode};

/// Bits per blob: with [`PROBES`] probes about 5.6% of absent blobs pass
/// (a lookup reads that share of the tables that do not hold the blob).
pub const BITS_PER_BLOB: u64 = 6;
/// Probes per lookup.
pub const PROBES: u64 = 4;

/// The filter's bit array.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Bloom {
    words: Vec<u64>,
}

impl Bloom {
    /// An empty filter sized for `blobs` keys.
    pub fn with_capacity(blobs: u64) -> Self {
        let words = (blobs * BITS_PER_BLOB).div_ceil(64).max(1);
        Bloom {
            words: vec![0; words as usize],
        }
    }

    /// The bit numbers of a key. Borrows nothing, so that inserting needs
    /// no copy of them (that was one allocation a blob: ten million while
    /// the tables of 10 M blobs are built).
    fn bits(&self, id: &[u8; 32], kind: u8) -> impl Iterator<Item = usize> + 'static {
        let m = self.words.len() as u64 * 64;
        let h1 = u64::from_le_bytes(id[..8].try_into().expect("8 bytes")) ^ kind as u64;
        let h2 = u64::from_le_bytes(id[8..16].try_into().expect("8 bytes")) | 1;
        (0..PROBES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
    }

    /// Adds a key.
    pub fn insert(&mut self, id: &[u8; 32], kind: u8) {
        for b in self.bits(id, kind) {
            self.words[b / 64] |= 1 << (b % 64);
        }
    }

    /// False only when the key was never added.
    pub fn may_contain(&self, id: &[u8; 32], kind: u8) -> bool {
        self.bits(id, kind)
            .all(|b| self.words[b / 64] & (1 << (b % 64)) != 0)
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.words.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> [u8; 32] {
        *blake3::hash(&i.to_le_bytes()).as_bytes()
    }

    #[test]
    fn added_keys_pass_and_few_others_do() {
        let mut bloom = Bloom::with_capacity(10_000);
        for i in 0..10_000 {
            bloom.insert(&key(i), 1);
        }
        assert!((0..10_000).all(|i| bloom.may_contain(&key(i), 1)));
        let false_hits = (10_000..110_000)
            .filter(|&i| bloom.may_contain(&key(i), 1))
            .count();
        // 6 bits and 4 probes: about 5.6% in theory.
        assert!(false_hits < 7_000, "{false_hits} of 100000");
        // The kind is part of the key.
        let other_kind = (0..10_000)
            .filter(|&i| bloom.may_contain(&key(i), 0))
            .count();
        assert!(other_kind < 700, "{other_kind}");
    }
}
