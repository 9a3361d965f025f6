//! Blobs in use as 8-byte keys (the id's first 8 bytes, the kind in the
//! low 4 bits) in one sorted vector: 8 bytes a blob where a set of (kind,
//! id) takes about 50, so that 10 M blobs in use fit in 80 MB. Prune keys
//! blobs by [`key`]; check keys chunks by [`key_with_length`], so that one
//! pass over the index also tells whether the length the tree records is
//! the indexed one.
//!
//! Two blobs that share a key (about one pair among 10 M blobs in 200 000
//! repositories; ids are keyed MACs nobody can aim at without the key) only
//! make an unused blob count as used (prune keeps it, never loses it), or
//! for check one chunk in about 10^11 at 10 M indexed blobs pass unchecked.
//!
//! Phases: the tree walk [`UsedKeys::insert`]s; the delta closure asks
//! [`UsedKeys::contains`] and [`UsedKeys::add`]s; [`UsedKeys::seal`]; then
//! the pass over the index marks what it finds ([`UsedKeys::found`]), and
//! [`UsedKeys::missing`] are the keys in use that no index entry has.

use std::collections::HashSet;

use crate::id::BlobId;

/// The key of blob (`kind`, `id`).
pub(super) fn key(kind: u8, id: &BlobId) -> u64 {
    let prefix = u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"));
    (prefix & !0xf) | (kind & 0xf) as u64
}

/// The key of blob (`kind`, `id`) with plaintext length `length` mixed in:
/// the same blob with another length has an unrelated key. The id's bits
/// are uniform (a keyed MAC), so the key stays uniform.
pub(super) fn key_with_length(kind: u8, id: &BlobId, length: u64) -> u64 {
    key(kind, id) ^ (mix(length) & !0xf)
}

/// A bijective 64-bit mixer (splitmix64's finalizer): nearby lengths give
/// unrelated values.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Keys inserted are sorted into the vector this many at a time.
const PENDING: usize = 1 << 20;

/// See the module documentation.
#[derive(Default)]
pub(super) struct UsedKeys {
    sorted: Vec<u64>,
    /// Inserted, not yet sorted in.
    pending: Vec<u64>,
    /// Added by the delta closure, not yet sorted in.
    added: HashSet<u64>,
    /// After [`UsedKeys::seal`]: one bit a key of `sorted`, set when found.
    found: Vec<u64>,
}

impl UsedKeys {
    /// Records blob (`kind`, `id`) as used (duplicates are fine).
    pub fn insert(&mut self, kind: u8, id: &BlobId) {
        self.insert_key(key(kind, id));
    }

    /// Records `key` as used (duplicates are fine).
    pub fn insert_key(&mut self, key: u64) {
        self.pending.push(key);
        if self.pending.len() >= PENDING {
            self.sort_in();
        }
    }

    /// True when `key` is used.
    pub fn contains(&mut self, key: u64) -> bool {
        self.sort_in();
        self.sorted.binary_search(&key).is_ok() || self.added.contains(&key)
    }

    /// Records `key` as used; true when it was not.
    pub fn add(&mut self, key: u64) -> bool {
        !self.contains(key) && self.added.insert(key)
    }

    /// Ends the adding: everything is sorted in, nothing found yet.
    pub fn seal(&mut self) {
        self.pending.extend(self.added.drain());
        self.added.shrink_to_fit();
        self.sort_in();
        self.pending.shrink_to_fit();
        self.sorted.shrink_to_fit();
        self.found = vec![0; self.sorted.len().div_ceil(64)];
    }

    /// Distinct keys in use.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.pending.len() + self.added.len()
    }

    /// True when (sealed) `key` is used; records it as found.
    pub fn found(&mut self, key: u64) -> bool {
        debug_assert!(
            self.pending.is_empty() && self.added.is_empty(),
            "seal first"
        );
        match self.sorted.binary_search(&key) {
            Ok(i) => {
                self.found[i / 64] |= 1 << (i % 64);
                true
            }
            Err(_) => false,
        }
    }

    /// True when (sealed) `key` is used.
    pub fn is_used(&self, key: u64) -> bool {
        self.sorted.binary_search(&key).is_ok()
    }

    /// The keys in use that [`UsedKeys::found`] was never told of.
    pub fn missing(&self) -> HashSet<u64> {
        self.sorted
            .iter()
            .enumerate()
            .filter(|(i, _)| self.found[i / 64] & (1 << (i % 64)) == 0)
            .map(|(_, k)| *k)
            .collect()
    }

    /// Merges the pending keys into the sorted vector, in place: the vector
    /// grows by the new keys only, merged from the back.
    fn sort_in(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut new = std::mem::take(&mut self.pending);
        new.sort_unstable();
        new.dedup();
        let (old, add) = (self.sorted.len(), new.len());
        self.sorted.resize(old + add, 0);
        let (mut i, mut j) = (old, add);
        for k in (0..old + add).rev() {
            if j == 0 {
                break;
            }
            if i > 0 && self.sorted[i - 1] > new[j - 1] {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = new[j - 1];
                j -= 1;
            }
        }
        self.sorted.dedup();
        // Keep the buffer for the next keys.
        new.clear();
        self.pending = new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn id(n: u64) -> BlobId {
        BlobId(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    #[test]
    fn keys_keep_the_kind_apart() {
        let a = id(1);
        assert_ne!(key(0, &a), key(1, &a));
        assert_eq!(key(2, &a) >> 4, key(0, &a) >> 4);
    }

    #[test]
    fn keys_with_lengths_tell_lengths_and_kinds_apart() {
        let a = id(1);
        let k = key_with_length(0, &a, 4096);
        assert_eq!(k, key_with_length(0, &a, 4096));
        assert_eq!(k & 0xf, 0);
        assert_ne!(k, key_with_length(1, &a, 4096));
        for other in [0, 4095, 4097, 4096 << 4, 4096 << 32] {
            assert_ne!(k, key_with_length(0, &a, other), "{other}");
        }
        assert_ne!(k, key_with_length(0, &id(2), 4096));
    }

    /// Against a plain set, through every phase, with more keys than one
    /// batch and many duplicates.
    #[test]
    fn used_keys_behave_as_a_set() {
        let mut used = UsedKeys::default();
        let mut model = BTreeSet::new();
        for n in 0..(PENDING as u64 * 5 / 2) {
            let (kind, b) = ((n % 3) as u8, id(n % 2_000_000));
            used.insert(kind, &b);
            model.insert(key(kind, &b));
        }
        for n in 1_900_000..2_100_000u64 {
            let k = key(0, &id(n));
            assert_eq!(used.contains(k), model.contains(&k), "key of {n}");
            assert_eq!(used.add(k), model.insert(k), "key of {n}");
            assert!(!used.add(k));
        }
        assert_eq!(used.len(), model.len());
        used.seal();
        assert_eq!(used.len(), model.len());
        assert!(used.sorted.iter().copied().eq(model.iter().copied()));
        let every_other: Vec<u64> = model.iter().copied().step_by(2).collect();
        for k in &every_other {
            assert!(used.found(*k));
        }
        assert!(!used.found(key(0, &id(5_000_000))));
        let missing = used.missing();
        assert_eq!(missing.len(), model.len() - every_other.len());
        assert!(every_other.iter().all(|k| !missing.contains(k)));
    }
}
